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
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from aiohttp import web

from vault.errors import BadRequest, Conflict, NotFound
from vault.macaroon import CONTROL, CREATE, DELETE, READ, WRITE
from vault.names import VERSIONS_MESSAGE, check_secret_name, check_value, check_versions
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
from vault.store.mounts import RESERVED_VAULT_NAMES
from vault.types import RequestContext

from ..contract import Operation, Response, decode_body, decode_params, openapi_document
from .guard import idempotency_key, record_failure
from .services import StoreServices, services_of
from .vault_auth import AUTH_OPERATIONS
from .vault_messages import (
    MERGE_PATCH,
    ConfigWrite,
    Envelope,
    KVConfigReply,
    KVList,
    KVPatch,
    KVRead,
    KVWrite,
    MetadataPatch,
    MetadataQuery,
    MetadataWrite,
    OwnEntryPath,
    OwnMountPath,
    OwnSecretPath,
    ReadQuery,
    SecretMetadata,
    SlugEntryPath,
    SlugMountPath,
    SlugSecretPath,
    Subkeys,
    SubkeysQuery,
    VaultErrors,
    VersionMetadata,
    Versions,
    VersionState,
)
from .vault_reply import envelope, guard, render_vault_error, rfc3339, vault_json
from .vault_sys import SYS_OPERATIONS

__all__ = [
    "CAS_MISMATCH",
    "CAS_REQUIRED",
    "KV_OPERATIONS",
    "VAULT_OPERATIONS",
    "VAULT_PREFIX",
    "render_vault_error",
]

CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"
VAULT_PREFIX = "/vault"
LIST_PAGE = 1000
MAX_LIST_PAGES = 10

Guarded = Callable[..., Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _svc(request: web.Request) -> StoreServices:
    return services_of(request)


def _version_metadata(created: dt.datetime | int, version: int, info: VersionInfo | None = None) -> VersionMetadata:
    return VersionMetadata(
        created_time=rfc3339(created),
        deletion_time=rfc3339(info.deleted_at) if info is not None else "",
        destroyed=info is not None and info.state == "destroyed",
        version=version,
    )


# -- data -------------------------------------------------------------------------------------


async def _read(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    # Vault: 0 is the latest. Most reads ask for it: no query to parse.
    version = decode_params(request.query, ReadQuery).version or None if request.query_string else None
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
        metadata = _version_metadata(info.created_at, info.version, info)
        return vault_json(envelope(request, KVRead(data=None, metadata=metadata)), 404)
    metadata = VersionMetadata(
        created_time=rfc3339(r.created_at_unix), deletion_time="", destroyed=False, version=r.version
    )
    return vault_json(envelope(request, KVRead(data=kv_value(r.value), metadata=metadata)))


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
    try:
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
    except Conflict:
        # Audited as the store's conflict; told the way Vault tells it.
        raise BadRequest(CAS_MISMATCH) from None
    return vault_json(envelope(request, _version_metadata(now, outcome.version)))


async def _write(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    body = await decode_body(request, KVWrite)
    cas = body.options.cas if body.options is not None else None
    return await _store(ctx, request, vault, secret, stored_value(body.data), cas, cas_given=cas is not None)


async def _patch(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    """JSON merge patch of the current version: a read (audited as one) and a write with ``cas`` = the version read."""
    body = await decode_body(request, KVPatch)
    cas = body.options.cas if body.options is not None else None
    services = _svc(request)
    reading = ctx._replace(operation="secrets.read")
    ctx.verified_caller.check(access_for(reading, int(services.clock()), READ, vault=vault, secret=secret))
    current = await services.secrets.read(reading, vault, secret)
    if cas is not None and cas != current.version:
        raise BadRequest(CAS_MISMATCH)
    # The write carries the version read as its cas; cas_required still asks the caller for one (as Vault).
    value = stored_value(merge_patch(kv_value(current.value), body.data))
    return await _store(ctx, request, vault, secret, value, current.version, cas_given=cas is not None)


async def _subkeys(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str) -> web.StreamResponse:
    """``GET <mount>/subkeys/<path>``: the value's keys without its values (a read, audited as one)."""
    query = decode_params(request.query, SubkeysQuery)
    r = await _svc(request).secrets.read(ctx, vault, secret, version=query.version or None)
    data = Subkeys(
        subkeys=subkeys(kv_value(r.value), query.depth), metadata=_version_metadata(r.created_at_unix, r.version)
    )
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


def _change(change: str) -> Guarded:
    async def handler(
        request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
    ) -> web.StreamResponse:
        try:
            body = await decode_body(request, Versions)
        except BadRequest as exc:
            # The decoder names the pattern; the rule in words says what to send.
            raise BadRequest(VERSIONS_MESSAGE) if "$.versions" in exc.message else exc from None
        versions = check_versions(body.versions)
        await _svc(request).secrets.change_versions(ctx, vault, secret, versions, change)
        return web.Response(status=204)

    return handler


# -- metadata -----------------------------------------------------------------------------------


async def _list(request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: None) -> web.StreamResponse:
    """The keys under the path (a folder; none: the mount's top). Checked as a listing of the vault."""
    path = request.match_info.get("path", "")
    prefix = path if not path or path.endswith("/") else path + "/"
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
    return vault_json(envelope(request, KVList(keys=keys)))


async def _metadata(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    meta = await _svc(request).secrets.metadata(ctx, vault, secret)
    versions = {
        str(v.version): VersionState(
            created_time=rfc3339(v.created_at),
            deletion_time=rfc3339(v.deleted_at),
            destroyed=v.state == "destroyed",
        )
        for v in meta.versions
    }
    data = SecretMetadata(
        cas_required=meta.cas_required,
        created_time=rfc3339(meta.created_at),
        current_version=meta.current_version or 0,
        custom_metadata=meta.custom_metadata,
        delete_version_after=format_duration(meta.delete_version_after),
        max_versions=meta.max_versions,
        oldest_version=min((v.version for v in meta.versions), default=0),
        updated_time=rfc3339(meta.updated_at),
        versions=versions,
    )
    return vault_json(envelope(request, data))


def _flag(value: bool | str | None) -> bool | None:
    return value if value is None or isinstance(value, bool) else value == "true"  # form-style clients send text


def _metadata_update(
    body: MetadataWrite | MetadataPatch | ConfigWrite, custom: dict[str, Any] | None
) -> MetadataUpdate:
    # The models admit only what these parsers accept; they turn Vault's spellings into the stored values.
    return MetadataUpdate(
        max_versions=check_max_versions(body.max_versions) if body.max_versions is not None else None,
        cas_required=_flag(body.cas_required),
        delete_version_after=(
            parse_duration(body.delete_version_after) if body.delete_version_after is not None else None
        ),
        custom_metadata=check_custom_metadata(custom) if custom is not None else None,
    )


async def _write_metadata(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: str
) -> web.StreamResponse:
    body = await decode_body(request, MetadataWrite)
    update = _metadata_update(body, body.custom_metadata)
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
    body = await decode_body(request, MetadataPatch)
    services = _svc(request)
    reading = ctx._replace(operation="secrets.metadata")
    ctx.verified_caller.check(access_for(reading, int(services.clock()), READ, vault=vault, secret=secret))
    current = await services.secrets.metadata(reading, vault, secret)
    custom = None
    if body.custom_metadata is not None:
        custom = merge_patch(current.custom_metadata or {}, body.custom_metadata)
    await services.kv.update_metadata(ctx, vault, secret, _metadata_update(body, custom), may_create=False)
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


def _config_body(config: KVConfig) -> KVConfigReply:
    return KVConfigReply(
        cas_required=config.cas_required,
        delete_version_after=format_duration(config.delete_version_after),
        max_versions=config.max_versions,
    )


async def _read_config(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: None
) -> web.StreamResponse:
    return vault_json(envelope(request, _config_body(await _svc(request).kv.config(ctx, vault))))


async def _write_config(
    request: web.Request, ctx: RequestContext[Caller], *, vault: str, secret: None
) -> web.StreamResponse:
    update = _metadata_update(await decode_body(request, ConfigWrite), None)
    await _svc(request).kv.set_config(ctx, vault, update)
    return web.Response(status=204)


# -- routes ------------------------------------------------------------------------------------------


def _guarded(path: type, handler: Guarded, operation: str, action: int, *, names_secret: bool = True) -> Route:
    """The route of a KV operation: its path parameters decoded, then ``handler`` run through the guard (for the
    secret the path names, unless it is a folder to list)."""

    async def route(request: web.Request) -> web.StreamResponse:
        p: Any = decode_params(request.match_info, path, "path")
        secret = check_secret_name(p.path) if names_secret and hasattr(p, "path") else None
        return await guard(
            request, handler, operation, action, vault=p.vault, slug=getattr(p, "slug", None), secret=secret
        )

    return route


def _merge_patch(handler: Guarded) -> Guarded:
    async def checked(request: web.Request, ctx: RequestContext[Caller], **where: Any) -> web.StreamResponse:
        if request.content_type != MERGE_PATCH:
            return vault_json(VaultErrors(errors=[f"PATCH needs Content-Type: {MERGE_PATCH}"]), 415)
        return await handler(request, ctx, **where)

    return checked


def _metadata_or_list(path: type) -> Route:
    """``GET <mount>/metadata/<path>``: the secret's metadata; with ``?list=true`` (or as ``LIST``) the keys under
    the path. A path that cannot name a secret (``a/``, ``a//b``) has no metadata: 404."""
    listing = _guarded(path, _list, "secrets.list", READ, names_secret=False)
    reading = _guarded(path, _metadata, "secrets.metadata", READ)

    async def route(request: web.Request) -> web.StreamResponse:
        if request.method == "LIST" or (request.query_string and decode_params(request.query, MetadataQuery).list):
            return await listing(request)
        try:
            check_secret_name(request.match_info["path"])
        except BadRequest:
            raise NotFound("no secret can have this name; list the folder with ?list=true") from None
        return await reading(request)

    return route


def _list_top(path: type) -> Route:
    """``GET <mount>/metadata/?list=true`` (or ``LIST``): the mount's top-level keys; without ``list``, nothing."""

    listing = _guarded(path, _list, "secrets.list", READ)

    async def route(request: web.Request) -> web.StreamResponse:
        if request.method == "LIST" or (request.query_string and decode_params(request.query, MetadataQuery).list):
            return await listing(request)
        raise NotFound("a mount has no metadata; list it with ?list=true")

    return route


_SLUG = "{slug:[a-z0-9][a-z0-9-]{0,62}}"
_VAULT = "{vault:[a-z0-9][a-z0-9_-]{0,62}}"
# <vault> alone: the token's own org. Not the Vault API's own top-level paths (sys/, auth/, ...).
_OWN_VAULT = "{vault:(?!(?:" + "|".join(sorted(RESERVED_VAULT_NAMES)) + ")(?![a-z0-9_-]))[a-z0-9][a-z0-9_-]{0,62}}"
# The route takes any path of these characters; the operation's model says which it accepts (400 otherwise).
_PATH = "{path:[A-Za-z0-9._/-]+}"
# Authorization first: a client sends one or the other, and X-Vault-Token, when not empty, is the one read.
_SECURITY: Final = ("bundle", "vaultToken")
_ERRORS: Final = (400, 403, 404, 405, 413, 429, 503)
_SEE = "Vault KV version 2 semantics; see docs/vault-compat.md."
_NO_BODY = Response(None, description="done (no body)")


def _ok(model: Any, description: str = "Vault's reply envelope") -> dict[int | str, Response]:
    return {200: Response(model, description=description)}


def _mount_operations(
    mount: str, mount_path: type, secret_path: type, entry_path: type, suffix: str
) -> Iterator[Operation]:
    """The KV operations under one form of mount: ``<slug>/<vault>`` or the token's org's ``<vault>``."""

    def op(method: str, route: str, handler: Any, name: str, summary: str, **kw: Any) -> Operation:
        kw.setdefault("errors", _ERRORS)
        return Operation(
            method=method,
            route=f"{VAULT_PREFIX}/v1/{mount}{route}",
            handler=handler,
            id=f"vault.{name}{suffix}",
            summary=summary,
            description=_SEE,
            security=_SECURITY,
            error_model=VaultErrors,
            **kw,
        )

    data, meta = f"/data/{_PATH}", f"/metadata/{_PATH}"
    envelope_of_version = _ok(Envelope[VersionMetadata], "the version written")
    yield op(
        "GET",
        data,
        _guarded(secret_path, _read, "secrets.read", READ),
        "read",
        "Read a version (?version=N; 0, the default, is the latest)",
        path=secret_path,
        query=ReadQuery,
        responses={
            200: Response(Envelope[KVRead]),
            404: Response(
                (VaultErrors, Envelope[KVRead]),
                description="no such version; a deleted or destroyed one: the envelope, data null, its metadata",
            ),
        },
    )
    for method in ("POST", "PUT"):
        yield op(
            method,
            data,
            _guarded(secret_path, _write, "secrets.write", WRITE),
            f"write_{method.lower()}",
            "Write a new version (options.cas: the version it replaces, 0 for a new secret)",
            path=secret_path,
            body=KVWrite,
            responses=envelope_of_version,
        )
    yield op(
        "PATCH",
        data,
        _guarded(secret_path, _merge_patch(_patch), "secrets.write", WRITE),
        "patch",
        "Merge-patch the latest version into a new one (a read and a write)",
        path=secret_path,
        body=KVPatch,
        body_media=MERGE_PATCH,
        responses=envelope_of_version,
        errors=(*_ERRORS, 415),
    )
    yield op(
        "DELETE",
        data,
        _guarded(secret_path, _delete_latest, "secrets.delete", DELETE),
        "delete_latest",
        "Soft-delete the latest version (204 for a missing secret too)",
        path=secret_path,
        responses={204: _NO_BODY},
    )
    yield op(
        "GET",
        meta,
        _metadata_or_list(entry_path),
        "metadata",
        "The secret's metadata; with ?list=true (or the LIST method) the keys under the path",
        path=entry_path,
        query=MetadataQuery,
        responses=_ok((Envelope[SecretMetadata], Envelope[KVList])),
        aliases=("LIST",),
    )
    for method in ("POST", "PUT"):
        yield op(
            method,
            meta,
            _guarded(secret_path, _write_metadata, "secrets.metadata_write", WRITE),
            f"metadata_write_{method.lower()}",
            "Write the secret's metadata (creates a secret without versions)",
            path=secret_path,
            body=MetadataWrite,
            responses={204: _NO_BODY},
        )
    yield op(
        "PATCH",
        meta,
        _guarded(secret_path, _merge_patch(_patch_metadata), "secrets.metadata_write", WRITE),
        "metadata_patch",
        "Patch the secret's metadata (custom_metadata merged; null removes a key)",
        path=secret_path,
        body=MetadataPatch,
        body_media=MERGE_PATCH,
        responses={204: _NO_BODY},
        errors=(*_ERRORS, 415),
    )
    yield op(
        "DELETE",
        meta,
        _guarded(secret_path, _destroy_all, "secrets.destroy", DELETE),
        "destroy_all",
        "Destroy the secret, every version (204 for a missing secret too)",
        path=secret_path,
        responses={204: _NO_BODY},
    )
    for route in ("/metadata/", "/metadata"):
        yield op(
            "GET",
            route,
            _list_top(mount_path),
            "list_top" if route.endswith("/") else "list_top_bare",
            "With ?list=true (or the LIST method): the mount's top-level keys; else 404",
            path=mount_path,
            query=MetadataQuery,
            responses=_ok(Envelope[KVList]),
            aliases=("LIST",),
        )
    for kind, operation in (
        ("delete", "secrets.delete"),
        ("undelete", "secrets.undelete"),
        ("destroy", "secrets.destroy"),
    ):
        for method in ("POST", "PUT"):
            yield op(
                method,
                f"/{kind}/{_PATH}",
                _guarded(secret_path, _change(kind), operation, DELETE),
                f"{kind}_{method.lower()}",
                f"{kind.capitalize()} the versions given",
                path=secret_path,
                body=Versions,
                responses={204: _NO_BODY},
            )
    yield op(
        "GET",
        f"/subkeys/{_PATH}",
        _guarded(secret_path, _subkeys, "secrets.read", READ),
        "subkeys",
        "The version's keys, every other value null (?version=N, ?depth=N; 0 unlimited)",
        path=secret_path,
        query=SubkeysQuery,
        responses=_ok(Envelope[Subkeys]),
    )
    yield op(
        "GET",
        "/config",
        _guarded(mount_path, _read_config, "vaults.config", READ),
        "config",
        "The mount's max_versions, cas_required, delete_version_after",
        path=mount_path,
        responses=_ok(Envelope[KVConfigReply]),
    )
    for method in ("POST", "PUT"):
        yield op(
            method,
            "/config",
            _guarded(mount_path, _write_config, "vaults.configure", CONTROL),
            f"configure_{method.lower()}",
            "Set them (needs 'C': it governs every secret of the vault)",
            path=mount_path,
            body=ConfigWrite,
            responses={204: _NO_BODY},
        )


# The two-segment mount first: a path that reads both ways is <slug>/<vault>/... (docs/vault-compat.md).
KV_OPERATIONS: Final = (
    *_mount_operations(f"{_SLUG}/{_VAULT}", SlugMountPath, SlugSecretPath, SlugEntryPath, ""),
    *_mount_operations(_OWN_VAULT, OwnMountPath, OwnSecretPath, OwnEntryPath, "_own_org"),
)
VAULT_OPERATIONS: Final = (*SYS_OPERATIONS, *AUTH_OPERATIONS, *KV_OPERATIONS)
"""Every route of the Vault-compatible API (served by the store app under :data:`VAULT_PREFIX`)."""

SECURITY_SCHEMES: Final = {
    "bundle": {
        "type": "http",
        "scheme": "bearer",
        "description": "a store token and its bound org discharge, comma-separated (cv1_...)",
    },
    "vaultToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Vault-Token",
        "description": "a store bundle, for the Vault-compatible API under /vault (or Authorization: Bearer)",
    },
}


def vault_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI document of :data:`VAULT_OPERATIONS` (the store's document includes its paths)."""
    return openapi_document(
        title="cvault store: the Vault-compatible API",
        version="1",
        server_url=server_url,
        operations=VAULT_OPERATIONS,
        security_schemes=SECURITY_SCHEMES,
    )
