"""HTTP handlers of the authority (routes in ``docs/api.md``). Parsing here, decisions in ``vault.authority``."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vault.audit.refusal import refusal_detail, refusal_outcome
from vault.authority.invitations import VERIFICATION_SENT
from vault.authority.records import Invitation, Member, Membership, Session, TokenRecord
from vault.authority.revocation_feed import MAX_FEED_WAIT, MAX_SINCE_LIMIT
from vault.authority.roles import parse_role
from vault.authority.session_secret import SESSION_PREFIX
from vault.authority.sessions import InvalidCredentials
from vault.authority.ticket_keys import SharedKeyCache
from vault.authority.token_service import check_token_id
from vault.authority.workload_jwt import looks_like_jwt
from vault.authority.workloads import check_binding_name
from vault.crypto.ticket_keys import LIST_NONCE_SIZE, PUBLIC_KEY_SIZE
from vault.errors import BadRequest, Unauthenticated, Unavailable, VaultError
from vault.macaroon import Bundle, encode_token, mask_from_string, mask_to_string, parse_bundle
from vault.types import RequestContext

from ..common import credential, field, int_param, json_error, origin, read_json, required_credential
from .services import SERVICES_KEY, AuthorityServices

__all__ = ["add_routes"]

log = logging.getLogger("cvault.authority")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_ID = 2**63 - 1
MAX_TICKET_BYTES = 32 * 1024


async def _record_refusal(request: web.Request, action: str, exc: VaultError) -> None:
    """Record a failed request (``denied`` for 401/403, ``error`` otherwise); it fails anyway if this cannot."""
    org = request.match_info.get("org", "")
    try:
        await _svc(request).audit.record(
            _ctx(request),
            action,
            refusal_outcome(exc),
            org=int(org) if org.isascii() and org.isdigit() and len(org) <= 18 else None,
            **refusal_detail(exc),
        )
    except Unavailable:
        # The operator sees the audit outage in the log.
        log.warning("request %s: audit event for a failed request not committed", _ctx(request).request_id)


def refusals_audited(action: str) -> Callable[[Handler], Handler]:
    """Audit every failure of a route whose service does not audit its own refusals.

    Whatever a caller can make a route raise leaves an event (the dischargers and the
    login audit their decisions themselves, with more detail, and their parsing here).
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def audited(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except VaultError as exc:
                await _record_refusal(request, action, exc)
                raise
            except web.HTTPException:
                raise  # aiohttp's own replies (e.g. a body over the size cap)
            except Exception as exc:
                # A bug or an unmapped error: audited as "error" too (issue 20), then the middleware's 500.
                await _record_refusal(request, action, VaultError(f"internal error ({type(exc).__name__})"))
                raise

        return audited

    return wrap


def _svc(request: web.Request) -> AuthorityServices:
    return request.app[SERVICES_KEY]


def _ctx(request: web.Request) -> RequestContext[None]:
    seen = origin(request)
    return RequestContext(client_addr=seen.client_addr, request_id=seen.request_id, client_ip=seen.client_ip)


def _bearer(request: web.Request) -> str | None:
    return credential(request.headers)


def _bundle(request: web.Request) -> Bundle:
    return parse_bundle(required_credential(request.headers))


def _session_secret(request: web.Request) -> str:
    secret = _bearer(request)
    if secret is None or not secret.startswith(SESSION_PREFIX):
        raise Unauthenticated("this route needs a session: send 'Authorization: Bearer cvs_...' from POST /v1/sessions")
    return secret


async def _session(request: web.Request) -> Session:
    return await _svc(request).sessions.authenticate(_session_secret(request))


def _path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    # isascii too: str.isdigit() accepts characters like "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        raise BadRequest(f"{name} must be a positive integer")
    return int(raw)


def _b64(data: dict[str, Any], name: str, *, min_len: int, max_len: int) -> bytes:
    text = field(data, name, str)
    if len(text) > (max_len * 4 // 3 + 4):
        raise BadRequest(f"field {name!r} is too long")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"field {name!r} must be standard base64") from None
    if not min_len <= len(raw) <= max_len:
        raise BadRequest(f"field {name!r} must decode to {min_len} to {max_len} bytes")
    return raw


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _membership(m: Membership) -> dict[str, Any]:
    return {"id": m.org_id, "slug": m.slug, "role": m.role.value}


def _member(m: Member) -> dict[str, Any]:
    return {"user_id": m.user_id, "email": m.email, "role": m.role.value}


def _mask(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return mask_from_string(value)
    except ValueError as exc:
        raise BadRequest(f"field 'mask': {exc}") from None


# -- sessions ---------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.StreamResponse:
    try:
        data = await read_json(request)
        email = field(data, "email", str)
        password = field(data, "password", str)
    except VaultError as exc:
        await _record_refusal(request, "login", exc)
        raise
    try:
        secret, session = await _svc(request).sessions.login(email, password, _ctx(request))
    except InvalidCredentials:
        raise  # audited by the login itself, with who tried
    except VaultError as exc:
        # Rate limited, or the session's transaction failed (its "ok" event rolled back with it).
        await _record_refusal(request, "login", exc)
        raise
    return web.json_response(
        {"session": secret, "user_id": session.user_id, "expires_at": _time(session.expires_at)}, status=201
    )


@refusals_audited("logout")
async def delete_session(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    await _svc(request).sessions.logout(session, _ctx(request))
    return web.Response(status=204)


@refusals_audited("me")
async def me(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    svc = _svc(request)
    user = await svc.accounts.user(session.user_id)
    orgs = await svc.accounts.memberships(user.id)
    return web.json_response({"user_id": user.id, "email": user.email, "orgs": [_membership(m) for m in orgs]})


# -- orgs and members -------------------------------------------------------------------


@refusals_audited("org.create")
async def create_org(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    data = await read_json(request)
    org = await _svc(request).accounts.create_org(session.user_id, field(data, "slug", str), _ctx(request))
    return web.json_response({"id": org.id, "slug": org.slug}, status=201)


@refusals_audited("orgs.list")
async def list_orgs(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    orgs = await _svc(request).accounts.memberships(session.user_id)
    return web.json_response({"orgs": [_membership(m) for m in orgs]})


@refusals_audited("members.list")
async def list_members(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    members = await _svc(request).accounts.members(session.user_id, _path_id(request, "org"))
    return web.json_response({"members": [_member(m) for m in members]})


def _invitation(i: Invitation) -> dict[str, Any]:
    return {
        "id": i.id,
        "org": i.org_id,
        "slug": i.slug,
        "email": i.email,
        "role": i.role.value,
        "expires_at": _time(i.expires_at),
    }


@refusals_audited("invitation.create")
async def create_invitation(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    org_id = _path_id(request, "org")
    data = await read_json(request)
    email = field(data, "email", str)
    role = parse_role(field(data, "role", str))
    invitation, code = await _svc(request).invitations.invite(session.user_id, org_id, email, role, _ctx(request))
    # The same reply whether or not the email has an account: inviting is no way to probe for one.
    return web.json_response({**_invitation(invitation), "code": code}, status=201)


@refusals_audited("invitations.list")
async def list_invitations(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    pending = await _svc(request).invitations.pending(session.user_id)
    return web.json_response({"invitations": [_invitation(i) for i in pending]})


@refusals_audited("invitation.accept")
async def accept_invitation(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    invitation_id = request.match_info["id"]
    data = await read_json(request)
    code = field(data, "code", str)
    if _bearer(request) is not None:
        session = await _session(request)
        invitation = await svc.invitations.accept_as(session.user_id, invitation_id, code, _ctx(request))
        user_id = session.user_id
    elif data.get("verification") is None:
        # No account and no verification code yet: prove control of the invited address first.
        await svc.invitations.send_verification(invitation_id, code, _ctx(request))
        return web.json_response({"status": "verification_sent", "message": VERIFICATION_SENT}, status=202)
    else:
        verification = field(data, "verification", str)
        password = field(data, "password", str)
        invitation, user_id = await svc.invitations.accept_with_code(
            invitation_id, code, verification, password, _ctx(request)
        )
    return web.json_response(
        {"org": invitation.org_id, "slug": invitation.slug, "role": invitation.role.value, "user_id": user_id}
    )


@refusals_audited("member.change")
async def change_member(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    org_id, user_id = _path_id(request, "org"), _path_id(request, "user_id")
    data = await read_json(request)
    role = parse_role(field(data, "role", str))
    await _svc(request).accounts.change_role(session.user_id, org_id, user_id, role, _ctx(request))
    return web.json_response({"user_id": user_id, "role": role.value})


@refusals_audited("member.remove")
async def remove_member(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    org_id, user_id = _path_id(request, "org"), _path_id(request, "user_id")
    await _svc(request).accounts.remove_member(session.user_id, org_id, user_id, _ctx(request))
    return web.Response(status=204)


# -- tokens -----------------------------------------------------------------------------


@refusals_audited("token.mint")
async def create_token(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    credential = _bearer(request)
    if credential is None:
        raise Unauthenticated("send a session ('Bearer cvs_...') or a permission bundle with 'C' on the org")
    data = await read_json(request)
    org_id = field(data, "org", int)
    if not 0 < org_id <= MAX_ID:
        raise BadRequest("field 'org' must be an organization id")
    mask = _mask(field(data, "mask", str, required=False))
    ttl = field(data, "ttl", int, required=False)
    if credential.startswith(SESSION_PREFIX):
        session = await svc.sessions.authenticate(credential)
        token, record = await svc.tokens.mint(session.user_id, org_id, mask, ttl, _ctx(request))
    else:
        principal = await svc.verifier.verify(_bundle(request), now=int(svc.clock()))
        token, record = await svc.tokens.mint(
            principal.user_id, org_id, mask, ttl, _ctx(request), via=principal, client_ip=origin(request).client_ip
        )
    return web.json_response(
        {"token": encode_token(token), "id": record.id, "expires_at": _time(record.expires_at)}, status=201
    )


def _token_json(record: TokenRecord, by_id: dict[str, TokenRecord]) -> dict[str, Any]:
    lineage: list[str] = []
    parent = record.parent
    while parent is not None and parent not in lineage and len(lineage) < 64:
        lineage.append(parent)
        ancestor = by_id.get(parent)
        parent = ancestor.parent if ancestor else None
    return {
        "id": record.id,
        "org": record.org_id,
        "kind": record.kind.value,
        "mask": mask_to_string(record.mask),
        "parent": record.parent,
        "lineage": lineage,
        "created_at": _time(record.created_at),
        "expires_at": _time(record.expires_at),
        "revoked_at": _time(record.revoked_at),
    }


@refusals_audited("tokens.list")
async def list_tokens(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    records = await _svc(request).tokens.for_user(session.user_id)
    by_id = {r.id: r for r in records}
    return web.json_response({"tokens": [_token_json(r, by_id) for r in records]})


@refusals_audited("token.strip")
async def strip_token(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    principal = await svc.verifier.verify(_bundle(request), now=int(svc.clock()))
    token, record = await svc.tokens.strip(principal, origin(request).client_ip, _ctx(request))
    reply = {"token": encode_token(token), "id": record.id, "parent": record.parent}
    return web.json_response({**reply, "expires_at": _time(record.expires_at)}, status=201)


@refusals_audited("token.revoke")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    token_id = check_token_id(request.match_info["id"])
    revoked = await _svc(request).tokens.revoke(session.user_id, token_id, _ctx(request))
    return web.json_response({"revoked": revoked})


@refusals_audited("revocations.list")
async def list_revocations(request: web.Request) -> web.StreamResponse:
    since = int_param(request, "since", default=0, minimum=0) or 0
    limit = int_param(request, "limit", default=MAX_SINCE_LIMIT, minimum=1) or MAX_SINCE_LIMIT
    if since > MAX_ID:
        raise BadRequest("query parameter 'since' is too large")
    items, next_seq = await _svc(request).revocations.since(since, min(limit, MAX_SINCE_LIMIT))
    return web.json_response({"revocations": items, "next": next_seq})


async def revocation_feed(request: web.Request) -> web.StreamResponse:
    """The feed stores follow (docs/revocation.md): a long poll, resumed from ``cursor``."""
    svc = _svc(request)
    svc.feed.check(_bearer(request))
    cursor = int_param(request, "cursor", default=0, minimum=0) or 0
    if cursor > MAX_ID:
        raise BadRequest("query parameter 'cursor' is too large")
    wait = int_param(request, "wait", default=0, minimum=0) or 0
    if wait > MAX_FEED_WAIT:
        raise BadRequest(f"query parameter 'wait' must be at most {MAX_FEED_WAIT} seconds")
    limit = int_param(request, "limit", default=MAX_SINCE_LIMIT, minimum=1) or MAX_SINCE_LIMIT
    if limit > MAX_SINCE_LIMIT:
        raise BadRequest(f"query parameter 'limit' must be at most {MAX_SINCE_LIMIT}")
    events, next_cursor = await svc.feed.read(cursor, wait, limit)
    response = web.json_response({"events": events, "cursor": next_cursor})
    response.headers["Cache-Control"] = "no-store"
    return response


# -- discharges -------------------------------------------------------------------------


async def _discharge_request(request: web.Request) -> tuple[bytes, bytes]:
    data = await read_json(request)
    ticket = _b64(data, "ticket", min_len=1, max_len=MAX_TICKET_BYTES)
    binding_id = _b64(data, "binding_id", min_len=16, max_len=32)
    return ticket, binding_id


async def login_discharge(request: web.Request) -> web.StreamResponse:
    try:
        secret = _session_secret(request)
        ticket, binding_id = await _discharge_request(request)
    except VaultError as exc:
        await _record_refusal(request, "discharge.login", exc)
        raise
    discharge = await _svc(request).login.discharge(ticket, binding_id, secret, _ctx(request))
    return web.json_response({"discharge": encode_token(discharge)}, status=201)


async def org_discharge(request: web.Request) -> web.StreamResponse:
    if looks_like_jwt(_bearer(request) or ""):
        return await _workload_discharge(request)
    try:
        bundle = _bundle(request)
        ticket, binding_id = await _discharge_request(request)
    except VaultError as exc:
        await _record_refusal(request, "discharge.org", exc)
        raise
    discharge = await _svc(request).org.discharge(ticket, binding_id, bundle, origin(request).client_ip, _ctx(request))
    return web.json_response({"discharge": encode_token(discharge)}, status=201)


async def _workload_discharge(request: web.Request) -> web.StreamResponse:
    """The org discharge for a workload: ``Authorization: Bearer <JWT>`` (docs/workload-identity.md)."""
    try:
        token = _bearer(request) or ""
        data = await read_json(request)
        ticket = _b64(data, "ticket", min_len=1, max_len=MAX_TICKET_BYTES)
        binding_id = _b64(data, "binding_id", min_len=16, max_len=32)
        name = field(data, "binding", str, required=False)
        if name is not None:
            # Checked before the discharger echoes it in its refusal and its audit event.
            check_binding_name(name)
    except VaultError as exc:
        await _record_refusal(request, "discharge.workload", exc)
        raise
    discharge = await _svc(request).workload.discharge(ticket, binding_id, token, name, _ctx(request))
    return web.json_response({"discharge": encode_token(discharge)}, status=201)


# -- keys and health --------------------------------------------------------------------


def _list_nonce(raw: str | None) -> bytes | None:
    if raw is None:
        return None
    try:
        nonce = bytes.fromhex(raw)
    except ValueError:
        nonce = b""
    # 32 characters that decode to 16 bytes: hex digits only (fromhex would skip spaces).
    if len(raw) != 2 * LIST_NONCE_SIZE or len(nonce) != LIST_NONCE_SIZE:
        raise BadRequest(f"nonce must be {2 * LIST_NONCE_SIZE} hex digits ({LIST_NONCE_SIZE} random bytes)")
    return nonce


async def public_keys(request: web.Request) -> web.StreamResponse:
    """Every unretired ticket public key of both locations, newest first (docs/keys.md).

    ``public_key`` is the newest (what new tickets are sealed to). With
    ``?first_party=<base64 X25519 public key>`` (a store's), the org list also carries
    one endorsement per unretired org key, MACs under ``KA`` with that key, so the store
    can take a new key on the word of one it already trusts. With ``&nonce=<32 hex digits>``
    (the store's, fresh for each read) the endorsements cover that nonce too, so a recorded
    reply cannot be replayed to the store (docs/keys.md).
    """
    svc = _svc(request)

    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    def location(cache: SharedKeyCache, where: str) -> dict[str, Any]:
        keys = cache.published()
        return {
            "location": where,
            "public_key": b64(keys[0][1]),
            "key_id": f"{keys[0][0]:016x}",
            "keys": [{"id": f"{key_id:016x}", "public_key": b64(public)} for key_id, public in keys],
        }

    org = location(svc.keys.org, svc.org_location)
    nonce = _list_nonce(request.query.get("nonce"))  # checked even where unused: bad input is a 400
    raw = request.query.get("first_party")
    if raw is not None:
        try:
            first_party = base64.b64decode(
                raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            raise BadRequest("first_party must be a base64 X25519 public key") from None
        if len(first_party) != PUBLIC_KEY_SIZE:
            raise BadRequest("first_party must be a base64 X25519 public key (32 bytes)")
        org["endorsements"] = [
            {"id": f"{key_id:016x}", "mac": b64(tag)}
            for key_id, tag in svc.keys.org.endorsements(svc.org_location, first_party, nonce)
        ]
    return web.json_response(
        {"location": svc.location, "login": location(svc.keys.login, svc.login_location), "org": org}
    )


async def readyz(request: web.Request) -> web.StreamResponse:
    svc = request.app.get(SERVICES_KEY)
    if svc is None:
        return json_error(503, "unavailable", "keys are not loaded yet")
    if not await svc.health.ready(timeout=svc.config.readiness_timeout):
        return json_error(503, "unavailable", "database unreachable")
    return web.json_response({"status": "ready"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/sessions", create_session)
    r.add_delete("/v1/sessions/current", delete_session)
    r.add_get("/v1/me", me)
    r.add_post("/v1/orgs", create_org)
    r.add_get("/v1/orgs", list_orgs)
    r.add_get("/v1/orgs/{org}/members", list_members)
    r.add_post("/v1/orgs/{org}/invitations", create_invitation)
    r.add_get("/v1/invitations", list_invitations)
    r.add_post("/v1/invitations/{id}/accept", accept_invitation)
    r.add_patch("/v1/orgs/{org}/members/{user_id}", change_member)
    r.add_delete("/v1/orgs/{org}/members/{user_id}", remove_member)
    r.add_post("/v1/tokens", create_token)
    r.add_get("/v1/tokens", list_tokens)
    r.add_post("/v1/tokens/strip", strip_token)
    r.add_post("/v1/tokens/{id}/revoke", revoke_token)
    r.add_get("/v1/revocations", list_revocations)
    r.add_get("/v1/revocations/feed", revocation_feed)
    r.add_post("/login/.well-known/macfly/3p", login_discharge)
    r.add_post("/org/.well-known/macfly/3p", org_discharge)
    r.add_get("/.well-known/cvault/keys", public_keys)
    r.add_get("/readyz", readyz)
