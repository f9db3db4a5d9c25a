"""HTTP handlers of the store's native API (routes in ``docs/api.md``), declared once in :data:`OPERATIONS`.

Parsing here (bodies and parameters decoded with the models of :mod:`.messages`), decisions in ``vault.store``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from vault.audit.chain import LogReport
from vault.audit.query import MAX_QUERY_LIMIT
from vault.errors import BadRequest
from vault.macaroon import AUDIT, CONTROL, CREATE, DELETE, READ, WRITE, mask_from_string
from vault.names import check_org_id, check_prefix, check_secret_name, check_slug, check_value, check_vault_name
from vault.store.caller import Caller
from vault.store.control import MintRequest
from vault.store.events import access_for, audit_event
from vault.store.models import VaultInfo
from vault.store.secrets import Revealed
from vault.types import RequestContext

from ..common import json_error
from ..contract import Handler, Operation, Response, decode_body, decode_params, reply
from ..rfc3339 import instant, unix_time
from ..service_routes import Status
from .guard import guarded, idempotency_key
from .messages import (
    UNIX_SECONDS,
    UUID_TEXT,
    AuditQuery,
    AuditReply,
    BatchReply,
    ChainCheck,
    Challenge,
    Changed,
    CurrentVersions,
    EnrollBody,
    KeySet,
    ListQuery,
    LogCheck,
    MetadataReply,
    MintBody,
    NamesOrPrefix,
    OrgPath,
    Promoted,
    PublicKey,
    PublicKeys,
    ReadQuery,
    Revoked,
    SecretPath,
    SecretRead,
    SecretsReply,
    SecretSummary,
    SecretValue,
    TokenPath,
    TokenReply,
    VaultBody,
    VaultPath,
    VaultReply,
    VaultsReply,
    VersionReply,
    VersionsBody,
    WriteBody,
    Written,
)
from .services import SERVICES_KEY, StoreServices, services_of

__all__ = ["OPERATIONS", "VERIFY_REUSE", "secret_operation", "secret_read"]

MAX_LIST = 1000
_MAX_SEQ = (1 << 63) - 1
_UNIX_SECONDS = re.compile(UNIX_SECONDS)
_EXPORT_BATCH = 500  # lines per write of a streamed export
VERIFY_REUSE = 60  # seconds a served verification report is answered again
_ORG = "/v1/orgs/{org}"
_VAULT = _ORG + "/vaults/{vault}"
_NAME = "{name:[A-Za-z0-9._/-]+}"
_NO_STORE = {"Cache-Control": "no-store"}  # replies that carry secret values
_BUNDLE = ("bundle",)
_TOKEN_ID = re.compile(UUID_TEXT)


def _svc(request: web.Request) -> StoreServices:
    return services_of(request)


def _now(request: web.Request) -> int:
    return int(_svc(request).clock())


def _mask(value: str, what: str) -> int:
    try:
        mask = mask_from_string(value)
    except ValueError as exc:
        raise BadRequest(f"{what}: {exc}") from None
    if mask == 0:
        raise BadRequest(f"{what} must allow at least one action")
    return mask


def _masks(value: dict[str, str] | None, name: str, check_key: Callable[[str], str]) -> dict[str, int] | None:
    if value is None:
        return None
    return {check_key(k): _mask(v, f"{name}[{k!r}]") for k, v in value.items()}


def _secret_pattern(pattern: str) -> str:
    check_prefix(pattern.removesuffix("$"))
    return pattern


# -- enrolment and tokens -----------------------------------------------------------


async def enroll_challenge(request: web.Request) -> web.StreamResponse:
    org_id = check_org_id(request.match_info["org"])
    return reply(Challenge(challenge=_svc(request).control.challenge(org_id)))


@guarded("enroll", CONTROL, enrolled=False)
async def enroll(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body = await decode_body(request, EnrollBody)
    minted = await _svc(request).control.enroll(ctx, check_slug(body.slug) if body.slug is not None else None)
    return reply(TokenReply(token=minted.token, id=minted.id), status=201)


@guarded("tokens.mint", CONTROL)
async def mint_token(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body = await decode_body(request, MintBody)
    mint = MintRequest(
        mask=_mask(body.mask, "mask"),
        vaults=_masks(body.vaults, "vaults", check_vault_name),
        secrets=_masks(body.secrets, "secrets", _secret_pattern),
        ttl=body.ttl,
    )
    minted = await _svc(request).control.mint(ctx, mint)
    return reply(TokenReply(token=minted.token, id=minted.id), status=201)


@guarded("tokens.revoke", CONTROL)
async def revoke_token(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    raw = request.match_info["id"]
    if not _TOKEN_ID.fullmatch(raw):
        raise BadRequest("token id must be a UUID")
    token_id = raw.lower()
    ids = await _svc(request).control.revoke(ctx, token_id)
    return reply(Revoked(revoked=token_id, with_descendants=ids))


# -- vaults -----------------------------------------------------------------------------


def _vault(v: VaultInfo) -> VaultReply:
    return VaultReply(name=v.name, created_at=v.created_at)


@guarded("vaults.list", READ)
async def list_vaults(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    vaults = await _svc(request).control.list_vaults(ctx)
    return reply(VaultsReply(vaults=[_vault(v) for v in vaults]))


@guarded("vaults.create", CONTROL)
async def create_vault(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body = await decode_body(request, VaultBody)
    info = await _svc(request).control.create_vault(ctx, check_vault_name(body.name))
    return reply(_vault(info), status=201)


@guarded("vaults.delete", CONTROL)
async def delete_vault(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    await _svc(request).control.delete_vault(ctx, request.match_info["vault"])
    return web.Response(status=204)


# -- secrets ------------------------------------------------------------------------------


def _cursor(raw: str | None) -> str | None:
    """The position a cursor names: the text it decodes to. A cursor this store returned is a name; any other
    text of the alphabet is a position too (bytes that are not text are read as U+FFFD), not a 400."""
    if not raw:
        return None
    usable = raw[: len(raw) - 1] if len(raw) % 4 == 1 else raw  # a last character that completes no byte
    text = base64.urlsafe_b64decode(usable + "=" * (-len(usable) % 4)).decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd")  # PostgreSQL's text holds no NUL


def _next_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode()


@guarded("secrets.list", READ)
async def list_secrets(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    query = decode_params(request.query, ListQuery)
    prefix = check_prefix(query.prefix)
    limit = min(query.limit, MAX_LIST)
    after = _cursor(query.cursor)
    found = await _svc(request).secrets.list_names(
        ctx, request.match_info["vault"], prefix=prefix, after=after, limit=limit
    )
    return reply(
        SecretsReply(
            secrets=[
                SecretSummary(name=s.name, current_version=s.current_version, updated_at=s.updated_at) for s in found
            ],
            next_cursor=_next_cursor(found[-1].name) if len(found) == limit else None,
        )
    )


@guarded("secrets.write", WRITE)
async def write_secret(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    vault, name = request.match_info["vault"], request.match_info["name"]
    body = await decode_body(request, WriteBody)
    value = check_value(body.value)
    may_create = ctx.verified_caller.allows(access_for(ctx, _now(request), WRITE | CREATE, vault=vault, secret=name))
    outcome = await _svc(request).secrets.write(
        ctx,
        vault,
        name,
        value,
        cas=body.cas,
        pending=body.stage == "pending",
        max_versions=body.max_versions,
        may_create=may_create,
        idempotency_key=idempotency_key(request.headers),
    )
    return reply(Written(name=name, version=outcome.version, stage=outcome.stage))


@functools.lru_cache(maxsize=1024)  # a version's creation time, read again and again
def _created_text(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def secret_read(r: Revealed) -> SecretRead:
    """The reply to a secret read. ``created_at`` is whole seconds in UTC: the text, cached, rather than a
    datetime built and formatted on every read."""
    return SecretRead(
        name=r.name, version=r.version, value=r.value, stage=r.stage, created_at=_created_text(r.created_at_unix)
    )


@guarded("secrets.read", READ)
async def read_secret(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    version = stage = None
    if request.query_string:  # most reads ask for the current version: no query to parse
        query = decode_params(request.query, ReadQuery)
        version, stage = query.version, query.stage  # both: that version if it holds that stage
    revealed = await _svc(request).secrets.read(
        ctx, request.match_info["vault"], request.match_info["name"], version=version, stage=stage
    )
    return reply(secret_read(revealed), headers=_NO_STORE)


async def _names_or_prefix(request: web.Request) -> tuple[list[str] | None, str]:
    """A batch request's body: ``{"names": [...]}``, ``{"prefix": "..."}`` or ``{}`` (every secret); both: the
    names under the prefix (the others are not asked for)."""
    body = await decode_body(request, NamesOrPrefix)
    prefix = check_prefix(body.prefix or "")
    if body.names is None:
        return None, prefix
    names = {check_secret_name(n) for n in body.names}
    return sorted(n for n in names if n.startswith(prefix)), prefix


@guarded("secrets.versions", READ, secrets_later=True)
async def current_versions(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    names, prefix = await _names_or_prefix(request)
    versions = await _svc(request).secrets.current_versions(
        ctx, request.match_info["vault"], names=names, prefix=prefix
    )
    missing = [n for n in names if n not in versions] if names is not None else []
    return reply(CurrentVersions(versions=versions, missing=missing))


@guarded("secrets.batch_read", READ, secrets_later=True)
async def batch_read(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    names, prefix = await _names_or_prefix(request)
    result = await _svc(request).secrets.batch_read(ctx, request.match_info["vault"], names=names, prefix=prefix)
    batch = BatchReply(
        secrets={r.name: SecretValue(version=r.version, value=r.value) for r in result.secrets},
        missing=list(result.missing),
    )
    return reply(batch, headers=_NO_STORE)


@guarded("secrets.metadata", READ)
async def metadata(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    meta = await _svc(request).secrets.metadata(ctx, request.match_info["vault"], request.match_info["name"])
    return reply(
        MetadataReply(
            name=meta.name,
            current_version=meta.current_version,
            max_versions=meta.max_versions,
            created_at=meta.created_at,
            updated_at=meta.updated_at,
            versions=[
                VersionReply(
                    version=v.version,
                    state=v.state,
                    stage=v.stage,
                    created_at=v.created_at,
                    created_by_token=v.created_by_token,
                )
                for v in meta.versions
            ],
        )
    )


async def _change(request: web.Request, ctx: RequestContext[Caller], change: str) -> web.StreamResponse:
    body = await decode_body(request, VersionsBody)
    changed = await _svc(request).secrets.change_versions(
        ctx, request.match_info["vault"], request.match_info["name"], sorted(set(body.versions)), change
    )
    # Which of the requested versions changed: one that does not exist (or was already
    # in that state) is not reported as done.
    return reply(Changed(changed=changed))


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
    return reply(Promoted(name=name, current=current, previous=previous))


# -- audit ----------------------------------------------------------------------------------


def _time_param(raw: str | None, name: str) -> dt.datetime | None:
    """``since``/``until``: Unix seconds or an RFC 3339 date-time, in UTC (empty: no bound)."""
    if not raw:
        return None
    if _UNIX_SECONDS.fullmatch(raw):
        return unix_time(raw)
    when = instant(raw)
    if when is None:
        raise BadRequest(
            f"query parameter {name!r} must be Unix seconds or an RFC 3339 date-time such as 2026-01-31T10:00:00Z"
        )
    return when


@guarded("audit.query", AUDIT)
async def query_audit(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    q = decode_params(request.query, AuditQuery)
    if q.cursor is not None and q.cursor > _MAX_SEQ:
        raise BadRequest("cursor is not one this store returned")
    caller = ctx.verified_caller
    mine = {"token_id": caller.token_id} | ({"actor": caller.actor} if caller.actor else {})
    events, next_cursor = await _svc(request).audit_queries.query(
        org=ctx.org_id,
        vault=q.vault,
        secret=q.secret,
        actor=q.actor,
        token_id=q.token,
        action=q.action,
        outcome=q.outcome,
        since=_time_param(q.since, "since"),
        until=_time_param(q.until, "until"),
        cursor=q.cursor,
        limit=min(q.limit, MAX_QUERY_LIMIT),
        newest_first=q.order == "newest",
        hide_audit_of=mine if q.own == "hide" else None,
    )
    await _svc(request).audit.record(audit_event(ctx, "ok", detail={"returned": len(events)}))
    return reply(AuditReply(events=events, next_cursor=next_cursor))


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


def _log_check(report: LogReport) -> LogCheck:
    """The report as :meth:`LogReport.to_json` writes it (``cvault audit verify --json`` prints that)."""
    return LogCheck(
        ok=report.ok,
        checked=report.checked,
        message=report.message,
        chains=[
            ChainCheck(
                chain=c.chain,
                ok=c.ok,
                checked=c.checked,
                last_seq=c.last_seq,
                broken_seq=c.broken_seq,
                message=c.message,
            )
            for c in report.chains
        ],
    )


@guarded("audit.verify", AUDIT)
async def verify_audit(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    """Recompute every chain of the store's log (all orgs': the chains interleave them); the report names
    chains and event numbers, never another org's events."""
    # Any caller with `a`, of any org, may ask, and a pass reads the whole log: a loop of requests
    # costs one pass a minute.
    report = await _svc(request).audit_queries.verify(reuse_for=VERIFY_REUSE)
    await _svc(request).audit.record(audit_event(ctx, "ok", detail={"intact": report.ok}))
    return reply(_log_check(report))


# -- health and keys ---------------------------------------------------------------------------


async def readyz(request: web.Request) -> web.StreamResponse:
    services = request.app.get(SERVICES_KEY)
    if services is None or not await services.health.ready(timeout=services.config.readiness_timeout):
        return json_error(503, "unavailable", "the store is not ready (database unreachable or keys not loaded)")
    return reply(Status(status="ready"))


def _key_set(keys: Sequence[tuple[int | None, bytes]], key_id: int | None) -> KeySet:
    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    def hex_id(value: int | None) -> str | None:
        return None if value is None else f"{value:016x}"

    return KeySet(
        public_key=b64(keys[0][1]),
        key_id=hex_id(key_id),
        keys=[PublicKey(id=hex_id(i), public_key=b64(public)) for i, public in keys],
    )


async def public_keys(request: web.Request) -> web.StreamResponse:
    """The store's ticket public keys (newest first) and the authority org key it seals new tickets to."""
    sealing = _svc(request).tokens.sealing
    own = sealing.own_keys
    return reply(
        PublicKeys(
            location=_svc(request).tokens.location,
            ticket=_key_set(own, own[0][0]),
            authority_org=_key_set(sealing.authority_keys, sealing.authority_key_id),
        )
    )


# -- the operations, in the order aiohttp tries them: the hot one first ---------------------------


def _ok(model: object, status: int = 200) -> dict[int, Response]:
    return {status: Response(model)}


_DONE = {204: Response(description="done, no body")}
_EXPORT = Response(
    str,
    media="application/x-ndjson",
    description="JSON lines, streamed: checkpoint lines, the heads line, the org's events and skip lines for the "
    'other orgs\' events between them, the end line (docs/audit.md, "Export")',
)


def secret_operation(method: str, route: str, handler: Handler, id: str, summary: str, **kw: Any) -> Operation:
    """An operation on one secret (``{org}``, ``{vault}``, ``{name}`` in its path)."""
    return Operation(
        method=method,
        route=_VAULT + route + _NAME,
        handler=handler,
        id=id,
        summary=summary,
        path=SecretPath,
        security=_BUNDLE,
        **kw,
    )


OPERATIONS: tuple[Operation, ...] = (
    secret_operation(
        "GET",
        "/secrets/",
        read_secret,
        "secrets.read",
        "Read the current, a pinned or a staged version",
        query=ReadQuery,
        responses=_ok(SecretRead),
    ),
    secret_operation(
        "PUT",
        "/secrets/",
        write_secret,
        "secrets.write",
        "Write a new version (w; c too when new)",
        body=WriteBody,
        responses=_ok(Written),
    ),
    Operation(
        method="GET",
        route=_ORG + "/enroll",
        handler=enroll_challenge,
        id="enroll.challenge",
        summary="Get an enrolment challenge",
        path=OrgPath,
        responses=_ok(Challenge),
        errors=(400, 404, 405, 503),
    ),
    Operation(
        method="POST",
        route=_ORG + "/enroll",
        handler=enroll,
        id="enroll",
        summary="Enrol the org (challenge + org discharge with C)",
        path=OrgPath,
        body=EnrollBody,
        responses=_ok(TokenReply, 201),
        security=_BUNDLE,
    ),
    Operation(
        method="POST",
        route=_ORG + "/tokens",
        handler=mint_token,
        id="tokens.mint",
        summary="Mint a store token no wider than the caller's",
        path=OrgPath,
        body=MintBody,
        responses=_ok(TokenReply, 201),
        security=_BUNDLE,
    ),
    Operation(
        method="POST",
        route=_ORG + "/tokens/{id}/revoke",
        handler=revoke_token,
        id="tokens.revoke",
        summary="Revoke a store token and those minted from it",
        path=TokenPath,
        responses=_ok(Revoked),
        security=_BUNDLE,
    ),
    Operation(
        method="GET",
        route=_ORG + "/vaults",
        handler=list_vaults,
        id="vaults.list",
        summary="List vaults",
        path=OrgPath,
        responses=_ok(VaultsReply),
        security=_BUNDLE,
    ),
    Operation(
        method="POST",
        route=_ORG + "/vaults",
        handler=create_vault,
        id="vaults.create",
        summary="Create a vault",
        path=OrgPath,
        body=VaultBody,
        responses=_ok(VaultReply, 201),
        security=_BUNDLE,
    ),
    Operation(
        method="DELETE",
        route=_VAULT,
        handler=delete_vault,
        id="vaults.delete",
        summary="Delete an empty vault",
        path=VaultPath,
        responses=_DONE,
        security=_BUNDLE,
    ),
    Operation(
        method="GET",
        route=_VAULT + "/secrets",
        handler=list_secrets,
        id="secrets.list",
        summary="List secret names (no values)",
        path=VaultPath,
        query=ListQuery,
        responses=_ok(SecretsReply),
        security=_BUNDLE,
    ),
    Operation(
        method="POST",
        route=_VAULT + "/read",
        handler=batch_read,
        id="secrets.batch_read",
        summary="Read many secrets in one request",
        path=VaultPath,
        body=NamesOrPrefix,
        responses=_ok(BatchReply),
        security=_BUNDLE,
    ),
    Operation(
        method="POST",
        route=_VAULT + "/versions",
        handler=current_versions,
        id="secrets.versions",
        summary="The current versions of many secrets, without their values (one audit event)",
        path=VaultPath,
        body=NamesOrPrefix,
        responses=_ok(CurrentVersions),
        security=_BUNDLE,
    ),
    secret_operation(
        "GET",
        "/metadata/",
        metadata,
        "secrets.metadata",
        "Versions of a secret, without values",
        responses=_ok(MetadataReply),
    ),
    secret_operation(
        "DELETE",
        "/metadata/",
        destroy_secret,
        "secrets.destroy",
        "Destroy the secret and every version",
        responses=_DONE,
    ),
    secret_operation(
        "POST",
        "/delete/",
        delete_versions,
        "secrets.delete",
        "Soft-delete versions",
        body=VersionsBody,
        responses=_ok(Changed),
    ),
    secret_operation(
        "POST",
        "/undelete/",
        undelete_versions,
        "secrets.undelete",
        "Undelete versions",
        body=VersionsBody,
        responses=_ok(Changed),
    ),
    secret_operation(
        "POST",
        "/destroy/",
        destroy_versions,
        "secrets.destroy_versions",
        "Destroy versions (ciphertext gone)",
        body=VersionsBody,
        responses=_ok(Changed),
    ),
    secret_operation(
        "POST", "/promote/", promote, "secrets.promote", "Make the pending version current", responses=_ok(Promoted)
    ),
    Operation(
        method="GET",
        route=_ORG + "/audit",
        handler=query_audit,
        id="audit.query",
        summary="Query the org's audit events",
        path=OrgPath,
        query=AuditQuery,
        responses=_ok(AuditReply),
        security=_BUNDLE,
    ),
    Operation(
        method="GET",
        route=_ORG + "/audit/export",
        handler=export_audit,
        id="audit.export",
        summary="Export the org's audit events with every chain's head and the checkpoints",
        path=OrgPath,
        responses={200: _EXPORT},
        security=_BUNDLE,
    ),
    Operation(
        method="GET",
        route=_ORG + "/audit/verify",
        handler=verify_audit,
        id="audit.verify",
        summary="Recompute every chain of the store's audit log up to its head and check the checkpoints",
        path=OrgPath,
        responses=_ok(LogCheck),
        security=_BUNDLE,
    ),
    Operation(
        method="GET",
        route="/readyz",
        handler=readyz,
        id="readyz",
        summary="Database reachable, keys loaded",
        responses=_ok(Status),
        errors=(405, 503),
    ),
    Operation(
        method="GET",
        route="/.well-known/cvault/keys",
        handler=public_keys,
        id="publicKeys",
        summary="The store's ticket public keys and the authority org key it seals new tickets to",
        responses=_ok(PublicKeys),
        errors=(405, 503),
    ),
)
