"""The HashiCorp Vault-compatible API: KV version 2 under ``<store>/vault``.

A thin translation layer (``docs/vault-compat.md``): every request goes through
the store's own guard (:func:`.guard.run_guarded`: bundle verification, org
discharge, caveats, audit of refusals) and the store's services, with the same
operation names and actions as the native routes, so audit events, caveats and
discharges apply exactly as there. Only the addressing, the token header, the
bodies and the error shapes are Vault's (:mod:`.vault_reply`); ``sys/`` and
``auth/token/`` are in :mod:`.vault_sys`.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from aiohttp import web

from vault.errors import BadRequest, Conflict, NotFound
from vault.macaroon import CONTROL, CREATE, DELETE, READ, WRITE
from vault.names import check_prefix, check_secret_name, check_value, check_versions
from vault.store.caller import Caller
from vault.store.events import access_for
from vault.store.kv import kv_keys, kv_value, stored_value
from vault.store.kv_fields import (
    check_custom_metadata,
    check_max_versions,
    format_duration,
    merge_patch,
    parse_duration,
    subkeys,
)
from vault.store.models import KVConfig, MetadataUpdate, VersionInfo
from vault.store.mounts import KV_KINDS, RESERVED_VAULT_NAMES
from vault.types import RequestContext

from ..common import RENDERER_KEY, int_param, read_json
from .guard import idempotency_key, record_failure
from .services import StoreServices, services_of
from .vault_auth import add_auth_routes
from .vault_kv_openapi import MERGE_PATCH
from .vault_reply import envelope, guard, read_reply, render_vault_error, rfc3339, vault_json
from .vault_sys import add_sys_routes

__all__ = [
    "CAS_MISMATCH",
    "CAS_REQUIRED",
    "VAULT_PREFIX",
    "add_vault_kv_routes",
    "create_vault_kv_app",
    "render_vault_error",
]

CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"
VAULT_PREFIX = "/vault"
LIST_PAGE = 1000
MAX_LIST_PAGES = 10

_SLUG = "{slug:[a-z0-9][a-z0-9-]{0,62}}"
_VAULT = "{vault:[a-z0-9][a-z0-9_-]{0,62}}"
_MOUNT = f"/v1/{_SLUG}/{_VAULT}"
# <vault> alone: the token's own org. Not the Vault API's own top-level paths (sys/, auth/, ...).
_ONE_SEGMENT_MOUNT = (
    "/v1/{vault:(?!(?:" + "|".join(sorted(RESERVED_VAULT_NAMES)) + ")(?![a-z0-9_-]))[a-z0-9][a-z0-9_-]{0,62}}"
)


def _svc(request: web.Request) -> StoreServices:
    return services_of(request)


def _version_metadata(created: dt.datetime | int, version: int, info: VersionInfo | None = None) -> dict[str, Any]:
    return {
        "created_time": rfc3339(created),
        "custom_metadata": None,
        "deletion_time": rfc3339(info.deleted_at) if info is not None else "",
        "destroyed": info is not None and info.state == "destroyed",
        "version": version,
    }


def _cas(options: object) -> int | None:
    if options is None:
        return None
    if not isinstance(options, dict):
        raise BadRequest("options must be a JSON object")
    cas = options.get("cas")
    if cas is not None and (not isinstance(cas, int) or isinstance(cas, bool) or cas < 0):
        raise BadRequest("options.cas must be a version number (0: the secret must not exist yet)")
    return cas


# -- data -------------------------------------------------------------------------------------


async def _read(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    # Vault: 0 is the latest. Most reads ask for it: no query to parse.
    version = (int_param(request, "version", minimum=0) or None) if request.query_string else None
    services = _svc(request)
    try:
        r = await services.secrets.read(ctx, vault, secret, version=version)
    except NotFound as exc:
        info = await services.kv.unreadable_version(ctx, vault, secret, version)
        if info is None:
            raise
        # Vault answers a deleted or destroyed version with its metadata (hvac's
        # raise_on_deleted_version=False, consul-template's deletion check read it).
        await record_failure(request, ctx, exc, vault, secret)
        body = {"data": None, "metadata": _version_metadata(info.created_at, info.version, info)}
        return vault_json(envelope(request, body), 404)
    return read_reply(request, kv_value(r.value), rfc3339(r.created_at_unix), r.version)


async def _store(
    ctx: RequestContext[Caller],
    request: web.Request,
    vault: str,
    secret: str,
    value: str,
    cas: int | None,
    *,
    cas_given: bool,
) -> web.StreamResponse:
    services = _svc(request)
    rules = await services.kv.write_rules(ctx, vault, secret)
    if rules.cas_required and not cas_given:
        raise BadRequest(CAS_REQUIRED)
    now = int(services.clock())
    may_create = ctx.verified_caller.allows(access_for(ctx, now, WRITE | CREATE, vault=vault, secret=secret))
    outcome = await services.secrets.write(
        ctx,
        vault,
        secret,
        check_value(value),
        cas=cas,
        pending=False,
        max_versions=rules.new_max_versions,
        may_create=may_create,
        idempotency_key=idempotency_key(request.headers),
    )
    return vault_json(envelope(request, _version_metadata(now, outcome.version)))


async def _write(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    body = await read_json(request)
    cas = _cas(body.get("options"))
    return await _store(ctx, request, vault, secret, stored_value(body.get("data")), cas, cas_given=cas is not None)


async def _patch(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    """JSON merge patch of the current version: a read (audited as one) and a write with ``cas`` = the version read."""
    body = await read_json(request)
    cas = _cas(body.get("options"))
    patch = body.get("data")
    if not isinstance(patch, dict):
        raise BadRequest("data must be a JSON object")
    services = _svc(request)
    reading = ctx._replace(operation="secrets.read")
    ctx.verified_caller.check(access_for(reading, int(services.clock()), READ, vault=vault, secret=secret))
    current = await services.secrets.read(reading, vault, secret)
    if cas is not None and cas != current.version:
        raise BadRequest(CAS_MISMATCH)
    # The write carries the version read as its cas; cas_required still asks the caller for one (as Vault).
    value = stored_value(merge_patch(kv_value(current.value), patch))
    return await _store(ctx, request, vault, secret, value, current.version, cas_given=cas is not None)


async def _subkeys(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    """``GET <mount>/subkeys/<path>``: the value's keys without its values (a read, audited as one)."""
    version = int_param(request, "version", minimum=0) or None
    depth = int_param(request, "depth", minimum=0) or 0
    r = await _svc(request).secrets.read(ctx, vault, secret, version=version)
    data = {"subkeys": subkeys(kv_value(r.value), depth), "metadata": _version_metadata(r.created_at_unix, r.version)}
    return vault_json(envelope(request, data))


async def _absent_is_done(request: web.Request, ctx: RequestContext[Caller], exc: NotFound, vault: str) -> None:
    """Vault deletes a missing secret with a 204; a missing vault stays an error (the guard's 403)."""
    if not await _svc(request).kv.has_vault(ctx.verified_caller.org_id, vault):
        raise exc
    await record_failure(request, ctx, exc, vault, request.match_info.get("path"))


async def _delete_latest(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    try:
        await _svc(request).kv.delete_latest(ctx, vault, secret)
    except NotFound as exc:
        await _absent_is_done(request, ctx, exc, vault)
    return web.Response(status=204)


async def _change(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str, change: str
) -> web.StreamResponse:
    versions = check_versions((await read_json(request)).get("versions"))
    await _svc(request).secrets.change_versions(ctx, vault, secret, versions, change)
    return web.Response(status=204)


# -- metadata -----------------------------------------------------------------------------------


async def _list(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str | None
) -> web.StreamResponse:
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
    return vault_json(envelope(request, {"keys": keys}))


async def _metadata(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    meta = await _svc(request).secrets.metadata(ctx, vault, secret)
    versions = {
        str(v.version): {
            "created_time": rfc3339(v.created_at),
            "deletion_time": rfc3339(v.deleted_at),
            "destroyed": v.state == "destroyed",
        }
        for v in meta.versions
    }
    data = {
        "cas_required": meta.cas_required,
        "created_time": rfc3339(meta.created_at),
        "current_version": meta.current_version or 0,
        "custom_metadata": meta.custom_metadata,
        "delete_version_after": format_duration(meta.delete_version_after),
        "max_versions": meta.max_versions,
        "oldest_version": min((v.version for v in meta.versions), default=0),
        "updated_time": rfc3339(meta.updated_at),
        "versions": versions,
    }
    return vault_json(envelope(request, data))


def _metadata_update(body: dict[str, Any]) -> MetadataUpdate:
    return MetadataUpdate(
        max_versions=check_max_versions(body["max_versions"]) if body.get("max_versions") is not None else None,
        cas_required=_bool(body, "cas_required"),
        delete_version_after=(
            parse_duration(body["delete_version_after"]) if body.get("delete_version_after") is not None else None
        ),
        custom_metadata=(
            check_custom_metadata(body["custom_metadata"]) if body.get("custom_metadata") is not None else None
        ),
    )


def _bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):  # form-style clients send strings
        return bool(value == "true")
    raise BadRequest(f"{name} must be true or false")


async def _write_metadata(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    update = _metadata_update(await read_json(request))
    services = _svc(request)
    now = int(services.clock())
    may_create = ctx.verified_caller.allows(access_for(ctx, now, WRITE | CREATE, vault=vault, secret=secret))
    await services.kv.update_metadata(ctx, vault, secret, update, may_create=may_create)
    return web.Response(status=204)


async def _patch_metadata(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    """``PATCH <mount>/metadata/<path>`` (``kv metadata patch``): the fields given; ``custom_metadata`` is
    merged (a ``null`` value removes a key). The secret must exist (its metadata is read, audited as a read)."""
    body = await read_json(request)
    services = _svc(request)
    reading = ctx._replace(operation="secrets.metadata")
    ctx.verified_caller.check(access_for(reading, int(services.clock()), READ, vault=vault, secret=secret))
    current = await services.secrets.metadata(reading, vault, secret)
    custom = body.get("custom_metadata")
    if custom is not None:
        if not isinstance(custom, dict):
            raise BadRequest("custom_metadata must be a JSON object")
        body = {**body, "custom_metadata": merge_patch(current.custom_metadata or {}, custom)}
    await services.kv.update_metadata(ctx, vault, secret, _metadata_update(body), may_create=False)
    return web.Response(status=204)


async def _destroy_all(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    try:
        await _svc(request).secrets.destroy_secret(ctx, vault, secret)
    except NotFound as exc:
        await _absent_is_done(request, ctx, exc, vault)
    return web.Response(status=204)


# -- mount configuration ----------------------------------------------------------------------------


def _config_body(config: KVConfig) -> dict[str, Any]:
    return {
        "cas_required": config.cas_required,
        "delete_version_after": format_duration(config.delete_version_after),
        "max_versions": config.max_versions,
    }


async def _read_config(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: None
) -> web.StreamResponse:
    return vault_json(envelope(request, _config_body(await _svc(request).kv.config(ctx, vault))))


async def _write_config(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: None
) -> web.StreamResponse:
    update = _metadata_update(await read_json(request))
    await _svc(request).kv.set_config(ctx, vault, update)
    return web.Response(status=204)


async def config_route(request: web.Request) -> web.StreamResponse:
    """``/v1/<slug>/<vault>/config``: the mount's KV settings (read: ``r``; write: ``C``, it governs every secret)."""
    if request.method == "GET":
        return await guard(request, _read_config, "vaults.config", READ)
    if request.method in ("POST", "PUT"):
        return await guard(request, _write_config, "vaults.configure", CONTROL)
    raise web.HTTPMethodNotAllowed(request.method, ("GET", "POST", "PUT"))


# -- dispatch ------------------------------------------------------------------------------------------


def _not_allowed(request: web.Request, allowed: tuple[str, ...]) -> web.HTTPMethodNotAllowed:
    return web.HTTPMethodNotAllowed(request.method, allowed)


async def _data_route(request: web.Request, method: str, secret: str) -> web.StreamResponse:
    if method == "GET":
        return await guard(request, _read, "secrets.read", READ, secret=secret)
    if method == "DELETE":
        return await guard(request, _delete_latest, "secrets.delete", DELETE, secret=secret)
    if method == "PATCH":
        if request.content_type != MERGE_PATCH:
            return vault_json({"errors": [f"PATCH needs Content-Type: {MERGE_PATCH}"]}, 415)
        handler: Any = _patch
    elif method in ("POST", "PUT"):
        handler = _write
    else:
        raise _not_allowed(request, ("GET", "POST", "PUT", "PATCH", "DELETE"))
    try:
        return await guard(request, handler, "secrets.write", WRITE, secret=secret)
    except Conflict:
        # Audited as the store's conflict by the guard; told the way Vault tells it.
        raise BadRequest(CAS_MISMATCH) from None


async def kv_route(request: web.Request) -> web.StreamResponse:
    """``/v1/[<slug>/]<vault>/<kind>/<path>``: dispatch on kind and method (``LIST`` included)."""
    kind, method = request.match_info["kind"], request.method
    path = request.match_info.get("path", "")
    is_list = method == "LIST" or (
        method == "GET" and bool(request.query_string) and request.query.get("list") in ("true", "1")
    )
    if kind == "metadata" and is_list:
        return await guard(request, _list, "secrets.list", READ)
    if not path:
        raise _not_allowed(request, ("LIST",)) if kind == "metadata" else NotFound()
    secret = check_secret_name(path)
    if kind == "data":
        return await _data_route(request, method, secret)
    if kind == "metadata":
        if method == "GET":
            return await guard(request, _metadata, "secrets.metadata", READ, secret=secret)
        if method in ("POST", "PUT"):
            return await guard(request, _write_metadata, "secrets.metadata_write", WRITE, secret=secret)
        if method == "PATCH":
            if request.content_type != MERGE_PATCH:
                return vault_json({"errors": [f"PATCH needs Content-Type: {MERGE_PATCH}"]}, 415)
            return await guard(request, _patch_metadata, "secrets.metadata_write", WRITE, secret=secret)
        if method == "DELETE":
            return await guard(request, _destroy_all, "secrets.destroy", DELETE, secret=secret)
        raise _not_allowed(request, ("GET", "LIST", "POST", "PUT", "PATCH", "DELETE"))
    if kind == "subkeys":
        if method != "GET":
            raise _not_allowed(request, ("GET",))
        return await guard(request, _subkeys, "secrets.read", READ, secret=secret)
    if method not in ("POST", "PUT"):
        raise _not_allowed(request, ("POST", "PUT"))
    operation = {"delete": "secrets.delete", "undelete": "secrets.undelete", "destroy": "secrets.destroy"}[kind]
    return await guard(request, partial(_change, change=kind), operation, DELETE, secret=secret)


async def no_route(request: web.Request) -> web.StreamResponse:
    raise NotFound()


def add_vault_kv_routes(r: web.UrlDispatcher, prefix: str = VAULT_PREFIX) -> None:
    """The KV routes, on the store app itself under ``prefix``: a request routed through a sub-application
    costs aiohttp about as many instructions again as the whole Vault-API translation (docs/performance.md).
    Errors under ``prefix`` are rendered by :func:`render_vault_error` all the same (``PATH_RENDERERS_KEY``).
    Every path they match has a KV kind (or ``config``) after a mount, which no ``sys/`` or ``auth/`` route of
    the sub-application has, so they take nothing from it."""
    kinds = "{kind:" + "|".join(sorted(KV_KINDS)) + "}"
    # The two-segment mount first: a path that reads both ways is <slug>/<vault>/... (docs/vault-compat.md).
    for mount in (_MOUNT, _ONE_SEGMENT_MOUNT):
        r.add_route("*", f"{prefix}{mount}/{kinds}/{{path:[A-Za-z0-9._/-]+}}", kv_route)
        r.add_route("*", f"{prefix}{mount}/{{kind:metadata}}/", kv_route)
        r.add_route("*", f"{prefix}{mount}/{{kind:metadata}}", kv_route)
        r.add_route("*", f"{prefix}{mount}/config", config_route)


def create_vault_kv_app() -> web.Application:
    """The sub-application of the other routes (``sys/``, ``auth/``, unknown paths); the store app mounts it at
    ``/vault`` and shares its services."""
    app = web.Application()
    app[RENDERER_KEY] = render_vault_error
    r = app.router
    add_sys_routes(r)
    add_auth_routes(r)
    r.add_route("*", "/{tail:.*}", no_route)
    return app
