"""Login sessions of the authority: stored as the SHA-256 of their secret only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from vault.authority.records import Session
from vault.types import BeforeCommit

from .change import change_transaction
from .pool import database_errors
from .revocations import append_revocation

__all__ = ["PgSessionRepository"]


def _session(row: Any) -> Session:
    return Session(row["id"], row["user_id"], row["expires_at"], row["revoked_at"])


class PgSessionRepository:
    """Implements :class:`vault.authority.interfaces.SessionRepository`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, user_id: int, secret_digest: bytes, expires_at: dt.datetime, before_commit: BeforeCommit[Session]
    ) -> Session:
        async with change_transaction(self._pool) as conn:
            session = _session(
                await conn.fetchrow(
                    "INSERT INTO authority.sessions (user_id, secret_digest, expires_at) VALUES ($1, $2, $3) "
                    "RETURNING id, user_id, expires_at, revoked_at",
                    user_id,
                    secret_digest,
                    expires_at,
                )
            )
            await before_commit(session, conn)
        return session

    async def find(self, secret_digest: bytes) -> Session | None:
        # An equality lookup through the unique index: the secret's digest is the key,
        # so there is no comparison of secret material in Python to time.
        with database_errors():
            row = await self._pool.fetchrow(
                "SELECT id, user_id, expires_at, revoked_at FROM authority.sessions WHERE secret_digest = $1",
                secret_digest,
            )
        return _session(row) if row else None

    async def any_for(self, user_id: int) -> bool:
        with database_errors():
            found = await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM authority.sessions WHERE user_id = $1)", user_id
            )
        return bool(found)

    async def get(self, session_id: int) -> Session | None:
        with database_errors():
            row = await self._pool.fetchrow(
                "SELECT id, user_id, expires_at, revoked_at FROM authority.sessions WHERE id = $1", session_id
            )
        return _session(row) if row else None

    async def revoke(self, session_id: int, before_commit: BeforeCommit[bool]) -> None:
        """Revoke the session and publish that on the revocation feed, in one transaction."""
        async with change_transaction(self._pool) as conn:
            user_id = await conn.fetchval(
                "UPDATE authority.sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
                "RETURNING user_id",
                session_id,
            )
            if user_id is not None:
                await append_revocation(conn, "authority", "session", user_id=user_id, session_id=session_id)
            await before_commit(user_id is not None, conn)
