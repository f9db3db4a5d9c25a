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
from vault.macaroon import CREATE, DELETE, READ, WRITE, mask_to_string
from vault.macaroon.caveats import Secrets, ValidityWindow, Vaults
from vault.store.caller import Caller
from vault.store.events import access_for, audit_event
from vault.store.mounts import own_mount
from vault.store.names import check_slug, check_vault_name
from vault.types import RequestContext

from .guard import run_guarded
from .services import services_of
from .vault_reply import envelope, rfc3339, token_org, vault_credentials, vault_json

__all__ = ["VERSION", "add_sys_routes"]

VERSION = f"{__version__}+cvault"
# Vault's sys/health query parameters and the states they name; cvault is never a standby,
# a DR or performance secondary, or uninitialized, so only these two apply.
_HEALTH_CODES = {"activecode": 200, "sealedcode": 503}


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


def _mount_entry(slug: str, vault: str) -> dict[str, Any]:
    return {
        "type": "kv",
        "description": "cvault vault",
        "accessor": f"kv_{uuid.uuid5(uuid.NAMESPACE_URL, f'{slug}/{vault}').hex[:8]}",
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

    Answers only for a mount of the presented token's own org (by its key; the Vault CLI and
    consul-template send their token with it): anything else, no token included, is the same
    403, so the question tells nobody which slugs are enrolled. The vault's existence is checked
    where its secrets are read.
    """
    parts = request.match_info["path"].split("/")
    if len(parts) < 2:
        raise Unauthorized("no mount at this path")
    slug, vault = check_slug(parts[0]), check_vault_name(parts[1])
    services = services_of(request)
    own_mount(slug, await token_org(services, request.headers), await services.orgs.orgs_with_slug(slug))
    return vault_json(envelope(request, {"path": f"{slug}/{vault}/", **_mount_entry(slug, vault)}))


async def _visible_mounts(request: web.Request, ctx: RequestContext[Caller]) -> dict[str, Any]:
    services = services_of(request)
    slug = await services.orgs.slug_of(ctx.verified_caller.org_id)
    vaults = await services.control.list_vaults(ctx)
    now = int(services.clock())
    caller = ctx.verified_caller
    return {
        f"{slug}/{v.name}/": _mount_entry(slug or "", v.name)
        for v in vaults
        if slug is not None
        and any(caller.allows(access_for(ctx, now, action, vault=v.name)) for action in (READ, WRITE, CREATE, DELETE))
    }


async def _guarded_by_token(
    request: web.Request, handler: Any, operation: str, action: int, **options: Any
) -> web.StreamResponse:
    """For routes that name no mount: the org is the one whose key signed the token."""
    org_id = await token_org(services_of(request), request.headers)
    if org_id is None:
        vault_credentials(request.headers)  # a missing token says so (still a 403 to Vault clients)
        raise InvalidToken()
    return await run_guarded(
        request, handler, org_id=org_id, operation=operation, action=action, credentials_of=vault_credentials, **options
    )


async def mounts(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/mounts``: the vaults the token can use, as KV version 2 mounts."""

    async def listing(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        found = await _visible_mounts(request, ctx)
        return vault_json({**found, **envelope(request, found)})

    return await _guarded_by_token(request, listing, "vaults.list", 0, live_only=True)


async def ui_mounts(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/internal/ui/mounts``: the same, in the UI's ``{secret, auth}`` shape (vault-api reads it)."""

    async def listing(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
        return vault_json(envelope(request, {"secret": await _visible_mounts(request, ctx), "auth": {}}))

    return await _guarded_by_token(request, listing, "vaults.list", 0, live_only=True)


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
    return await _guarded_by_token(request, _lookup, "tokens.lookup", 0, live_only=True)


async def _not_renewable(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    # A bundle's lifetime is its org discharge's; only a fresh discharge extends it
    # (`cvault vault-token --sink` keeps a file holding one).
    raise BadRequest("lease is not renewable")


async def renew_self(request: web.Request) -> web.StreamResponse:
    """``POST|PUT /v1/auth/token/renew-self``: Vault's answer for a live token that is not renewable."""
    return await _guarded_by_token(request, _not_renewable, "tokens.renew", 0, live_only=True)


def add_sys_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/auth/token/lookup-self", lookup_self)
    r.add_post("/v1/auth/token/lookup-self", lookup_self)
    r.add_post("/v1/auth/token/renew-self", renew_self)
    r.add_put("/v1/auth/token/renew-self", renew_self)
    r.add_get("/v1/sys/health", health)  # aiohttp answers HEAD for GET routes too (allow_head)
    r.add_get("/v1/sys/seal-status", seal_status)
    r.add_get("/v1/sys/leader", leader)
    r.add_get("/v1/sys/mounts", mounts)
    r.add_get("/v1/sys/internal/ui/mounts", ui_mounts)
    r.add_get("/v1/sys/internal/ui/mounts/{path:.+}", ui_mount)
    # Newer Vault CLIs ask this path for the same preflight (command/kv_helpers.go).
    r.add_get("/v1/sys/mounts-all/{path:.+}", ui_mount)
