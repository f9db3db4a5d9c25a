"""The Vault API's ``sys/`` and ``auth/token/`` routes: health, seal status, mounts, token lookup and renewal.

Health and seal status need no token (as in Vault: load balancers and ``vault
status`` ask them); the store is "sealed" exactly when it is not ready (database
unreachable). Mount listings and token routes go through the guard.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from vault import __version__
from vault.errors import BadRequest, InvalidToken, Unauthorized
from vault.macaroon import CONTROL, CREATE, DELETE, READ, WRITE, mask_to_string
from vault.macaroon.caveats import Secrets, ValidityWindow, Vaults
from vault.names import check_slug, check_vault_name
from vault.store.caller import Caller
from vault.store.events import access_for, audit_event
from vault.store.mounts import RESERVED_VAULT_NAMES, kv_path, own_mount
from vault.types import RequestContext

from ..common import read_json
from .guard import Check, run_guarded
from .services import services_of
from .vault_reply import envelope, presented, rfc3339, token_org, vault_credentials, vault_json

__all__ = ["VERSION", "add_sys_routes"]

VERSION = f"{__version__}+cvault"
# Vault's sys/health query parameters and the states they name; cvault is never a standby,
# a DR or performance secondary, or uninitialized, so only these two apply.
_HEALTH_CODES = {"activecode": 200, "sealedcode": 503}
MAX_PATH_CHARS = 1024


def _cluster_id(request: web.Request) -> str:
    # Stable per store location, so a probe can tell two stores apart.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, services_of(request).tokens.location))


async def _ready(request: web.Request) -> bool:
    return await services_of(request).health.ready()


def _status_code(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return _HEALTH_CODES[name]
    if not (raw.isascii() and raw.isdigit() and 200 <= int(raw) <= 599):
        raise BadRequest(f"{name} must be an HTTP status code from 200 to 599")
    return int(raw)


async def health(request: web.Request) -> web.StreamResponse:
    """``GET|HEAD /v1/sys/health``: 200 when serving, ``sealedcode`` (503) when the store is not ready."""
    ready = await _ready(request)
    status = _status_code(request, "activecode" if ready else "sealedcode")
    services = services_of(request)
    body = {
        "initialized": True,
        "sealed": not ready,
        "standby": False,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(services.clock()),
        "version": VERSION,
        "cluster_name": "cvault",
        "cluster_id": _cluster_id(request),
    }
    if request.method == "HEAD":
        return web.Response(status=status, headers={"Content-Type": "application/json"})
    return vault_json(body, status)


async def seal_status(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/seal-status`` (``vault status``): a store that is not ready reports itself sealed."""
    ready = await _ready(request)
    return vault_json(
        {
            "type": "shamir",
            "initialized": True,
            "sealed": not ready,
            "t": 1,
            "n": 1,
            "progress": 0,
            "nonce": "",
            "version": VERSION,
            "build_date": "",
            "migration": False,
            "cluster_name": "cvault",
            "cluster_id": _cluster_id(request),
            "recovery_seal": False,
            "storage_type": "postgresql",
        }
    )


async def leader(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/leader`` (``vault status`` asks it after the seal status): no HA, every node serves."""
    return vault_json(
        {
            "ha_enabled": False,
            "is_self": False,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": False,
            "performance_standby_last_remote_wal": 0,
        }
    )


def _mount_entry(slug: str | None, vault: str) -> dict[str, Any]:
    mount = f"{slug}/{vault}" if slug is not None else vault
    return {
        "type": "kv",
        "description": "cvault vault" if slug is not None else "cvault vault (this token's organization)",
        "accessor": f"kv_{uuid.uuid5(uuid.NAMESPACE_URL, mount).hex[:8]}",
        "options": {"version": "2"},
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
        "local": False,
        "seal_wrap": False,
        "external_entropy_access": False,
        "uuid": "",
    }


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
    if len(parts) >= 2:
        own = await token_org(services, credentials)
        try:
            own_mount(parts[0], own, await services.orgs.orgs_with_slug(parts[0]))
        except Unauthorized:
            pass  # not this token's slug: perhaps its own vault of that name
        else:
            slug, vault = check_slug(parts[0]), check_vault_name(parts[1])
            return vault_json(envelope(request, {"path": f"{slug}/{vault}/", **_mount_entry(slug, vault)}))
    vault = check_vault_name(parts[0])
    if vault in RESERVED_VAULT_NAMES:
        raise Unauthorized("no mount at this path")

    async def one_segment(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        if not await services_of(request).kv.has_vault(ctx.verified_caller.org_id, vault):
            raise Unauthorized(f"no vault {vault!r}")
        return vault_json(envelope(request, {"path": f"{vault}/", **_mount_entry(None, vault)}))

    return await _guarded_by_token(request, one_segment, "vaults.list")


async def _visible_mounts(request: web.Request, ctx: RequestContext[Caller]) -> dict[str, Any]:
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
        return vault_json({**found, **envelope(request, found)})

    return await _guarded_by_token(request, listing, "vaults.list")


async def ui_mounts(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/internal/ui/mounts``: the same, in the UI's ``{secret, auth}`` shape (vault-api reads it)."""

    async def listing(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        return vault_json(envelope(request, {"secret": await _visible_mounts(request, ctx), "auth": {}}))

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
    data = {
        # The token itself, as Vault answers: Vault Agent's token_file auto-auth and
        # node-vault-client send data.id as the token from then on.
        "accessor": caller.token_id,
        "creation_time": issued or 0,
        "creation_ttl": 0,
        "display_name": "cvault",
        "entity_id": caller.actor or "",
        "expire_time": rfc3339(expiry) or None,
        "explicit_max_ttl": 0,
        "id": vault_credentials(request.headers),
        "issue_time": rfc3339(issued) or None,
        "meta": meta,
        "num_uses": 0,
        "orphan": True,
        "path": "auth/token/create",
        "policies": [mask_to_string(caller.effective_mask())],
        "renewable": False,
        "ttl": max(0, expiry - now) if expiry is not None else 0,
        "type": "service",
    }
    return vault_json(envelope(request, data))


async def lookup_self(request: web.Request) -> web.StreamResponse:
    """``GET|POST /v1/auth/token/lookup-self``: is the bundle alive, and what may it do."""
    return await _guarded_by_token(request, _lookup, "tokens.lookup")


async def _not_renewable(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    # A bundle's lifetime is its org discharge's; only a fresh discharge extends it
    # (`cvault vault-token --sink` keeps a file holding one).
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
MAX_CAPABILITY_PATHS = 64


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
    body = await read_json(request)
    paths = body.get("paths", body.get("path"))
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or len(paths) > MAX_CAPABILITY_PATHS:
        raise BadRequest(f"paths must be a list of 1-{MAX_CAPABILITY_PATHS} paths")
    if not all(isinstance(p, str) and 0 < len(p) <= MAX_PATH_CHARS for p in paths):
        raise BadRequest(f"each path is a string of 1-{MAX_PATH_CHARS} characters")
    services = services_of(request)
    slug = await services.orgs.slug_of(ctx.verified_caller.org_id)
    now = int(services.clock())
    found = {p: _capabilities(ctx, now, slug, p) for p in paths}
    combined = sorted({c for caps in found.values() for c in caps} - ({"deny"} if len(found) > 1 else set()))
    data: dict[str, Any] = {**found, "capabilities": combined or ["deny"]}
    await services.audit.record(audit_event(ctx, "ok", detail={"paths": len(paths)}))
    return vault_json({**data, **envelope(request, data)})


async def capabilities_self(request: web.Request) -> web.StreamResponse:
    """``POST /v1/sys/capabilities-self`` (``bao token capabilities``): what the token may do at each path,
    from its caveats (audited as a token lookup)."""
    return await _guarded_by_token(request, _capabilities_self, "tokens.lookup")


def add_sys_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/auth/token/lookup-self", lookup_self)
    r.add_post("/v1/auth/token/lookup-self", lookup_self)
    r.add_post("/v1/auth/token/renew-self", renew_self)
    r.add_put("/v1/auth/token/renew-self", renew_self)
    r.add_get("/v1/sys/health", health)  # aiohttp answers HEAD for GET routes too (allow_head)
    r.add_get("/v1/sys/seal-status", seal_status)
    r.add_get("/v1/sys/leader", leader)
    r.add_get("/v1/sys/mounts", mounts)
    r.add_post("/v1/sys/capabilities-self", capabilities_self)
    r.add_put("/v1/sys/capabilities-self", capabilities_self)
    r.add_get("/v1/sys/internal/ui/mounts", ui_mounts)
    r.add_get("/v1/sys/internal/ui/mounts/{path:.+}", ui_mount)
    # Newer Vault CLIs ask this path for the same preflight (command/kv_helpers.go).
    r.add_get("/v1/sys/mounts-all/{path:.+}", ui_mount)
