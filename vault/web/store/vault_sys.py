"""The Vault API's ``sys/`` and ``auth/token/`` routes: health, seal status, mounts, token lookup and renewal.

Health and seal status need no token (as in Vault: load balancers and ``vault
status`` ask them); the store is "sealed" exactly when it is not ready (database
unreachable). Mount listings and token routes go through the guard.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from vault import __version__
from vault.errors import BadRequest, InvalidToken, Unauthorized
from vault.macaroon import CONTROL, CREATE, DELETE, READ, WRITE, mask_to_string
from vault.macaroon.caveats import Secrets, ValidityWindow, Vaults
from vault.names import check_vault_name
from vault.store.caller import Caller
from vault.store.events import access_for, audit_event
from vault.store.mounts import RESERVED_VAULT_NAMES, kv_path, own_mount
from vault.types import RequestContext

from ..contract import Operation, Response, decode_body, decode_params
from .guard import Check, run_guarded
from .services import services_of
from .vault_messages import (
    MAX_CAPABILITY_PATHS,
    Capabilities,
    CapabilitiesRequest,
    Envelope,
    Health,
    HealthQuery,
    Leader,
    MountEntry,
    Mounts,
    PreflightPath,
    RenewRequest,
    SealStatus,
    TokenLookup,
    UIMount,
    UIMounts,
    UIMountTable,
    VaultErrors,
)
from .vault_reply import envelope, presented, rfc3339, slug_orgs, token_org, vault_credentials, vault_json

__all__ = ["SYS_OPERATIONS", "VERSION"]

VERSION = f"{__version__}+cvault"


def _cluster_id(request: web.Request) -> str:
    # Stable per store location, so a probe can tell two stores apart.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, services_of(request).tokens.location))


async def _ready(request: web.Request) -> bool:
    return await services_of(request).health.ready()


async def health(request: web.Request) -> web.StreamResponse:
    """``GET|HEAD /v1/sys/health``: 200 when serving, ``sealedcode`` (503) when the store is not ready.

    Of Vault's status parameters only ``activecode`` and ``sealedcode`` apply: cvault is never a standby, a DR
    or performance secondary, or uninitialized."""
    query = decode_params(request.query, HealthQuery)
    ready = await _ready(request)
    status = int(query.activecode if ready else query.sealedcode)
    services = services_of(request)
    body = Health(
        initialized=True,
        sealed=not ready,
        standby=False,
        performance_standby=False,
        replication_performance_mode="disabled",
        replication_dr_mode="disabled",
        server_time_utc=int(services.clock()),
        version=VERSION,
        cluster_name="cvault",
        cluster_id=_cluster_id(request),
    )
    if request.method == "HEAD":
        return web.Response(status=status, headers={"Content-Type": "application/json"})
    return vault_json(body, status)


async def seal_status(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/seal-status`` (``vault status``): a store that is not ready reports itself sealed."""
    ready = await _ready(request)
    return vault_json(
        SealStatus(
            type="shamir",
            initialized=True,
            sealed=not ready,
            t=1,
            n=1,
            progress=0,
            nonce="",
            version=VERSION,
            build_date="",
            migration=False,
            cluster_name="cvault",
            cluster_id=_cluster_id(request),
            recovery_seal=False,
            storage_type="postgresql",
        )
    )


async def leader(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/leader`` (``vault status`` asks it after the seal status): no HA, every node serves."""
    return vault_json(
        Leader(
            ha_enabled=False,
            is_self=False,
            active_time="0001-01-01T00:00:00Z",
            leader_address="",
            leader_cluster_address="",
            performance_standby=False,
            performance_standby_last_remote_wal=0,
        )
    )


def _description(slug: str | None) -> str:
    return "cvault vault" if slug is not None else "cvault vault (this token's organization)"


def _accessor(slug: str | None, vault: str) -> str:
    mount = f"{slug}/{vault}" if slug is not None else vault
    return f"kv_{uuid.uuid5(uuid.NAMESPACE_URL, mount).hex[:8]}"


def _mount_entry(slug: str | None, vault: str) -> MountEntry:
    return MountEntry(description=_description(slug), accessor=_accessor(slug, vault))


def _ui_mount(slug: str | None, vault: str) -> UIMount:
    path = f"{slug}/{vault}/" if slug is not None else f"{vault}/"
    return UIMount(path=path, description=_description(slug), accessor=_accessor(slug, vault))


async def ui_mount(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/internal/ui/mounts/<path>``: the Vault CLI's and consul-template's "which KV version"
    question.

    ``<slug>/<vault>/...`` answers only a token of the org with that slug (by its key, unverified: the Vault CLI
    and consul-template send their token with it; every mount is KV version 2, and the vault's existence is
    checked where its secrets are read). Every other path, and every other token (none included), is read as
    the one-segment mount ``<vault>/...`` of the token's own org: the token must be live and the vault exist.
    So the answer never depends on which slugs other orgs enrolled: no token, another org's token or an unknown
    slug all get the same 403 (docs/vault-compat.md, "Mounts").
    """
    parts = request.match_info["path"].strip("/").split("/")
    services = services_of(request)
    credentials = presented(request.headers)
    if len(parts) >= 2 and _is_vault_name(parts[0]) and _is_vault_name(parts[1]):
        own = await token_org(services, credentials)
        try:
            own_mount(parts[0], own, await slug_orgs(services, parts[0], own))
        except Unauthorized:
            pass  # not this token's slug: perhaps its own vault of that name
        else:
            return vault_json(envelope(request, _ui_mount(parts[0], parts[1])))
    # Any path is a fair question; one under no mount is Vault's 403, as for a token without access there.
    vault = parts[0]
    if not _is_vault_name(vault) or vault in RESERVED_VAULT_NAMES:
        raise Unauthorized("no mount at this path")

    async def one_segment(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        if not await services_of(request).kv.has_vault(ctx.verified_caller.org_id, vault):
            raise Unauthorized(f"no vault {vault!r}")
        return vault_json(envelope(request, _ui_mount(None, vault)))

    return await _guarded_by_token(request, one_segment, "vaults.list")


def _is_vault_name(text: str) -> bool:
    try:
        check_vault_name(text)
    except BadRequest:
        return False
    return True


async def _visible_mounts(request: web.Request, ctx: RequestContext[Caller]) -> dict[str, MountEntry]:
    services = services_of(request)
    slug = await services.orgs.slug_of(ctx.verified_caller.org_id)
    vaults = await services.control.list_vaults(ctx)
    now = int(services.clock())
    caller = ctx.verified_caller
    visible = [
        v.name
        for v in vaults
        if any(caller.allows(access_for(ctx, now, action, vault=v.name)) for action in (READ, WRITE, CREATE, DELETE))
    ]
    found = {f"{name}/": _mount_entry(None, name) for name in visible if name not in RESERVED_VAULT_NAMES}
    if slug is not None:
        found.update({f"{slug}/{name}/": _mount_entry(slug, name) for name in visible})
    return found


async def _guarded_by_token(request: web.Request, handler: Any, operation: str) -> web.StreamResponse:
    """For routes that name no mount: the org is the one whose key signed the token, and the gate checks only
    that the token is alive (each handler checks what it reads)."""
    org_id = await token_org(services_of(request), presented(request.headers))
    if org_id is None:
        vault_credentials(request.headers)  # a missing token says so (still a 403 to Vault clients)
        raise InvalidToken()
    check = Check(org_id=org_id, operation=operation, action=0, extent="live", credentials_of=vault_credentials)
    return await run_guarded(request, handler, check)


async def mounts(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/mounts``: the vaults the token can use, as KV version 2 mounts. Vault's mount table is
    for operators: the token needs ``C`` (``sys/internal/ui/mounts`` lists the same for any live token)."""

    async def listing(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        ctx.verified_caller.check(access_for(ctx, int(services_of(request).clock()), CONTROL))
        found = await _visible_mounts(request, ctx)
        # As Vault, data's entries are repeated at the top level: the model describes the envelope.
        reply = Mounts(request_id=envelope(request, None).request_id, data=found)
        return vault_json({**found, **msgspec.structs.asdict(reply)})

    return await _guarded_by_token(request, listing, "vaults.list")


async def ui_mounts(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/internal/ui/mounts``: the same, in the UI's ``{secret, auth}`` shape (vault-api reads it)."""

    async def listing(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        return vault_json(envelope(request, UIMountTable(secret=await _visible_mounts(request, ctx), auth={})))

    return await _guarded_by_token(request, listing, "vaults.list")


async def _lookup(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    services = services_of(request)
    caller = ctx.verified_caller
    now = int(services.clock())
    expiry = caller.verified.expiry()
    windows = caller.verified.token.unverified_caveats
    issued = max((c.not_before for c in windows if isinstance(c, ValidityWindow)), default=None)
    meta = {"org": str(ctx.org_id)}
    for kind, label in ((Vaults, "vaults"), (Secrets, "secrets")):
        scopes = [f"{name}={mask_to_string(mask)}" for c in caller.verified.find(kind) for name, mask in c.masks]
        if scopes:
            meta[label] = ",".join(scopes)
    if caller.actor is not None:
        meta["actor"] = caller.actor
    await services.audit.record(audit_event(ctx, "ok", detail={"expires": expiry}))
    data = TokenLookup(
        accessor=caller.token_id,
        creation_time=issued or 0,
        creation_ttl=0,
        display_name="cvault",
        entity_id=caller.actor or "",
        expire_time=rfc3339(expiry) or None,
        explicit_max_ttl=0,
        # The token itself, as Vault answers: Vault Agent's token_file auto-auth and
        # node-vault-client send data.id as the token from then on.
        id=vault_credentials(request.headers),
        issue_time=rfc3339(issued) or None,
        meta=meta,
        num_uses=0,
        orphan=True,
        path="auth/token/create",
        policies=[mask_to_string(caller.effective_mask())],
        renewable=False,
        ttl=max(0, expiry - now) if expiry is not None else 0,
        type="service",
    )
    return vault_json(envelope(request, data))


async def lookup_self(request: web.Request) -> web.StreamResponse:
    """``GET|POST /v1/auth/token/lookup-self``: is the bundle alive, and what may it do."""
    return await _guarded_by_token(request, _lookup, "tokens.lookup")


async def _not_renewable(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    # A bundle's lifetime is its org discharge's; only a fresh discharge extends it
    # (`cvault vault-token --sink` keeps a file holding one).
    if request.body_exists:
        await decode_body(request, RenewRequest)
    raise BadRequest("lease is not renewable")


async def renew_self(request: web.Request) -> web.StreamResponse:
    """``POST|PUT /v1/auth/token/renew-self``: Vault's answer for a live token that is not renewable."""
    return await _guarded_by_token(request, _not_renewable, "tokens.renew")


# Vault's capabilities on a KV path, each as (the operation, the actions) the store would ask of the token.
_CAPABILITIES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "data": (
        ("create", "secrets.write", WRITE | CREATE),
        ("delete", "secrets.delete", DELETE),
        ("patch", "secrets.write", READ | WRITE),
        ("read", "secrets.read", READ),
        ("update", "secrets.write", WRITE),
    ),
    "metadata": (
        ("create", "secrets.metadata_write", WRITE | CREATE),
        ("delete", "secrets.destroy", DELETE),
        ("list", "secrets.list", READ),
        ("patch", "secrets.metadata_write", READ | WRITE),
        ("read", "secrets.metadata", READ),
        ("update", "secrets.metadata_write", WRITE),
    ),
    "delete": (("update", "secrets.delete", DELETE),),
    "undelete": (("update", "secrets.undelete", DELETE),),
    "destroy": (("update", "secrets.destroy", DELETE),),
    "subkeys": (("read", "secrets.read", READ),),
    "config": (("read", "vaults.config", READ), ("update", "vaults.configure", CONTROL)),
}


def _capabilities(ctx: RequestContext[Caller], now: int, slug: str | None, path: str) -> list[str]:
    where = kv_path(path, slug)
    if where is None:
        return ["deny"]
    secret = where.rest if where.kind != "metadata" or where.rest else None
    granted = [
        name
        for name, operation, action in _CAPABILITIES[where.kind]
        if ctx.verified_caller.allows(
            access_for(ctx._replace(operation=operation), now, action, vault=where.vault, secret=secret or None)
        )
    ]
    return granted or ["deny"]


async def _capabilities_self(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body = await decode_body(request, CapabilitiesRequest)
    asked = body.paths if body.paths is not UNSET else body.path
    if asked is UNSET:  # the document's anyOf says so; the model alone cannot
        raise BadRequest(f"paths must be a list of 1-{MAX_CAPABILITY_PATHS} paths")
    paths = [asked] if isinstance(asked, str) else asked
    services = services_of(request)
    slug = await services.orgs.slug_of(ctx.verified_caller.org_id)
    now = int(services.clock())
    found = {p: _capabilities(ctx, now, slug, p) for p in paths}
    combined = sorted({c for caps in found.values() for c in caps} - ({"deny"} if len(found) > 1 else set()))
    data = {**found, "capabilities": combined or ["deny"]}
    await services.audit.record(audit_event(ctx, "ok", detail={"paths": len(paths)}))
    # As Vault, data's entries are repeated at the top level: the model describes the envelope.
    reply = Capabilities(request_id=envelope(request, None).request_id, data=data)
    return vault_json({**data, **msgspec.structs.asdict(reply)})


async def capabilities_self(request: web.Request) -> web.StreamResponse:
    """``POST /v1/sys/capabilities-self`` (``bao token capabilities``): what the token may do at each path,
    from its caveats (audited as a token lookup)."""
    return await _guarded_by_token(request, _capabilities_self, "tokens.lookup")


_SECURITY = ("bundle", "vaultToken")
_ERRORS = (400, 403, 405, 413, 429, 503)
_PREFIX = "/vault/v1"


def _op(method: str, route: str, handler: Any, name: str, summary: str, **kw: Any) -> Operation:
    kw.setdefault("security", _SECURITY)
    kw.setdefault("errors", _ERRORS)
    return Operation(
        method=method,
        route=_PREFIX + route,
        handler=handler,
        id=f"vault.{name}",
        summary=summary,
        error_model=VaultErrors,
        **kw,
    )


_HEALTH = {
    "2XX": Response(Health, description="serving (activecode, 200 unless given)"),
    "5XX": Response(Health, description="sealed: the store is not ready (sealedcode, 503 unless given)"),
}
_PREFLIGHT = "Mount preflight: the KV version 2 mount at the start of the path; 403 for a path under no mount"
SYS_OPERATIONS: tuple[Operation, ...] = (
    _op(
        "GET",
        "/auth/token/lookup-self",
        lookup_self,
        "lookup_self",
        "Describe the token (data.id: as sent)",
        responses={200: Response(Envelope[TokenLookup])},
    ),
    _op(
        "POST",
        "/auth/token/lookup-self",
        lookup_self,
        "lookup_self_post",
        "Describe the token (data.id: as sent)",
        responses={200: Response(Envelope[TokenLookup])},
    ),
    *(
        _op(
            method,
            "/auth/token/renew-self",
            renew_self,
            f"renew_self_{method.lower()}",
            "A bundle is not renewable: 400 'lease is not renewable' for a live one (fetch a new bundle)",
            body=RenewRequest,
            body_required=False,
            responses={},
        )
        for method in ("POST", "PUT")
    ),
    _op(
        "GET",
        "/sys/health",
        health,
        "health",
        "Serving, or sealed (not ready)",
        query=HealthQuery,
        security=(),
        responses=_HEALTH,
        errors=(400, 405),
    ),
    _op(
        "HEAD",
        "/sys/health",
        health,
        "health_head",
        "The same, without a body",
        query=HealthQuery,
        security=(),
        responses={k: Response(None, description=r.description) for k, r in _HEALTH.items()},
        errors=(400, 405),
    ),
    _op(
        "GET",
        "/sys/seal-status",
        seal_status,
        "seal_status",
        "Sealed exactly when not ready",
        security=(),
        responses={200: Response(SealStatus)},
        errors=(405,),
    ),
    _op(
        "GET",
        "/sys/leader",
        leader,
        "leader",
        "No HA: every node serves",
        security=(),
        responses={200: Response(Leader)},
        errors=(405,),
    ),
    _op(
        "GET",
        "/sys/mounts",
        mounts,
        "mounts",
        "The vaults the token can use, as KV version 2 mounts (needs 'C')",
        responses={200: Response(Mounts)},
    ),
    *(
        _op(
            method,
            "/sys/capabilities-self",
            capabilities_self,
            f"capabilities_self_{method.lower()}",
            "The token's capabilities at each path asked",
            body=CapabilitiesRequest,
            responses={200: Response(Capabilities)},
        )
        for method in ("POST", "PUT")
    ),
    _op(
        "GET",
        "/sys/internal/ui/mounts",
        ui_mounts,
        "ui_mounts",
        "The same for any live token, as {secret, auth}",
        responses={200: Response(UIMounts)},
    ),
    _op(
        "GET",
        "/sys/internal/ui/mounts/{path:.+}",
        ui_mount,
        "ui_mount",
        _PREFLIGHT,
        path=PreflightPath,
        errors=(*_ERRORS, 404),
        responses={200: Response(Envelope[UIMount])},
    ),
    # Newer Vault CLIs ask this path for the same preflight (command/kv_helpers.go).
    _op(
        "GET",
        "/sys/mounts-all/{path:.+}",
        ui_mount,
        "mounts_all",
        _PREFLIGHT,
        path=PreflightPath,
        errors=(*_ERRORS, 404),
        responses={200: Response(Envelope[UIMount])},
    ),
)
"""``sys/`` and ``auth/token/``, under ``/vault``."""
