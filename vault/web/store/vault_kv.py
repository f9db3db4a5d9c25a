"""The HashiCorp Vault-compatible API: KV version 2 and token lookup, under ``<store>/vault``.

A thin translation layer (``docs/vault-compat.md``): every request goes through
the store's own guard (:func:`.guard.run_guarded`: bundle verification, org
discharge, caveats, audit of refusals) and the store's services, with the same
operation names and actions as the native routes, so audit events, caveats and
discharges apply exactly as there. Only the addressing, the token header, the
bodies and the error shapes are Vault's:

* the token is ``X-Vault-Token`` (or ``Authorization: Bearer``): a store bundle;
* a mount is ``<org slug>/<vault>``, a KV path is the secret's name;
* errors are ``{"errors": [...]}`` with ``Content-Type: application/json`` exactly
  (hvac parses error bodies only then): 403 ``["permission denied"]`` for any
  refused or missing token, 404 ``[]`` for anything missing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

from vault.errors import BadRequest, Conflict, InvalidToken, NotFound, VaultError
from vault.macaroon import CREATE, DELETE, READ, WRITE, mask_to_string, parse_bundle
from vault.macaroon.caveats import Secrets, ValidityWindow, Vaults
from vault.storage.store_mounts import orgs_with_slug
from vault.store.events import RequestContext
from vault.store.kv import kv_keys, kv_value, stored_value
from vault.store.mounts import MountDirectory
from vault.store.names import (
    check_prefix,
    check_secret_name,
    check_slug,
    check_value,
    check_vault_name,
    check_versions,
)
from vault.store.tokens import key_id_from_kid

from ..common import RENDERER_KEY, int_param, origin, read_json
from .guard import bearer_credentials, run_guarded
from .services import StoreServices, services_of

__all__ = ["CAS_MISMATCH", "MOUNTS_KEY", "create_vault_kv_app", "render_vault_error"]

CAS_MISMATCH = "check-and-set parameter did not match the current version"
LIST_PAGE = 1000
MAX_LIST_PAGES = 10
MOUNTS_KEY: web.AppKey[MountDirectory] = web.AppKey("vault_mounts", MountDirectory)

_SLUG = "{slug:[a-z0-9][a-z0-9-]{0,62}}"
_VAULT = "{vault:[a-z0-9][a-z0-9_-]{0,62}}"
_MOUNT = f"/v1/{_SLUG}/{_VAULT}"
_JSON = "application/json"


# -- replies ----------------------------------------------------------------------------


def vault_json(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": hvac reads an error body only when the header is that string.
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": _JSON, "Cache-Control": "no-store"}
    )


def render_vault_error(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
    """Every error inside ``/vault``, in Vault's shape. Reasons for refusals go to the audit log only."""
    if status in (401, 403):
        return vault_json({"errors": ["permission denied"]}, 403)
    if status == 404:
        return vault_json({"errors": []}, 404)
    if status == 405:
        return vault_json({"errors": ["unsupported operation"]}, 405)
    return vault_json({"errors": [message]}, status)


def _envelope(request: web.Request, data: Any) -> dict[str, Any]:
    return {
        "request_id": origin(request).request_id or "",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


def _time(value: dt.datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _version_metadata(created: dt.datetime | int, version: int) -> dict[str, Any]:
    return {
        "created_time": _time(created),
        "custom_metadata": None,
        "deletion_time": "",
        "destroyed": False,
        "version": version,
    }


# -- who and where ------------------------------------------------------------------------


def vault_credentials(headers: Mapping[str, str]) -> str:
    """The bundle in ``X-Vault-Token``, else in ``Authorization: Bearer``."""
    token = headers.get("X-Vault-Token", "").strip()
    return token if token else bearer_credentials(headers)


def _svc(request: web.Request) -> StoreServices:
    return services_of(request)


async def _token_org(services: StoreServices, headers: Mapping[str, str]) -> int | None:
    """The org whose root key signed the request's store token, unverified: it only picks the org to verify in."""
    try:
        token = parse_bundle(vault_credentials(headers)).permission_token(services.tokens.location)
        key_id = key_id_from_kid(token.nonce.kid)
    except VaultError:
        return None
    root = services.keys.cached(key_id) or await services.keys.load(key_id)
    return root.org_id if root is not None else None


async def _mount(request: web.Request) -> tuple[int, str]:
    services = _svc(request)
    vault = check_vault_name(request.match_info["vault"])
    token_org = await _token_org(services, request.headers)
    org_id = await request.app[MOUNTS_KEY].org_for(
        request.match_info["slug"], token_org, partial(orgs_with_slug, services.pool)
    )
    return org_id, vault


async def _guard(
    request: web.Request,
    handler: Any,
    operation: str,
    action: int,
    *,
    secret: str | None = None,
) -> web.StreamResponse:
    org_id, vault = await _mount(request)
    return await run_guarded(
        request,
        partial(handler, vault=vault, secret=secret),
        org_id=org_id,
        operation=operation,
        action=action,
        vault=vault,
        secret=secret,
        credentials_of=vault_credentials,
    )


# -- KV version 2 ---------------------------------------------------------------------------


async def _read(request: web.Request, ctx: RequestContext, *, vault: str, secret: str) -> web.StreamResponse:
    version = int_param(request, "version", minimum=0) or None  # Vault: 0 is the latest
    r = await _svc(request).secrets.read(ctx, vault, secret, version=version)
    data = {"data": kv_value(r.value), "metadata": _version_metadata(r.created_at_unix, r.version)}
    return vault_json(_envelope(request, data))


async def _write(request: web.Request, ctx: RequestContext, *, vault: str, secret: str) -> web.StreamResponse:
    services = _svc(request)
    body = await read_json(request)
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("options must be a JSON object")
    cas = options.get("cas")
    if cas is not None and (not isinstance(cas, int) or isinstance(cas, bool) or cas < 0):
        raise BadRequest("options.cas must be a version number (0: the secret must not exist yet)")
    value = check_value(stored_value(body.get("data")))
    now = int(services.clock())
    may_create = ctx.verified_caller.allows(ctx.access(now, WRITE | CREATE, vault=vault, secret=secret))
    outcome = await services.secrets.write(
        ctx, vault, secret, value, cas=cas, pending=False, max_versions=None, may_create=may_create
    )
    return vault_json(_envelope(request, _version_metadata(now, outcome.version)))


async def _list(request: web.Request, ctx: RequestContext, *, vault: str, secret: str | None) -> web.StreamResponse:
    path = request.match_info.get("path", "")
    prefix = check_prefix(path if not path or path.endswith("/") else path + "/")
    names: list[str] = []
    after: str | None = None
    for _ in range(MAX_LIST_PAGES):  # one audit event per page, as on the native route
        page = await _svc(request).secrets.list_names(ctx, vault, prefix=prefix, after=after, limit=LIST_PAGE)
        names.extend(s.name for s in page)
        if len(page) < LIST_PAGE:
            break
        after = page[-1].name
    keys = kv_keys(names, prefix)
    if not keys:
        raise NotFound("nothing under this path")
    return vault_json(_envelope(request, {"keys": keys}))


async def _metadata(request: web.Request, ctx: RequestContext, *, vault: str, secret: str) -> web.StreamResponse:
    meta = await _svc(request).secrets.metadata(ctx, vault, secret)
    versions = {
        # The store keeps no deletion time; a deleted version reports the secret's last change.
        str(v.version): {
            "created_time": _time(v.created_at),
            "deletion_time": _time(meta.updated_at) if v.state == "deleted" else "",
            "destroyed": v.state == "destroyed",
        }
        for v in meta.versions
    }
    data = {
        "cas_required": False,
        "created_time": _time(meta.created_at),
        "current_version": meta.current_version or 0,
        "custom_metadata": None,
        "delete_version_after": "0s",
        "max_versions": meta.max_versions,
        "oldest_version": min((v.version for v in meta.versions), default=0),
        "updated_time": _time(meta.updated_at),
        "versions": versions,
    }
    return vault_json(_envelope(request, data))


async def _destroy_all(request: web.Request, ctx: RequestContext, *, vault: str, secret: str) -> web.StreamResponse:
    await _svc(request).secrets.destroy_secret(ctx, vault, secret)
    return web.Response(status=204)


async def _change(
    request: web.Request, ctx: RequestContext, *, vault: str, secret: str, change: str
) -> web.StreamResponse:
    versions = check_versions((await read_json(request)).get("versions"))
    await _svc(request).secrets.change_versions(ctx, vault, secret, versions, change)
    return web.Response(status=204)


def _not_allowed(request: web.Request, allowed: tuple[str, ...]) -> web.HTTPMethodNotAllowed:
    return web.HTTPMethodNotAllowed(request.method, allowed)


async def kv_route(request: web.Request) -> web.StreamResponse:
    """``/v1/<slug>/<vault>/<kind>/<path>``: dispatch on kind and method (``LIST`` included)."""
    kind, method = request.match_info["kind"], request.method
    path = request.match_info.get("path", "")
    is_list = method == "LIST" or (method == "GET" and request.query.get("list") in ("true", "1"))
    if kind == "metadata" and is_list:
        return await _guard(request, _list, "secrets.list", READ)
    if not path:
        raise _not_allowed(request, ("LIST",)) if kind == "metadata" else NotFound()
    secret = check_secret_name(path)
    if kind == "data":
        if method == "GET":
            return await _guard(request, _read, "secrets.read", READ, secret=secret)
        if method in ("POST", "PUT"):
            try:
                return await _guard(request, _write, "secrets.write", WRITE, secret=secret)
            except Conflict:
                # Audited as the store's conflict by the guard; told the way Vault tells it.
                raise BadRequest(CAS_MISMATCH) from None
        raise _not_allowed(request, ("GET", "POST", "PUT"))
    if kind == "metadata":
        if method == "GET":
            return await _guard(request, _metadata, "secrets.metadata", READ, secret=secret)
        if method == "DELETE":
            return await _guard(request, _destroy_all, "secrets.destroy", DELETE, secret=secret)
        raise _not_allowed(request, ("GET", "LIST", "DELETE"))
    if method not in ("POST", "PUT"):
        raise _not_allowed(request, ("POST", "PUT"))
    operation = {"delete": "secrets.delete", "undelete": "secrets.undelete", "destroy": "secrets.destroy"}[kind]
    return await _guard(request, partial(_change, change=kind), operation, DELETE, secret=secret)


# -- tokens and mounts -------------------------------------------------------------------------


async def _lookup(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    services = _svc(request)
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
    await services.audit.record(ctx.event("ok", detail={"expires": expiry}))
    data = {
        "accessor": "",
        "creation_time": issued or 0,
        "creation_ttl": 0,
        "display_name": "cvault",
        "entity_id": caller.actor or "",
        "expire_time": _time(expiry) or None,
        "explicit_max_ttl": 0,
        "id": caller.token_id,
        "issue_time": _time(issued) or None,
        "meta": meta,
        "num_uses": 0,
        "orphan": True,
        "path": "auth/token/create",
        "policies": [mask_to_string(caller.effective_mask())],
        "renewable": False,
        "ttl": max(0, expiry - now) if expiry is not None else 0,
        "type": "service",
    }
    return vault_json(_envelope(request, data))


async def lookup_self(request: web.Request) -> web.StreamResponse:
    """``GET /v1/auth/token/lookup-self``: is the bundle alive, and what may it do."""
    org_id = await _token_org(_svc(request), request.headers)
    if org_id is None:
        vault_credentials(request.headers)  # a missing token says so (still a 403 to Vault clients)
        raise InvalidToken()
    return await run_guarded(
        request,
        _lookup,
        org_id=org_id,
        operation="tokens.lookup",
        action=0,
        credentials_of=vault_credentials,
        live_only=True,
    )


async def ui_mount(request: web.Request) -> web.StreamResponse:
    """``GET /v1/sys/internal/ui/mounts/<path>``: the Vault CLI's "which KV version is this mount" question.

    Purely syntactic (no token is needed to learn that every mount is KV version 2);
    reading anything under the mount goes through the guard.
    """
    parts = request.match_info["path"].split("/")
    if len(parts) < 2:
        raise NotFound()
    slug, vault = check_slug(parts[0]), check_vault_name(parts[1])
    data = {
        "path": f"{slug}/{vault}/",
        "type": "kv",
        "description": "cvault vault",
        "options": {"version": "2"},
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
        "local": False,
        "seal_wrap": False,
        "external_entropy_access": False,
    }
    return vault_json(_envelope(request, data))


async def no_route(request: web.Request) -> web.StreamResponse:
    raise NotFound()


def create_vault_kv_app(*, monotonic: Any = time.monotonic) -> web.Application:
    """The sub-application; the store app mounts it at ``/vault`` and shares its services."""
    app = web.Application()
    app[RENDERER_KEY] = render_vault_error
    app[MOUNTS_KEY] = MountDirectory(monotonic)
    r = app.router
    r.add_get("/v1/auth/token/lookup-self", lookup_self)
    r.add_get("/v1/sys/internal/ui/mounts/{path:.+}", ui_mount)
    kinds = "{kind:data|metadata|delete|undelete|destroy}"
    r.add_route("*", f"{_MOUNT}/{kinds}/{{path:[A-Za-z0-9._/-]+}}", kv_route)
    r.add_route("*", f"{_MOUNT}/{{kind:metadata}}/", kv_route)
    r.add_route("*", f"{_MOUNT}/{{kind:metadata}}", kv_route)
    r.add_route("*", "/{tail:.*}", no_route)
    return app
