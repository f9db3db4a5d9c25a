"""Who a caller's token bundle speaks for: verification of authority tokens.

The authority accepts two kinds of its own tokens in ``Authorization``:

* a *permission token* (it has a third-party caveat to ``<authority>/login``)
  with its bound login discharge; the user is the ``UserID`` the discharge
  attests, which the authority trusts because it can open its own login ticket;
* a *service token* (stripped from a permission token, no login caveat); the
  user is the one recorded for it in the tokens table.

Either way the token and each of its ancestors must be unrevoked, both in the
database and in the revocation watcher's in-memory view; a login discharge's
session (its ``LoginSession`` attestation) must not be revoked either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vault.errors import InvalidToken, Unauthenticated
from vault.macaroon import Access, Bundle, Caveat, EncryptionKey, Macaroon, Verified, verify
from vault.macaroon.access import ALL
from vault.macaroon.caveats import Action, IfPresent, LoginSession, Operations, Organization, Secrets, UserID, Vaults
from vault.macaroon.verify import check_all

from .interfaces import RevocationList, RootKeys, SessionRepository, TokenRepository
from .records import TokenKind, TokenRecord
from .roles import Role

__all__ = ["CARRIED", "BundleVerifier", "Principal"]

CARRIED: tuple[type[Caveat], ...] = (Vaults, Secrets, Operations, Action, IfPresent)
"""Restrictions about store resources. The authority cannot evaluate them (a
discharge request names no vault or secret), so it does not: strip keeps them
in the service token and the org discharger copies them into the discharge,
where the store enforces them."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    token: Macaroon
    record: TokenRecord
    ancestors: tuple[TokenRecord, ...]
    verified: Verified
    role: Role | None = None  # the user's role in the org ``verify`` was asked about (None: not a member)
    org_slug: str | None = None  # that org's slug (the org discharge attests it)

    @property
    def kind(self) -> TokenKind:
        return self.record.kind

    @property
    def lineage(self) -> tuple[str, ...]:
        """Ancestor ids, nearest first."""
        return tuple(a.id for a in self.ancestors)

    def org_mask(self, org_id: int) -> int:
        """The intersection of every ``Organization`` caveat's mask for ``org_id`` (0 if one names another org)."""
        mask = ALL
        for org in self.verified.find(Organization):
            mask &= org.mask if org.id == org_id else 0
        return mask

    def check_here(self, access: Access) -> list[Caveat]:
        """Check every restriction the authority can evaluate; return the :data:`CARRIED` ones.

        Raises :class:`Unauthorized` listing every refusing caveat.
        """
        restrictions = self.verified.restrictions
        check_all((c for c in restrictions if not isinstance(c, CARRIED)), access)
        return [c for c in restrictions if isinstance(c, CARRIED)]


class BundleVerifier:
    def __init__(
        self,
        *,
        location: str,
        login_location: str,
        issuer_login_keys: list[EncryptionKey],
        root_keys: RootKeys,
        tokens: TokenRepository,
        revocations: RevocationList,
        sessions: SessionRepository,
    ) -> None:
        self._location = location
        self._sessions = sessions
        # The list is TicketKeys.issuer_login_keys itself, updated in place when ticket keys rotate.
        self._trusted = {login_location: issuer_login_keys}
        self._root_keys = root_keys
        self._tokens = tokens
        self._revocations = revocations

    async def verify(self, bundle: Bundle, *, now: int, role_in: int | None = None) -> Principal:
        """Verify the bundle's authority token and its discharges; find its user (and their role in ``role_in``).

        Raises :class:`InvalidToken` (bad bytes or signature, unknown or revoked
        token), :class:`~vault.errors.MissingDischarge` (no valid login discharge),
        :class:`Unauthenticated` (the discharge does not vouch for the token's user).
        """
        token = bundle.permission_token(self._location)
        key = await self._root_keys.get(token.nonce.kid)
        verified = verify(token, key, bundle.discharges, now=now, trusted=self._trusted)
        lineage, role, org_slug = await self._tokens.lineage(token.token_id, role_in=role_in)
        if not lineage:
            raise InvalidToken("invalid token: this authority has no record of it")
        record, *older = lineage
        ancestors = tuple(older)
        check_not_revoked((record, *ancestors), self._revocations.is_revoked)
        if record.kind is TokenKind.PERMISSION:
            attested = {u.id for u in verified.attested(UserID)}
            if attested != {record.user_id}:
                raise Unauthenticated("the login discharge does not vouch for this token's user; get a new one")
            await self._check_sessions(verified, record.user_id)
        return Principal(record.user_id, token, record, ancestors, verified, role, org_slug)

    async def _check_sessions(self, verified: Verified, user_id: int) -> None:
        # Read live: a logout stops the session's login discharges on every node at once.
        sessions = verified.attested(LoginSession)
        if not sessions:
            raise Unauthenticated("the login discharge names no session (issued by an older authority); get a new one")
        for attested in sessions:
            session = await self._sessions.get(attested.id)
            if session is None or session.user_id != user_id or session.revoked_at is not None:
                raise Unauthenticated("the login session behind this discharge was revoked; log in again")


def check_not_revoked(chain: tuple[TokenRecord, ...], is_revoked: Callable[[str], bool]) -> None:
    for r in chain:
        if r.revoked_at is not None or is_revoked(r.id):
            whose = "this token" if r is chain[0] else f"its parent token {r.id}"
            raise InvalidToken(f"invalid token: {whose} was revoked")
