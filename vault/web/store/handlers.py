"""HTTP handlers of the store (routes in ``docs/api.md``). Parsing here, decisions in ``vault.store``."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import time
import uuid
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any

from aiohttp import web

from vault.audit.query import MAX_QUERY_LIMIT
from vault.errors import BadRequest
from vault.macaroon import AUDIT, CONTROL, CREATE, DELETE, READ, WRITE, mask_from_string
from vault.names import (
    check_org_id,
    check_prefix,
    check_secret_name,
    check_slug,
    check_stage,
    check_value,
    check_vault_name,
    check_versions,
)
from vault.store.caller import Caller
from vault.store.control import MintRequest
from vault.store.events import access_for, audit_event
from vault.store.models import VaultInfo
from vault.store.secrets import Revealed
from vault.types import RequestContext

from ..common import field, int_param, json_error, read_json
from .guard import guarded, idempotency_key
from .services import SERVICES_KEY, StoreServices, services_of

__all__ = ["add_routes"]

MAX_TTL = 10 * 365 * 86400
MAX_LIST = 1000
_MAX_FILTER = 1000
_MAX_SEQ = (1 << 63) - 1
_EXPORT_BATCH = 500  # lines per write of a streamed export
VERIFY_REUSE = 60  # seconds a served verification report is answered again
_ORG = "/v1/orgs/{org}"
_VAULT = _ORG + "/vaults/{vault}"
_NAME = "{name:[A-Za-z0-9._/-]+}"
_NO_STORE = {"Cache-Control": "no-store"}  # replies that carry secret values


def _svc(request: web.Request) -> StoreServices:
    return services_of(request)


def _now(request: web.Request) -> int:
    return int(_svc(request).clock())


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _mask(value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a permission string like 'r' or 'rw'")
    try:
        mask = mask_from_string(value)
    except ValueError as exc:
        raise BadRequest(f"{what}: {exc}") from None
    if mask == 0:
        raise BadRequest(f"{what} must allow at least one action")
    return mask


def _mask_map(data: dict[str, Any], name: str, check_key: Any) -> dict[str, int] | None:
    value = field(data, name, dict, required=False)
    if value is None:
        return None
    if not value or len(value) > 64:
        raise BadRequest(f"field {name!r} must map 1 to 64 names to masks")
    return {check_key(k): _mask(v, f"{name}[{k!r}]") for k, v in value.items()}


def _secret_pattern(pattern: str) -> str:
    check_prefix(pattern.removesuffix("$"))
    return pattern


# -- enrolment and tokens -----------------------------------------------------------


async def enroll_challenge(request: web.Request) -> web.StreamResponse:
    org_id = check_org_id(request.match_info["org"])
    return web.json_response({"challenge": _svc(request).control.challenge(org_id)})


@guarded("enroll", CONTROL, enrolled=False)
async def enroll(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    data = await read_json(request)
    raw = field(data, "slug", str, required=False)
    minted = await _svc(request).control.enroll(ctx, check_slug(raw) if raw is not None else None)
    return web.json_response({"token": minted.token, "id": minted.id}, status=201)


@guarded("tokens.mint", CONTROL)
async def mint_token(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    data = await read_json(request)
    ttl = field(data, "ttl", int, required=False)
    if ttl is not None and not 0 < ttl <= MAX_TTL:
        raise BadRequest(f"ttl must be between 1 and {MAX_TTL} seconds")
    mint = MintRequest(
        mask=_mask(field(data, "mask", str), "mask"),
        vaults=_mask_map(data, "vaults", check_vault_name),
        secrets=_mask_map(data, "secrets", _secret_pattern),
        ttl=ttl,
    )
    minted = await _svc(request).control.mint(ctx, mint)
    return web.json_response({"token": minted.token, "id": minted.id}, status=201)


@guarded("tokens.revoke", CONTROL)
async def revoke_token(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    raw = request.match_info["id"]
    try:
        token_id = str(uuid.UUID(raw))
    except ValueError:
        raise BadRequest("token id must be a UUID") from None
    ids = await _svc(request).control.revoke(ctx, token_id)
    return web.json_response({"revoked": token_id, "with_descendants": ids})


# -- vaults -----------------------------------------------------------------------------


def _vault(v: VaultInfo) -> dict[str, Any]:
    return {"name": v.name, "created_at": _time(v.created_at)}


@guarded("vaults.list", READ)
async def list_vaults(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    vaults = await _svc(request).control.list_vaults(ctx)
    return web.json_response({"vaults": [_vault(v) for v in vaults]})


@guarded("vaults.create", CONTROL)
async def create_vault(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    data = await read_json(request)
    name = check_vault_name(field(data, "name", str))
    info = await _svc(request).control.create_vault(ctx, name)
    return web.json_response({"name": info.name, "created_at": _time(info.created_at)}, status=201)


@guarded("vaults.delete", CONTROL)
async def delete_vault(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    await _svc(request).control.delete_vault(ctx, request.match_info["vault"])
    return web.Response(status=204)


# -- secrets ------------------------------------------------------------------------------


def _cursor(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        name = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequest("cursor is not one this store returned") from None
    return check_secret_name(name)


def _next_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode()


@guarded("secrets.list", READ)
async def list_secrets(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    prefix = check_prefix(request.query.get("prefix", ""))
    limit = int_param(request, "limit", default=100, minimum=1) or 100
    limit = min(limit, MAX_LIST)
    after = _cursor(request.query.get("cursor"))
    found = await _svc(request).secrets.list_names(
        ctx, request.match_info["vault"], prefix=prefix, after=after, limit=limit
    )
    return web.json_response(
        {
            "secrets": [
                {"name": s.name, "current_version": s.current_version, "updated_at": _time(s.updated_at)} for s in found
            ],
            "next_cursor": _next_cursor(found[-1].name) if len(found) == limit else None,
        }
    )


@guarded("secrets.write", WRITE)
async def write_secret(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    vault, name = request.match_info["vault"], request.match_info["name"]
    data = await read_json(request)
    value = check_value(field(data, "value", str, allow_nul=True))
    cas = field(data, "cas", int, required=False)
    if cas is not None and cas < 0:
        raise BadRequest("cas must be a version number (0: the secret must not exist yet)")
    stage = field(data, "stage", str, required=False)
    if stage not in (None, "pending"):
        raise BadRequest("stage must be 'pending' (or absent, to write the current version)")
    max_versions = field(data, "max_versions", int, required=False)
    if max_versions is not None and not 1 <= max_versions <= 1000:
        raise BadRequest("max_versions must be between 1 and 1000")
    may_create = ctx.verified_caller.allows(access_for(ctx, _now(request), WRITE | CREATE, vault=vault, secret=name))
    outcome = await _svc(request).secrets.write(
        ctx,
        vault,
        name,
        value,
        cas=cas,
        pending=stage == "pending",
        max_versions=max_versions,
        may_create=may_create,
        idempotency_key=idempotency_key(request.headers),
    )
    return web.json_response({"name": name, "version": outcome.version, "stage": outcome.stage})


@functools.lru_cache(maxsize=1024)  # a version's creation time, read again and again
def _created_text(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def revealed_json(r: Revealed) -> bytes:
    """The reply to a secret read: exactly ``json.dumps`` of ``{name, version, value, stage, created_at}``.

    Written field by field because every read sends one, and ``json.dumps`` builds an
    encoder per call (a test compares the two). ``created_at`` is whole seconds in UTC,
    the text ``_time`` gives, without building a datetime.
    """
    created = _created_text(r.created_at_unix)
    stage = "null" if r.stage is None else _json_text(r.stage)
    return (
        f'{{"name": {_json_text(r.name)}, "version": {int(r.version)}, "value": {_json_text(r.value)}, '
        f'"stage": {stage}, "created_at": "{created}"}}'
    ).encode("ascii")


@guarded("secrets.read", READ)
async def read_secret(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    version = stage = None
    if request.query_string:  # most reads ask for the current version: no query to parse
        version = int_param(request, "version", minimum=1)
        stage_text = request.query.get("stage")
        stage = check_stage(stage_text) if stage_text is not None else None
        if version is not None and stage is not None:
            raise BadRequest("ask for a version or a stage, not both")
    revealed = await _svc(request).secrets.read(
        ctx, request.match_info["vault"], request.match_info["name"], version=version, stage=stage
    )
    return web.Response(body=revealed_json(revealed), content_type="application/json", headers=_NO_STORE)


async def _names_or_prefix(request: web.Request) -> tuple[list[str] | None, str]:
    """A batch request's body: ``{"names": [...]}``, ``{"prefix": "..."}`` or ``{}`` (every secret)."""
    data = await read_json(request)
    names = field(data, "names", list, required=False)
    prefix = check_prefix(field(data, "prefix", str, required=False) or "")
    if names is not None:
        if not names or len(names) > 1000 or not all(isinstance(n, str) for n in names):
            raise BadRequest("names must be a list of 1 to 1000 secret names")
        names = sorted({check_secret_name(n) for n in names})
        if prefix:
            raise BadRequest("give names or a prefix, not both")
    return names, prefix


@guarded("secrets.versions", READ, secrets_later=True)
async def current_versions(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    names, prefix = await _names_or_prefix(request)
    versions = await _svc(request).secrets.current_versions(
        ctx, request.match_info["vault"], names=names, prefix=prefix
    )
    missing = [n for n in names if n not in versions] if names is not None else []
    return web.json_response({"versions": versions, "missing": missing})


@guarded("secrets.batch_read", READ, secrets_later=True)
async def batch_read(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    names, prefix = await _names_or_prefix(request)
    result = await _svc(request).secrets.batch_read(ctx, request.match_info["vault"], names=names, prefix=prefix)
    return web.json_response(
        {
            "secrets": {r.name: {"version": r.version, "value": r.value} for r in result.secrets},
            "missing": list(result.missing),
        },
        headers=_NO_STORE,
    )


@guarded("secrets.metadata", READ)
async def metadata(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    meta = await _svc(request).secrets.metadata(ctx, request.match_info["vault"], request.match_info["name"])
    return web.json_response(
        {
            "name": meta.name,
            "current_version": meta.current_version,
            "max_versions": meta.max_versions,
            "created_at": _time(meta.created_at),
            "updated_at": _time(meta.updated_at),
            "versions": [
                {
                    "version": v.version,
                    "state": v.state,
                    "stage": v.stage,
                    "created_at": _time(v.created_at),
                    "created_by_token": v.created_by_token,
                }
                for v in meta.versions
            ],
        }
    )


async def _change(request: web.Request, ctx: RequestContext[Caller], change: str) -> web.StreamResponse:
    data = await read_json(request)
    versions = check_versions(data.get("versions"))
    changed = await _svc(request).secrets.change_versions(
        ctx, request.match_info["vault"], request.match_info["name"], versions, change
    )
    # Which of the requested versions changed: one that does not exist (or was already
    # in that state) is not reported as done.
    return web.json_response({"changed": changed})


@guarded("secrets.delete", DELETE)
async def delete_versions(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    return await _change(request, ctx, "delete")


@guarded("secrets.undelete", DELETE)
async def undelete_versions(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    return await _change(request, ctx, "undelete")


@guarded("secrets.destroy", DELETE)
async def destroy_versions(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    return await _change(request, ctx, "destroy")


@guarded("secrets.destroy", DELETE)
async def destroy_secret(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    await _svc(request).secrets.destroy_secret(ctx, request.match_info["vault"], request.match_info["name"])
    return web.Response(status=204)


@guarded("secrets.promote", WRITE)
async def promote(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    name = request.match_info["name"]
    current, previous = await _svc(request).secrets.promote(ctx, request.match_info["vault"], name)
    return web.json_response({"name": name, "current": current, "previous": previous})


# -- audit ----------------------------------------------------------------------------------


def _time_param(request: web.Request, name: str) -> dt.datetime | None:
    """``since``/``until``: Unix seconds or ISO 8601 (UTC if no offset is given)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit():
        return dt.datetime.fromtimestamp(min(int(raw), 253402300799), dt.UTC)
    try:
        value = dt.datetime.fromisoformat(raw)
        # In UTC here: the database driver converts too, and fails on times it cannot shift.
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise BadRequest(f"query parameter {name!r} must be Unix seconds or an ISO 8601 time") from None


def _text_param(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if raw is not None and ("\x00" in raw or len(raw) > _MAX_FILTER):
        raise BadRequest(f"query parameter {name!r} must be at most {_MAX_FILTER} characters, without NUL")
    return raw


@guarded("audit.query", AUDIT)
async def query_audit(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    q = request.query
    limit = min(int_param(request, "limit", default=100, minimum=1) or 100, MAX_QUERY_LIMIT)
    outcome = q.get("outcome")
    cursor = int_param(request, "cursor", minimum=0)
    if cursor is not None and cursor > _MAX_SEQ:
        raise BadRequest("cursor is not one this store returned")
    if outcome is not None and outcome not in ("ok", "denied", "error"):
        raise BadRequest("outcome must be ok, denied or error")
    order = q.get("order", "oldest")
    if order not in ("oldest", "newest"):
        raise BadRequest("order must be oldest or newest")
    own = q.get("own", "show")
    if own not in ("show", "hide"):
        raise BadRequest("own must be show or hide")
    caller = ctx.verified_caller
    mine = {"token_id": caller.token_id} | ({"actor": caller.actor} if caller.actor else {})
    events, next_cursor = await _svc(request).audit_queries.query(
        org=ctx.org_id,
        vault=_text_param(request, "vault"),
        secret=_text_param(request, "secret"),
        actor=_text_param(request, "actor"),
        token_id=_text_param(request, "token"),
        action=_text_param(request, "action"),
        outcome=outcome,
        since=_time_param(request, "since"),
        until=_time_param(request, "until"),
        cursor=cursor,
        limit=limit,
        newest_first=order == "newest",
        hide_audit_of=mine if own == "hide" else None,
    )
    await _svc(request).audit.record(audit_event(ctx, "ok", detail={"returned": len(events)}))
    return web.json_response({"events": events, "next_cursor": next_cursor})


@guarded("audit.export", AUDIT)
async def export_audit(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    """The org's export file (docs/audit.md, "Export"), streamed: its events, the others' as skip lines."""
    queries = _svc(request).audit_queries
    with queries.export_slot():
        # Audited before the first byte: an export that cannot be audited is not served.
        await _svc(request).audit.record(audit_event(ctx, "ok"))
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson; charset=utf-8", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        batch: list[str] = []
        async for line in queries.export(org=ctx.org_id):
            batch.append(line)
            if len(batch) >= _EXPORT_BATCH:
                await response.write("".join(batch).encode("utf-8"))
                batch.clear()
        await response.write("".join(batch).encode("utf-8"))
        await response.write_eof()
    return response


@guarded("audit.verify", AUDIT)
async def verify_audit(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    """Recompute every chain of the store's log (all orgs': the chains interleave them); the report names
    chains and event numbers, never another org's events."""
    # Any caller with `a`, of any org, may ask, and a pass reads the whole log: a loop of requests
    # costs one pass a minute.
    report = await _svc(request).audit_queries.verify(reuse_for=VERIFY_REUSE)
    await _svc(request).audit.record(audit_event(ctx, "ok", detail={"intact": report.ok}))
    return web.json_response(report.to_json())


# -- health ---------------------------------------------------------------------------------


async def readyz(request: web.Request) -> web.StreamResponse:
    services = request.app.get(SERVICES_KEY)
    if services is None or not await services.health.ready(timeout=services.config.readiness_timeout):
        return json_error(503, "unavailable", "the store is not ready (database unreachable or keys not loaded)")
    return web.json_response({"status": "ready"})


async def public_keys(request: web.Request) -> web.StreamResponse:
    """The store's ticket public keys (newest first) and the authority org key it seals new tickets to."""
    sealing = _svc(request).tokens.sealing

    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    def hex_id(key_id: int | None) -> str | None:
        return None if key_id is None else f"{key_id:016x}"

    own = sealing.own_keys
    return web.json_response(
        {
            "location": _svc(request).tokens.location,
            "ticket": {
                "public_key": b64(own[0][1]),
                "key_id": hex_id(own[0][0]),
                "keys": [{"id": hex_id(key_id), "public_key": b64(public)} for key_id, public in own],
            },
            "authority_org": {
                "public_key": b64(sealing.authority_keys[0][1]),
                "key_id": hex_id(sealing.authority_key_id),
                "keys": [{"id": hex_id(key_id), "public_key": b64(p)} for key_id, p in sealing.authority_keys],
            },
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    # aiohttp tries the /v1/orgs routes in registration order: the hot one goes first.
    r.add_get(_VAULT + "/secrets/" + _NAME, read_secret)
    r.add_put(_VAULT + "/secrets/" + _NAME, write_secret)
    r.add_get(_ORG + "/enroll", enroll_challenge)
    r.add_post(_ORG + "/enroll", enroll)
    r.add_post(_ORG + "/tokens", mint_token)
    r.add_post(_ORG + "/tokens/{id}/revoke", revoke_token)
    r.add_get(_ORG + "/vaults", list_vaults)
    r.add_post(_ORG + "/vaults", create_vault)
    r.add_delete(_VAULT, delete_vault)
    r.add_get(_VAULT + "/secrets", list_secrets)
    r.add_post(_VAULT + "/read", batch_read)
    r.add_post(_VAULT + "/versions", current_versions)
    r.add_get(_VAULT + "/metadata/" + _NAME, metadata)
    r.add_delete(_VAULT + "/metadata/" + _NAME, destroy_secret)
    r.add_post(_VAULT + "/delete/" + _NAME, delete_versions)
    r.add_post(_VAULT + "/undelete/" + _NAME, undelete_versions)
    r.add_post(_VAULT + "/destroy/" + _NAME, destroy_versions)
    r.add_post(_VAULT + "/promote/" + _NAME, promote)
    r.add_get(_ORG + "/audit", query_audit)
    r.add_get(_ORG + "/audit/export", export_audit)
    r.add_get(_ORG + "/audit/verify", verify_audit)
    r.add_get("/readyz", readyz)
    r.add_get("/.well-known/cvault/keys", public_keys)
