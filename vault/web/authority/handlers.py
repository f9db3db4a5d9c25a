"""HTTP handlers of the authority (routes in ``docs/api.md``). Parsing here, decisions in ``vault.authority``."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from aiohttp import web
from msgspec import Meta

from vault.audit.refusal import refusal_detail, refusal_outcome
from vault.authority.invitations import VERIFICATION_SENT
from vault.authority.records import Invitation, Member, Membership, Session, TokenRecord
from vault.authority.revocation_feed import MAX_SINCE_LIMIT
from vault.authority.session_secret import SESSION_PREFIX
from vault.authority.sessions import InvalidCredentials
from vault.authority.ticket_keys import SharedKeyCache
from vault.authority.workload_jwt import looks_like_jwt
from vault.crypto.ticket_keys import LIST_NONCE_SIZE, PUBLIC_KEY_SIZE
from vault.errors import BadRequest, Unauthenticated, Unavailable, VaultError
from vault.macaroon import Bundle, encode_token, mask_from_string, mask_to_string, parse_bundle
from vault.types import RequestContext

from ..common import credential, origin, required_credential
from ..contract import Operation, Response, decode_body, decode_params, reply
from ..models import MAX_INT64
from ..service_routes import Status
from . import messages as msg
from .services import SERVICES_KEY, AuthorityServices

__all__ = ["OPERATIONS"]

log = logging.getLogger("cvault.authority")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
P = TypeVar("P")
D = TypeVar("D", bound=msg.DischargeBody)


async def _record_refusal(request: web.Request, action: str, exc: VaultError) -> None:
    """Record a failed request (``denied`` for 401/403, ``error`` otherwise); it fails anyway if this cannot."""
    org = request.match_info.get("org", "")
    try:
        await _svc(request).audit.record(
            _ctx(request),
            action,
            refusal_outcome(exc),
            org=int(org) if org.isascii() and org.isdigit() and len(org) <= 19 and int(org) <= MAX_INT64 else None,
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


def _b64(text: str) -> bytes:
    # The model's pattern is padded standard base64; Python's ``$`` also lets a final newline through, refused here.
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("ticket and binding_id must be standard base64") from None


def _time(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value else None


def _membership(m: Membership) -> msg.Membership:
    return msg.Membership(id=m.org_id, slug=m.slug, role=m.role)


def _member(m: Member) -> msg.Member:
    return msg.Member(user_id=m.user_id, email=m.email, role=m.role)


def _mask(value: str) -> int:
    try:
        return mask_from_string(value)
    except ValueError as exc:
        raise BadRequest(f"field 'mask': {exc}") from None


def _path(request: web.Request, model: type[P]) -> P:
    return decode_params(request.match_info, model, "path")


# -- sessions ---------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.StreamResponse:
    try:
        body = await decode_body(request, msg.LoginBody)
    except VaultError as exc:
        await _record_refusal(request, "login", exc)
        raise
    try:
        secret, session = await _svc(request).sessions.login(body.email, body.password, _ctx(request))
    except InvalidCredentials:
        raise  # audited by the login itself, with who tried
    except VaultError as exc:
        # Rate limited, or the session's transaction failed (its "ok" event rolled back with it).
        await _record_refusal(request, "login", exc)
        raise
    return reply(msg.Login(session=secret, user_id=session.user_id, expires_at=_time(session.expires_at)), status=201)


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
    return reply(msg.Me(user_id=user.id, email=user.email, orgs=[_membership(m) for m in orgs]))


# -- orgs and members -------------------------------------------------------------------


@refusals_audited("org.create")
async def create_org(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    body = await decode_body(request, msg.CreateOrg)
    org = await _svc(request).accounts.create_org(session.user_id, body.slug, _ctx(request))
    return reply(msg.NewOrg(id=org.id, slug=org.slug), status=201)


@refusals_audited("orgs.list")
async def list_orgs(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    orgs = await _svc(request).accounts.memberships(session.user_id)
    return reply(msg.MembershipList(orgs=[_membership(m) for m in orgs]))


@refusals_audited("members.list")
async def list_members(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    members = await _svc(request).accounts.members(session.user_id, _path(request, msg.OrgPath).org)
    return reply(msg.MemberList(members=[_member(m) for m in members]))


def _invitation(i: Invitation) -> msg.Invitation:
    return msg.Invitation(
        id=i.id, org=i.org_id, slug=i.slug, email=i.email, role=i.role, expires_at=_time(i.expires_at)
    )


@refusals_audited("invitation.create")
async def create_invitation(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    org_id = _path(request, msg.OrgPath).org
    body = await decode_body(request, msg.InviteBody)
    invitation, code = await _svc(request).invitations.invite(
        session.user_id, org_id, body.email, body.role, _ctx(request)
    )
    # The same reply whether or not the email has an account: inviting is no way to probe for one.
    i = _invitation(invitation)
    created = msg.NewInvitation(
        id=i.id, org=i.org, slug=i.slug, email=i.email, role=i.role, expires_at=i.expires_at, code=code
    )
    return reply(created, status=201)


@refusals_audited("invitations.list")
async def list_invitations(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    pending = await _svc(request).invitations.pending(session.user_id)
    return reply(msg.InvitationList(invitations=[_invitation(i) for i in pending]))


@refusals_audited("invitation.accept")
async def accept_invitation(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    invitation_id = str(_path(request, msg.InvitationPath).id)
    body = await decode_body(request, msg.AcceptInvitation)
    if body.verification is not None and body.password is None:
        # With or without a session: the document says a verification code goes with a password.
        raise BadRequest("with verification, send the new account's password too")
    if _bearer(request) is not None:
        session = await _session(request)
        invitation = await svc.invitations.accept_as(session.user_id, invitation_id, body.code, _ctx(request))
        user_id = session.user_id
    elif body.verification is None or body.password is None:
        # No account and no verification code yet: prove control of the invited address first.
        await svc.invitations.send_verification(invitation_id, body.code, _ctx(request))
        return reply(msg.VerificationSent(status="verification_sent", message=VERIFICATION_SENT), status=202)
    else:
        invitation, user_id = await svc.invitations.accept_with_code(
            invitation_id, body.code, body.verification, body.password, _ctx(request)
        )
    return reply(msg.Accepted(org=invitation.org_id, slug=invitation.slug, role=invitation.role, user_id=user_id))


@refusals_audited("member.change")
async def change_member(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    path = _path(request, msg.MemberPath)
    body = await decode_body(request, msg.RoleBody)
    await _svc(request).accounts.change_role(session.user_id, path.org, path.user_id, body.role, _ctx(request))
    return reply(msg.RoleChanged(user_id=path.user_id, role=body.role))


@refusals_audited("member.remove")
async def remove_member(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    path = _path(request, msg.MemberPath)
    await _svc(request).accounts.remove_member(session.user_id, path.org, path.user_id, _ctx(request))
    return web.Response(status=204)


# -- tokens -----------------------------------------------------------------------------


@refusals_audited("token.mint")
async def create_token(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    credential = _bearer(request)
    if credential is None:
        raise Unauthenticated("send a session ('Bearer cvs_...') or a permission bundle with 'C' on the org")
    body = await decode_body(request, msg.CreateToken)
    mask = _mask(body.mask) if body.mask is not None else None
    if credential.startswith(SESSION_PREFIX):
        session = await svc.sessions.authenticate(credential)
        token, record = await svc.tokens.mint(session.user_id, body.org, mask, body.ttl, _ctx(request))
    else:
        principal = await svc.verifier.verify(_bundle(request), now=int(svc.clock()))
        token, record = await svc.tokens.mint(
            principal.user_id,
            body.org,
            mask,
            body.ttl,
            _ctx(request),
            via=principal,
            client_ip=origin(request).client_ip,
        )
    return reply(msg.Issued(token=encode_token(token), id=record.id, expires_at=_time(record.expires_at)), status=201)


def _token_info(record: TokenRecord, by_id: dict[str, TokenRecord]) -> msg.TokenInfo:
    lineage: list[str] = []
    parent = record.parent
    while parent is not None and parent not in lineage and len(lineage) < 64:
        lineage.append(parent)
        ancestor = by_id.get(parent)
        parent = ancestor.parent if ancestor else None
    return msg.TokenInfo(
        id=record.id,
        org=record.org_id,
        kind=record.kind.value,
        mask=mask_to_string(record.mask),
        parent=record.parent,
        lineage=lineage,
        created_at=_time(record.created_at),
        expires_at=_time(record.expires_at),
        revoked_at=_time(record.revoked_at),
    )


@refusals_audited("tokens.list")
async def list_tokens(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    records = await _svc(request).tokens.for_user(session.user_id)
    by_id = {r.id: r for r in records}
    return reply(msg.TokenList(tokens=[_token_info(r, by_id) for r in records]))


@refusals_audited("token.strip")
async def strip_token(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    principal = await svc.verifier.verify(_bundle(request), now=int(svc.clock()))
    token, record = await svc.tokens.strip(principal, origin(request).client_ip, _ctx(request))
    stripped = msg.Stripped(
        token=encode_token(token), id=record.id, parent=record.parent, expires_at=_time(record.expires_at)
    )
    return reply(stripped, status=201)


@refusals_audited("token.revoke")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    token_id = str(_path(request, msg.TokenPath).id)
    revoked = await _svc(request).tokens.revoke(session.user_id, token_id, _ctx(request))
    return reply(msg.Revoked(revoked=revoked))


@refusals_audited("revocations.list")
async def list_revocations(request: web.Request) -> web.StreamResponse:
    query = decode_params(request.query, msg.RevocationsQuery)
    items, next_seq = await _svc(request).revocations.since(query.since, min(query.limit, MAX_SINCE_LIMIT))
    return reply(msg.RevocationPage(revocations=[msg.Revocation(**item) for item in items], next=next_seq))


async def revocation_feed(request: web.Request) -> web.StreamResponse:
    """The feed stores follow (docs/revocation.md): a long poll, resumed from ``cursor``."""
    svc = _svc(request)
    svc.feed.check(_bearer(request))
    query = decode_params(request.query, msg.FeedQuery)
    events, next_cursor = await svc.feed.read(query.cursor, query.wait, query.limit)
    page = msg.FeedPage(events=[msg.FeedEvent(**event) for event in events], cursor=next_cursor)
    return reply(page, headers={"Cache-Control": "no-store"})


# -- discharges -------------------------------------------------------------------------


async def _discharge_request(request: web.Request, model: type[D]) -> tuple[D, bytes, bytes]:
    """The body (superfly/macaroon's: standard base64 ``ticket`` and ``binding_id``) and the two decoded."""
    body = await decode_body(request, model)
    return body, _b64(body.ticket), _b64(body.binding_id)


async def login_discharge(request: web.Request) -> web.StreamResponse:
    try:
        secret = _session_secret(request)
        _, ticket, binding_id = await _discharge_request(request, msg.DischargeBody)
    except VaultError as exc:
        await _record_refusal(request, "discharge.login", exc)
        raise
    discharge = await _svc(request).login.discharge(ticket, binding_id, secret, _ctx(request))
    return reply(msg.Discharge(discharge=encode_token(discharge)), status=201)


async def org_discharge(request: web.Request) -> web.StreamResponse:
    if looks_like_jwt(_bearer(request) or ""):
        return await _workload_discharge(request)
    try:
        bundle = _bundle(request)
        _, ticket, binding_id = await _discharge_request(request, msg.WorkloadDischargeBody)
    except VaultError as exc:
        await _record_refusal(request, "discharge.org", exc)
        raise
    discharge = await _svc(request).org.discharge(ticket, binding_id, bundle, origin(request).client_ip, _ctx(request))
    return reply(msg.Discharge(discharge=encode_token(discharge)), status=201)


async def _workload_discharge(request: web.Request) -> web.StreamResponse:
    """The org discharge for a workload: ``Authorization: Bearer <JWT>`` (docs/workload-identity.md)."""
    try:
        token = _bearer(request) or ""
        # The model checks ``binding`` before the discharger echoes it in its refusal and its audit event.
        body, ticket, binding_id = await _discharge_request(request, msg.WorkloadDischargeBody)
    except VaultError as exc:
        await _record_refusal(request, "discharge.workload", exc)
        raise
    discharge = await _svc(request).workload.discharge(ticket, binding_id, token, body.binding, _ctx(request))
    return reply(msg.Discharge(discharge=encode_token(discharge)), status=201)


# -- keys and health --------------------------------------------------------------------


def _list_nonce(raw: str) -> bytes:
    try:
        nonce = bytes.fromhex(raw)
    except ValueError:
        nonce = b""
    # 32 characters that decode to 16 bytes: hex digits only (fromhex would skip spaces, the pattern's ``$`` a
    # final newline).
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
    # Both checked even where unused: bad input is a 400.
    query = decode_params(request.query, msg.KeysQuery)

    def b64(key: bytes) -> str:
        return base64.b64encode(key).decode()

    def location(cache: SharedKeyCache, where: str) -> msg.DischargerKeys:
        keys = cache.published()
        return msg.DischargerKeys(
            location=where,
            public_key=b64(keys[0][1]),
            key_id=f"{keys[0][0]:016x}",
            keys=[msg.PublicKey(id=f"{key_id:016x}", public_key=b64(public)) for key_id, public in keys],
        )

    org = location(svc.keys.org, svc.org_location)
    nonce = _list_nonce(query.nonce) if isinstance(query.nonce, str) else None
    if isinstance(query.first_party, str):
        raw = query.first_party
        try:
            first_party = base64.b64decode(
                raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            raise BadRequest("first_party must be a base64 X25519 public key") from None
        if len(first_party) != PUBLIC_KEY_SIZE:
            raise BadRequest("first_party must be a base64 X25519 public key (32 bytes)")
        org.endorsements = [
            msg.Endorsement(id=f"{key_id:016x}", mac=b64(tag))
            for key_id, tag in svc.keys.org.endorsements(svc.org_location, first_party, nonce)
        ]
    return reply(msg.AuthorityKeys(location=svc.location, login=location(svc.keys.login, svc.login_location), org=org))


async def readyz(request: web.Request) -> web.StreamResponse:
    svc = request.app.get(SERVICES_KEY)
    if svc is None:
        raise Unavailable("keys are not loaded yet")
    if not await svc.health.ready(timeout=svc.config.readiness_timeout):
        raise Unavailable("database unreachable")
    return reply(Status(status="ready"))


# -- the contract -----------------------------------------------------------------------

SESSION = ("session",)
EITHER = ("session", "bundle")
_NO_CONTENT = {204: Response(description="done")}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        route="/v1/sessions",
        handler=create_session,
        id="login",
        summary="Log in with email and password; returns a cvs_ session secret (shown once)",
        body=msg.LoginBody,
        responses={201: Response(msg.Login)},
    ),
    Operation(
        method="DELETE",
        route="/v1/sessions/current",
        handler=delete_session,
        id="logout",
        summary="Revoke the presented session",
        responses=_NO_CONTENT,
        security=SESSION,
    ),
    Operation(
        method="GET",
        route="/v1/me",
        handler=me,
        id="me",
        summary="The session's user and orgs",
        responses={200: Response(msg.Me)},
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/v1/orgs",
        handler=create_org,
        id="createOrg",
        summary="Create an organization (the caller becomes its owner)",
        body=msg.CreateOrg,
        responses={201: Response(msg.NewOrg)},
        security=SESSION,
    ),
    Operation(
        method="GET",
        route="/v1/orgs",
        handler=list_orgs,
        id="listOrgs",
        summary="The caller's organizations",
        responses={200: Response(msg.MembershipList)},
        security=SESSION,
    ),
    Operation(
        method="GET",
        route="/v1/orgs/{org}/members",
        handler=list_members,
        id="listMembers",
        summary="Members of an organization (owners and auditors)",
        path=msg.OrgPath,
        responses={200: Response(msg.MemberList)},
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/v1/orgs/{org}/invitations",
        handler=create_invitation,
        id="invite",
        summary="Invite an email into the organization (owner only); the same reply whether or not it has an account",
        path=msg.OrgPath,
        body=msg.InviteBody,
        responses={201: Response(msg.NewInvitation)},
        security=SESSION,
    ),
    Operation(
        method="GET",
        route="/v1/invitations",
        handler=list_invitations,
        id="listInvitations",
        summary="Pending invitations of the session's email",
        responses={200: Response(msg.InvitationList)},
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/v1/invitations/{id}/accept",
        handler=accept_invitation,
        id="acceptInvitation",
        summary="Accept an invitation with its code: with a session of the invited email; or, with no account, "
        "first without a verification code (the authority mails one to the invited address: 202), then with it "
        "and a new password (creates the account)",
        path=msg.InvitationPath,
        body=Annotated[msg.AcceptInvitation, Meta(extra_json_schema=msg.ACCEPT_RULES)],
        responses={
            200: Response(msg.Accepted),
            202: Response(
                msg.VerificationSent,
                description="no session and no verification code: a message went to the invited address (the same "
                "reply whether or not it has an account)",
            ),
        },
        security=("session", ""),
    ),
    Operation(
        method="PATCH",
        route="/v1/orgs/{org}/members/{user_id}",
        handler=change_member,
        id="changeMember",
        summary="Change a member's role (owner only)",
        path=msg.MemberPath,
        body=msg.RoleBody,
        responses={200: Response(msg.RoleChanged)},
        security=SESSION,
    ),
    Operation(
        method="DELETE",
        route="/v1/orgs/{org}/members/{user_id}",
        handler=remove_member,
        id="removeMember",
        summary="Remove a member (owner only); their next org discharge is refused",
        path=msg.MemberPath,
        responses=_NO_CONTENT,
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/v1/tokens",
        handler=create_token,
        id="createToken",
        summary="Mint a permission token (mask never above the caller's role); with a bundle, recorded as its child",
        body=msg.CreateToken,
        responses={201: Response(msg.Issued)},
        security=EITHER,
    ),
    Operation(
        method="GET",
        route="/v1/tokens",
        handler=list_tokens,
        id="listTokens",
        summary="The caller's tokens with times and lineage",
        responses={200: Response(msg.TokenList)},
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/v1/tokens/strip",
        handler=strip_token,
        id="stripToken",
        summary="Turn a permission token and its login discharge into a service token",
        responses={201: Response(msg.Stripped)},
        security=("bundle",),
    ),
    Operation(
        method="POST",
        route="/v1/tokens/{id}/revoke",
        handler=revoke_token,
        id="revokeToken",
        summary="Revoke a token and every token stripped from it",
        path=msg.TokenPath,
        responses={200: Response(msg.Revoked)},
        security=SESSION,
    ),
    Operation(
        method="GET",
        route="/v1/revocations",
        handler=list_revocations,
        id="listRevocations",
        summary="Revoked token ids after sequence number `since`, for verifiers",
        query=msg.RevocationsQuery,
        responses={200: Response(msg.RevocationPage)},
    ),
    Operation(
        method="GET",
        route="/v1/revocations/feed",
        handler=revocation_feed,
        id="revocationFeed",
        summary="The revocation feed stores follow (docs/revocation.md): events after `cursor`, waiting up to "
        "`wait` seconds for one",
        query=msg.FeedQuery,
        responses={200: Response(msg.FeedPage)},
        security=("feed",),
    ),
    Operation(
        method="POST",
        route="/login/.well-known/macfly/3p",
        handler=login_discharge,
        id="loginDischarge",
        summary="Login discharger: a session of the ticket's user gets a bound UserID discharge",
        body=msg.DischargeBody,
        responses={201: Response(msg.Discharge)},
        security=SESSION,
    ),
    Operation(
        method="POST",
        route="/org/.well-known/macfly/3p",
        handler=org_discharge,
        id="orgDischarge",
        summary="Org discharger: a live membership check for a store ticket; or, with 'Bearer <JWT>', a workload's "
        "platform-signed JWT checked against the org's trusted issuers and bindings",
        body=msg.WorkloadDischargeBody,
        responses={201: Response(msg.Discharge)},
        security=("bundle", "jwt"),
    ),
    Operation(
        method="GET",
        route="/.well-known/cvault/keys",
        handler=public_keys,
        id="publicKeys",
        summary="The authority's locations and unretired X25519 ticket public keys (newest first)",
        query=msg.KeysQuery,
        responses={200: Response(msg.AuthorityKeys)},
    ),
    Operation(
        method="GET",
        route="/readyz",
        handler=readyz,
        id="readyz",
        summary="Database reachable and keys loaded",
        responses={200: Response(Status)},
    ),
)
