"""Invitations into organizations (schema ``authority``, table ``invitations``)."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

import asyncpg

from vault.authority.invitations import NOT_FOUND
from vault.authority.records import Invitation
from vault.authority.roles import Role
from vault.errors import Conflict, NotFound
from vault.types import BeforeCommit

from .change import change_transaction
from .pool import database_errors

__all__ = ["PgInvitationRepository"]

_SELECT = (
    "SELECT i.id, i.org_id, o.slug, i.email, i.role, i.expires_at, i.code_digest,"
    " i.verification_digest, i.verification_expires_at"
    " FROM authority.invitations i JOIN authority.orgs o ON o.id = i.org_id"
)


def _invitation(row: Any) -> Invitation:
    return Invitation(str(row["id"]), row["org_id"], row["slug"], row["email"], Role(row["role"]), row["expires_at"])


def _verified(row: Any, now: dt.datetime, verification_digest: bytes) -> bool:
    stored = row["verification_digest"]
    return (
        stored is not None
        and row["verification_expires_at"] > now
        and hmac.compare_digest(bytes(stored), verification_digest)
    )


class PgInvitationRepository:
    """Implements :class:`vault.authority.interfaces.InvitationRepository`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

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
    ) -> Invitation:
        async with change_transaction(self._pool) as conn:
            slug = await conn.fetchval(
                "WITH new AS (INSERT INTO authority.invitations (id, org_id, email, role, invited_by, code_digest,"
                " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING org_id)"
                " SELECT o.slug FROM new JOIN authority.orgs o ON o.id = new.org_id",
                invitation_id,
                org_id,
                email,
                role.value,
                invited_by,
                code_digest,
                expires_at,
            )
            invitation = Invitation(invitation_id, org_id, slug, email, role, expires_at)
            await before_commit(invitation, conn)
        return invitation

    async def code_matches(
        self, invitation_id: str, now: dt.datetime, code_digest: bytes, verification_digest: bytes | None = None
    ) -> bool:
        with database_errors():
            row = await self._pool.fetchrow(
                _SELECT + " WHERE i.id = $1 AND i.accepted_at IS NULL AND i.expires_at > $2",
                invitation_id,
                now,
            )
        return (
            row is not None
            and hmac.compare_digest(bytes(row["code_digest"]), code_digest)
            and (verification_digest is None or _verified(row, now, verification_digest))
        )

    async def set_verification(
        self,
        invitation_id: str,
        now: dt.datetime,
        code_digest: bytes,
        verification_digest: bytes,
        expires_at: dt.datetime,
    ) -> Invitation | None:
        async with change_transaction(self._pool) as conn:
            row = await conn.fetchrow(
                _SELECT + " WHERE i.id = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 FOR UPDATE OF i",
                invitation_id,
                now,
            )
            if row is None or not hmac.compare_digest(bytes(row["code_digest"]), code_digest):
                return None
            await conn.execute(
                "UPDATE authority.invitations SET verification_digest = $2, verification_expires_at = $3 WHERE id = $1",
                invitation_id,
                verification_digest,
                expires_at,
            )
        return _invitation(row)

    async def pending_for(self, email: str, now: dt.datetime) -> list[Invitation]:
        with database_errors():
            rows = await self._pool.fetch(
                _SELECT + " WHERE i.email = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 ORDER BY i.created_at",
                email,
                now,
            )
        return [_invitation(r) for r in rows]

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
        async with change_transaction(self._pool) as conn:
            row = await conn.fetchrow(
                _SELECT + " WHERE i.id = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 FOR UPDATE OF i",
                invitation_id,
                now,
            )
            # The code is required on both paths: it is what the invitee got from the inviter, so an account
            # that merely has the invited email (one an inviter created with their own code) accepts nothing.
            if (
                row is None
                or (user_id is not None and row["email"] != email)
                or code_digest is None
                or not hmac.compare_digest(bytes(row["code_digest"]), code_digest)
                # A new account needs the code mailed to the invited email: proof its holder reads that mailbox.
                or (user_id is None and (verification_digest is None or not _verified(row, now, verification_digest)))
            ):
                raise NotFound(NOT_FOUND)
            if user_id is None:
                try:
                    async with conn.transaction():
                        user_id = await conn.fetchval(
                            "INSERT INTO authority.users (email, password_hash) VALUES ($1, $2) RETURNING id",
                            row["email"],
                            new_user_password_hash,
                        )
                except asyncpg.UniqueViolationError:
                    # The same answer as a wrong code: the inviter holds the code, and must not learn from it
                    # whether the email is registered.
                    raise NotFound(NOT_FOUND) from None
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO authority.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
                        row["org_id"],
                        user_id,
                        row["role"],
                    )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"you are already a member of {row['slug']}; ask an owner to change your role") from None
            await conn.execute(
                "UPDATE authority.invitations SET accepted_at = $2, accepted_by = $3 WHERE id = $1",
                invitation_id,
                now,
                user_id,
            )
            accepted = _invitation(row), user_id
            await before_commit(accepted, conn)
        return accepted
