"""Who is calling, once their bundle has verified: what audit events and services need to know."""

from __future__ import annotations

from dataclasses import dataclass, field

from vault.errors import Unauthorized
from vault.macaroon import Access, Verified
from vault.macaroon.caveats import (
    Action,
    LoginSession,
    Operations,
    Organization,
    OrgSlug,
    Secrets,
    TokenLineage,
    UserID,
    Vaults,
)
from vault.macaroon.cvault_caveats import WorkloadIdentity
from vault.macaroon.verify import check_all

__all__ = ["Caller"]

# Caveats that narrow what a live token may do, not whether it is alive.
_SCOPE = (Vaults, Secrets, Operations, Action)


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
    # Every audit event of the caller names these; found once, not per event.
    actor: str | None = field(init=False)
    lineage: tuple[str, ...] = field(init=False)
    # What the revocation feed can revoke (vault.store.authority_revocations).
    user_id: int | None = field(init=False)
    session_id: int | None = field(init=False)
    # The org's slug as the authority attested it (enrolment records it).
    org_slug: str | None = field(init=False)
    # The workload whose JWT obtained the discharge (docs/workload-identity.md), if it was one.
    workload: WorkloadIdentity | None = field(init=False)

    def __post_init__(self) -> None:
        users = self.verified.attested(UserID)
        object.__setattr__(self, "user_id", users[0].id if users else None)
        object.__setattr__(self, "actor", str(users[0].id) if users else None)
        sessions = self.verified.attested(LoginSession)
        object.__setattr__(self, "session_id", sessions[0].id if sessions else None)
        slugs = self.verified.attested(OrgSlug)
        object.__setattr__(self, "org_slug", slugs[0].slug if slugs else None)
        found = self.verified.attested(TokenLineage)
        object.__setattr__(self, "lineage", (found[0].token_id, *found[0].ancestors) if found else ())
        workloads = self.verified.attested(WorkloadIdentity)
        object.__setattr__(self, "workload", workloads[0] if workloads else None)
        if workloads and not users and not found:
            # The binding stands where an authority token would: the revocation feed revokes it by id.
            object.__setattr__(self, "actor", f"workload:{workloads[0].label}")
            object.__setattr__(self, "lineage", (workloads[0].binding_id,))

    def check(self, access: Access) -> None:
        """Raise :class:`Unauthorized` listing every refusing caveat."""
        check_all(self.verified.restrictions, access)

    def check_live(self, access: Access) -> None:
        """Like :meth:`check`, ignoring the scoping caveats (vaults, secrets, operations, actions).

        For "is this token good at all" questions that name no vault or secret (the Vault API's
        token lookup): validity windows, client addresses, the org and every caveat cvault
        does not know still refuse.
        """
        reasons = [
            f"{c.NAME}: {refusal.reason}"
            for c in self.verified.restrictions
            if not isinstance(c, _SCOPE) and (refusal := c.prohibits(access)) is not None
        ]
        if reasons:
            raise Unauthorized(reasons)

    def check_secrets_later(self, access: Access) -> None:
        """Like :meth:`check`, leaving ``Secrets`` caveats to a check per secret.

        For a batch read, whose route names a vault but no secret: a ``Secrets`` caveat
        refuses any access that names none, which would refuse every batch read of a
        token scoped to some secrets. The service checks each secret it returns in full
        (:meth:`allows`), so what the caveat refuses here is refused there, secret by secret.
        """
        reasons = []
        for c in self.verified.restrictions:
            refusal = c.prohibits(access)
            if refusal is None or (isinstance(c, Secrets) and refusal.unspecified):
                continue
            reasons.append(f"{c.NAME}: {refusal.reason}")
        if reasons:
            raise Unauthorized(reasons)

    def allows(self, access: Access) -> bool:
        try:
            self.check(access)
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
