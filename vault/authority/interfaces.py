"""What the authority needs from the outside world, as protocols.

Storage implements the repositories (``vault/storage/accounts.py``,
``vault/storage/authority_tokens.py``); the infra branch provides the revocation
watcher and the audit log; the web app factory is the only place that builds
concrete objects. Each method says what it raises; every repository method may
also raise :class:`~vault.errors.Unavailable` when the database is unreachable.

A method that changes state takes a ``before_commit`` (:class:`~vault.types.BeforeCommit`):
the repository calls it inside the change's transaction, just before ``COMMIT``, with
what it changed, and the service appends the change's audit event there
(:meth:`AuditSink.record_in`), so the event exists exactly when the change does. A
``COMMIT`` the database refuses raises :class:`~vault.errors.DatabaseError`; one lost
on the way, :class:`~vault.errors.OutcomeUnknown` (``vault/storage/change.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vault.macaroon import SigningKey
from vault.types import BeforeCommit

from .records import Invitation, Member, Membership, Org, Session, TokenRecord, User
from .roles import Role
from .workload_records import WorkloadBinding, WorkloadIssuer

__all__ = [
    "AccountRepository",
    "AuditSink",
    "AuthorityEvent",
    "InvitationRepository",
    "RevocationList",
    "RootKeys",
    "SessionRepository",
    "TokenRepository",
    "WorkloadRepository",
]


class AccountRepository(Protocol):
    async def create_user(self, email: str, password_hash: str, before_commit: BeforeCommit[User]) -> User:
        """Raises :class:`~vault.errors.Conflict` when the email is taken."""

    async def user_by_email(self, email: str) -> User | None: ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def count_users(self) -> int: ...

    async def create_org(self, org_id: int, slug: str, owner_id: int, before_commit: BeforeCommit[Org]) -> Org:
        """Create the org with ``owner_id`` as its owner; :class:`Conflict` when the slug or id is taken."""

    async def memberships(self, user_id: int) -> list[Membership]: ...

    async def role_of(self, user_id: int, org_id: int) -> Role | None:
        """The user's current role; always read from the database (no cache)."""

    async def members(self, org_id: int) -> list[Member]: ...

    async def change_role(self, org_id: int, user_id: int, role: Role, before_commit: BeforeCommit[Role]) -> None:
        """:class:`NotFound` when not a member; :class:`Conflict` when it would leave no owner.

        ``before_commit`` is told the member's role before the change.
        """

    async def remove_member(self, org_id: int, user_id: int, before_commit: BeforeCommit[Role]) -> None:
        """:class:`NotFound` when not a member; :class:`Conflict` when it would leave no owner."""


class InvitationRepository(Protocol):
    async def create(
        self,
        invitation_id: str,
        org_id: int,
        email: str,
        role: Role,
        invited_by: int,
        code_digest: bytes,
        expires_at: dt.datetime,
        before_commit: BeforeCommit[Invitation],
    ) -> Invitation: ...

    async def pending_for(self, email: str, now: dt.datetime) -> list[Invitation]:
        """Unaccepted, unexpired invitations of ``email``, oldest first."""

    async def accept(
        self,
        invitation_id: str,
        now: dt.datetime,
        before_commit: BeforeCommit[tuple[Invitation, int]],
        *,
        user_id: int | None = None,
        email: str | None = None,
        code_digest: bytes | None = None,
        new_user_password_hash: str | None = None,
        verification_digest: bytes | None = None,
    ) -> tuple[Invitation, int]:
        """Accept a pending invitation in one transaction; returns it and the member's user id.

        ``code_digest`` must be the invitation's, always; with it either ``user_id`` with that
        user's ``email`` (must be the invitation's), or ``new_user_password_hash`` with the
        unexpired ``verification_digest`` mailed to the invited email, which creates its account.
        :class:`NotFound` when no such pending
        invitation matches, and when the code is used for an email that already has an
        account (the same answer, so the inviter learns nothing); :class:`Conflict` when
        already a member.
        """

    async def code_matches(
        self, invitation_id: str, now: dt.datetime, code_digest: bytes, verification_digest: bytes | None = None
    ) -> bool:
        """Whether a pending invitation has this code (and, if given, this unexpired verification code):
        checked before a password is hashed."""

    async def set_verification(
        self,
        invitation_id: str,
        now: dt.datetime,
        code_digest: bytes,
        verification_digest: bytes,
        expires_at: dt.datetime,
    ) -> Invitation | None:
        """Give a pending invitation whose code this is a new email verification code (replacing any);
        None when there is no such pending invitation."""


class Mailer(Protocol):
    """Sends one email (:mod:`vault.mail`: an SMTP relay, or ``cvault dev``'s directory).

    Raises :class:`vault.errors.Unavailable` when the message was not handed over.
    """

    async def send(self, to: str, subject: str, body: str) -> None: ...


class SessionRepository(Protocol):
    async def create(
        self, user_id: int, secret_digest: bytes, expires_at: dt.datetime, before_commit: BeforeCommit[Session]
    ) -> Session: ...

    async def find(self, secret_digest: bytes) -> Session | None:
        """The session whose secret hashes to ``secret_digest``, expired or not."""

    async def get(self, session_id: int) -> Session | None:
        """The session with this id, expired or revoked or not."""

    async def any_for(self, user_id: int) -> bool:
        """Whether the user ever had a session (live, expired or revoked)."""

    async def revoke(self, session_id: int, before_commit: BeforeCommit[bool]) -> None:
        """Revoke it and publish the revocation on the feed (docs/revocation.md), in one transaction.

        ``before_commit`` is told whether the session was live (a second logout changes nothing).
        """


class TokenRepository(Protocol):
    async def record(self, token: TokenRecord, before_commit: BeforeCommit[TokenRecord]) -> None: ...

    async def get(self, token_id: str) -> TokenRecord | None: ...

    async def lineage(
        self, token_id: str, *, role_in: int | None = None
    ) -> tuple[list[TokenRecord], Role | None, str | None]:
        """The token, then its parent, grandparent, ... (empty if there is no record of the token).

        With ``role_in``, also the role of the token's user in that org, read live (None if not a member),
        and that org's slug (None if there is no such org).
        """

    async def revoke(self, token_id: str, at: dt.datetime, before_commit: BeforeCommit[list[str]]) -> list[str]:
        """Mark the token and everything stripped from it (recursively) revoked and publish their ids on the
        revocation list, in one transaction; returns the ids this call revoked, the token's first (none when
        all were revoked already)."""

    async def for_user(self, user_id: int) -> list[TokenRecord]: ...


class RevocationList(Protocol):
    """The in-memory view of revoked token ids, kept current across nodes."""

    def is_revoked(self, token_id: str) -> bool: ...

    def remember(self, token_ids: Sequence[str]) -> None:
        """Ids this node just revoked (committed): refused here at once, before the next reconcile."""


class RootKeys(Protocol):
    """The authority's macaroon root keys by kid (unwrapped keys cached in memory)."""

    async def current(self) -> tuple[bytes, SigningKey]:
        """``(kid, key)`` to sign new tokens with."""

    async def get(self, kid: bytes) -> SigningKey:
        """The key for ``kid``; :class:`~vault.errors.InvalidToken` for an unknown kid."""


@dataclass(frozen=True, slots=True)
class AuthorityEvent:
    """One decision, in the shape of the audit log (DESIGN §5)."""

    action: str
    outcome: str  # "ok", "denied" or "error"
    org: int | None = None
    token_id: str | None = None
    lineage: tuple[str, ...] = ()
    actor: str | None = None
    client_addr: str | None = None
    request_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    async def record(self, event: AuthorityEvent) -> None:
        """Durably record ``event``; raise :class:`~vault.errors.Unavailable` when it cannot."""

    async def record_in(self, transaction: object, event: AuthorityEvent) -> None:
        """Append ``event`` inside ``transaction`` (a :class:`BeforeCommit`'s): it commits or rolls back with it."""


class WorkloadRepository(Protocol):
    """Workload issuers, bindings and the JWT replay counts (docs/workload-identity.md)."""

    async def add_issuer(
        self, issuer: WorkloadIssuer, created_by: int | None, before_commit: BeforeCommit[None]
    ) -> None:
        """:class:`~vault.errors.Conflict` when the org already trusts this issuer."""

    async def issuers(self, org_id: int) -> list[WorkloadIssuer]: ...

    async def issuer(self, org_id: int, issuer: str) -> WorkloadIssuer | None:
        """The org's issuer with this ``iss`` URL or this id."""

    async def remove_issuer(self, org_id: int, issuer_id: str, before_commit: BeforeCommit[list[str]]) -> list[str]:
        """Delete it and its bindings, publishing each binding's id on the revocation feed, in one
        transaction; returns the bindings' ids. :class:`~vault.errors.NotFound` when there is none."""

    async def issuer_bindings(self, org_id: int, issuer: str) -> tuple[WorkloadIssuer | None, list[WorkloadBinding]]:
        """The org's issuer with this ``iss`` URL and its bindings, in one read (the discharger's)."""

    async def bind(self, binding: WorkloadBinding, created_by: int | None, before_commit: BeforeCommit[None]) -> None:
        """:class:`~vault.errors.Conflict` when the name is taken in the org."""

    async def bindings(self, org_id: int, issuer_id: str | None = None) -> list[WorkloadBinding]: ...

    async def binding(self, org_id: int, name_or_id: str) -> WorkloadBinding | None: ...

    async def unbind(self, org_id: int, name_or_id: str, before_commit: BeforeCommit[str]) -> str:
        """Delete the binding and publish its id on the revocation feed, in one transaction; returns the id.
        :class:`~vault.errors.NotFound` when there is none."""

    async def count_use(self, digest: bytes, expires_at: dt.datetime, max_uses: int) -> int | None:
        """Count one more discharge for the JWT ``digest`` names; its count, or ``None`` past ``max_uses``.

        Remembered until ``expires_at`` (the JWT's ``exp``), atomically across nodes.
        """
