"""Who is calling, once their bundle has verified: what audit events and services need to know."""

from __future__ import annotations

from dataclasses import dataclass

from vault.errors import Unauthorized
from vault.macaroon import Access, Verified
from vault.macaroon.caveats import Action, Organization, TokenLineage, UserID

__all__ = ["Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified store token with its org discharge.

    ``actor`` and ``lineage`` come from the discharge's attestations, which only
    count when the store could open the discharge's ticket itself (see
    :func:`vault.macaroon.verify`).
    """

    org_id: int
    token_id: str
    verified: Verified

    @property
    def actor(self) -> str | None:
        users = self.verified.attested(UserID)
        return str(users[0].id) if users else None

    @property
    def lineage(self) -> tuple[str, ...]:
        found = self.verified.attested(TokenLineage)
        return (found[0].token_id, *found[0].ancestors) if found else ()

    def check(self, access: Access) -> None:
        """Raise :class:`Unauthorized` listing every refusing caveat."""
        self.verified.check(access)

    def allows(self, access: Access) -> bool:
        try:
            self.verified.check(access)
        except Unauthorized:
            return False
        return True

    def effective_mask(self) -> int:
        """What the token and its discharge both allow in the org: every ``Organization`` and ``Action`` mask."""
        mask = (1 << 16) - 1
        for org in self.verified.find(Organization):
            mask &= org.mask if org.id == self.org_id else 0
        for action in self.verified.find(Action):
            mask &= action.mask
        return mask
