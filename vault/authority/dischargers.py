"""The two third-party dischargers: ``<authority>/login`` and ``<authority>/org``.

Both follow the same steps: derive ``KA`` from the ticket's sender key, open the
ticket (:func:`vault.macaroon.start_discharge`), check the ticket's caveats
against the caller, add restrictions and attestations, bind the discharge to
the parent token named by ``binding_id``, finalize. Every decision, issued or
refused, goes to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.errors import InvalidToken, Unauthorized, VaultError
from vault.macaroon import Access, Bundle, Caveat, Macaroon, Ticket, bind, start_discharge, ticket_sender
from vault.macaroon.caveats import (
    ConfineOrganization,
    ConfineUser,
    LoginSession,
    MaxValidity,
    Organization,
    OrgSlug,
    TokenLineage,
    UserID,
    ValidityWindow,
)
from vault.macaroon.verify import check_all
from vault.types import Clock, IPAddress, RequestContext

from .audit import Auditor
from .principal import BundleVerifier
from .records import TokenKind
from .sessions import Sessions
from .ticket_keys import SharedKeyCache

__all__ = ["LoginDischarger", "OrgDischarger"]


def _open(ticket: bytes, keys: SharedKeyCache, location: str) -> tuple[Ticket, Macaroon]:
    # The ticket does not say which of our unretired keys sealed it: try each, newest first (a few at most).
    try:
        return keys.first_that_opens(ticket_sender(ticket), lambda ka: start_discharge(ticket, ka, location))
    except (InvalidToken, VaultError, ValueError):
        pass
    raise InvalidToken(
        f"invalid ticket: it does not open with any of {location}'s keys (sealed for another authority or to a "
        "retired key, or altered)"
    )


def _lifetime(ticket: Ticket, configured: int) -> int:
    limits = [configured] + [c.seconds for c in ticket.caveats if isinstance(c, MaxValidity)]
    return max(0, min(limits))


def _check_ticket(ticket: Ticket, access: Access) -> None:
    check_all(ticket.caveats, access, label="ticket ")


def _ticket_org(ticket: Ticket) -> int:
    """The organization a ticket for an org discharge is about (its first ``ConfineOrganization``)."""
    orgs = [c.id for c in ticket.caveats if isinstance(c, ConfineOrganization)]
    if not orgs:
        raise Unauthorized("the ticket names no organization (ConfineOrganization)")
    return orgs[0]


def _finish(d: Macaroon, caveats: Sequence[Caveat], binding_id: bytes) -> Macaroon:
    return bind(d.attenuate(caveats), binding_id).finalize()


class LoginDischarger:
    """``<authority>/login``: a valid session of the ticket's ``ConfineUser`` gets a ``UserID`` discharge."""

    def __init__(
        self, *, location: str, keys: SharedKeyCache, sessions: Sessions, ttl: int, clock: Clock, audit: Auditor
    ) -> None:
        self.location = location
        self._keys = keys
        self._sessions = sessions
        self._ttl = ttl
        self._clock = clock
        self._audit = audit

    async def discharge(
        self, ticket: bytes, binding_id: bytes, session_secret: str, ctx: RequestContext[None]
    ) -> Macaroon:
        now = int(self._clock())
        user_id: int | None = None
        try:
            opened, d = _open(ticket, self._keys, self.location)
            session = await self._sessions.authenticate(session_secret)
            user_id = session.user_id
            if not any(isinstance(c, ConfineUser) for c in opened.caveats):
                raise Unauthorized("the ticket names no user (ConfineUser), so no login can discharge it")
            expiry = now + _lifetime(opened, self._ttl)
            _check_ticket(opened, Access(now, user_id=user_id, discharge_expiry=expiry))
            # LoginSession lets a logout stop this discharge and the org discharges it obtains.
            caveats = [ValidityWindow(now, expiry), UserID(user_id), LoginSession(session.id)]
            discharge = _finish(d, caveats, binding_id)
        except VaultError as exc:
            await self._audit.record(ctx, "discharge.login", "denied", user_id=user_id, reason=exc.message)
            raise
        await self._audit.record(ctx, "discharge.login", "ok", user_id=user_id, expires=expiry)
        return discharge


class OrgDischarger:
    """``<authority>/org``: a live check of the caller's membership, for store tickets."""

    def __init__(
        self,
        *,
        location: str,
        keys: SharedKeyCache,
        verifier: BundleVerifier,
        ttl: int,
        clock: Clock,
        audit: Auditor,
    ) -> None:
        self.location = location
        self._keys = keys
        self._verifier = verifier
        self._ttl = ttl
        self._clock = clock
        self._audit = audit

    async def discharge(
        self,
        ticket: bytes,
        binding_id: bytes,
        bundle: Bundle,
        client_ip: IPAddress | None,
        ctx: RequestContext[None],
    ) -> Macaroon:
        now = int(self._clock())
        org: int | None = None
        user_id: int | None = None
        token_id: str | None = None
        lineage: tuple[str, ...] = ()
        try:
            opened, d = _open(ticket, self._keys, self.location)
            org = _ticket_org(opened)
            # The membership is read live, in the same query as the token's lineage.
            principal = await self._verifier.verify(bundle, now=now, role_in=org)
            user_id, token_id, lineage = principal.user_id, principal.record.id, principal.lineage
            expiry = now + _lifetime(opened, self._ttl)
            # A discharge never outlives the credential it was issued for.
            token_expiry = principal.verified.expiry()
            if token_expiry is not None:
                expiry = min(expiry, token_expiry)
            _check_ticket(opened, Access(now, org_id=org, user_id=user_id, discharge_expiry=expiry))
            carried = principal.check_here(Access(now, org_id=org, client_ip=client_ip))
            role = principal.role
            if role is None:
                raise Unauthorized(f"user {user_id} is not a member of organization {org}")
            mask = principal.org_mask(org) & role.mask
            if not mask:
                raise Unauthorized(
                    f"the token's permissions and the {role.value} role in organization {org} have nothing in common"
                )
            caveats: list[Caveat] = [
                ValidityWindow(now, expiry),
                Organization(org, mask),
                *carried,
                UserID(user_id),
                TokenLineage(principal.record.id, lineage),
                # The store refuses the discharge once the feed says this session was revoked.
                *principal.verified.attested(LoginSession),
                # The store enrols the org under this slug, never one the enrolling client chose.
                *([OrgSlug(principal.org_slug)] if principal.org_slug else []),
            ]
            discharge = _finish(d, caveats, binding_id)
        except VaultError as exc:
            await self._audit.record(
                ctx,
                "discharge.org",
                "denied",
                org=org,
                user_id=user_id,
                token_id=token_id,
                lineage=lineage,
                reason=exc.message,
            )
            raise
        await self._audit.record(
            ctx,
            "discharge.org",
            "ok",
            org=org,
            user_id=user_id,
            token_id=token_id,
            lineage=lineage,
            mask=mask,
            kind=TokenKind(principal.kind).value,
            expires=expiry,
        )
        return discharge
