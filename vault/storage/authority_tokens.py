"""The authority's record of every token it issued, with lineage (``authority.tokens``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from vault.authority.records import TokenKind, TokenRecord
from vault.authority.roles import Role
from vault.errors import Conflict, NotFound
from vault.types import BeforeCommit

from .change import change_transaction
from .pool import database_errors
from .revocations import append_token_revocations

__all__ = ["PgTokenRepository"]

_COLUMNS = "id, user_id, org_id, kind, parent, mask, created_at, expires_at, revoked_at"
# Lineage is short (a permission token, its service tokens); the depth cap only
# guards the recursion against a corrupted cycle.
_MAX_DEPTH = 64


# The token itself (depth 0), then its parent, grandparent, ...: one round trip for what every
# request authorised by an authority token checks.
_LINEAGE = (
    "WITH RECURSIVE up AS ("  # noqa: S608 (fixed column list)
    f" SELECT {_COLUMNS}, 0 AS depth FROM authority.tokens WHERE id = $1"
    " UNION ALL"
    " SELECT t.id, t.user_id, t.org_id, t.kind, t.parent, t.mask, t.created_at, t.expires_at,"
    "  t.revoked_at, up.depth + 1 FROM authority.tokens t JOIN up ON t.id = up.parent"
    "  WHERE up.depth < $2"
    f") SELECT {_COLUMNS}, CASE WHEN depth = 0 AND $3::bigint IS NOT NULL THEN"
    # The token's user's role in org $3, read live in the same round trip (an org discharge needs it).
    "  (SELECT m.role FROM authority.memberships m WHERE m.org_id = $3 AND m.user_id = up.user_id) END AS role,"
    # And the org's slug, which the org discharge attests (the store enrols the org under it).
    " CASE WHEN depth = 0 AND $3::bigint IS NOT NULL THEN"
    "  (SELECT o.slug FROM authority.orgs o WHERE o.id = $3) END AS org_slug"
    " FROM up ORDER BY depth"
)


# The token and everything stripped from it (recursively), the token first.
_DESCENDANTS = (
    "WITH RECURSIVE down AS ("
    " SELECT id, 0 AS depth FROM authority.tokens WHERE id = $1"
    " UNION ALL"
    " SELECT t.id, down.depth + 1 FROM authority.tokens t JOIN down ON t.parent = down.id"
    "  WHERE down.depth < $2"
    ") SELECT id FROM down ORDER BY depth, id"
)


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        str(row["id"]),
        row["user_id"],
        row["org_id"],
        TokenKind(row["kind"]),
        str(row["parent"]) if row["parent"] is not None else None,
        row["mask"],
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
    )


class PgTokenRepository:
    """Implements :class:`vault.authority.interfaces.TokenRepository`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, token: TokenRecord, before_commit: BeforeCommit[TokenRecord]) -> None:
        async with change_transaction(self._pool) as conn:
            try:
                await conn.execute(
                    f"INSERT INTO authority.tokens ({_COLUMNS}, root_key_id) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    uuid.UUID(token.id),
                    token.user_id,
                    token.org_id,
                    token.kind.value,
                    uuid.UUID(token.parent) if token.parent else None,
                    token.mask,
                    token.created_at,
                    token.expires_at,
                    token.revoked_at,
                    token.root_key_id,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"token {token.id} is already recorded") from None
            await before_commit(token, conn)

    async def get(self, token_id: str) -> TokenRecord | None:
        with database_errors():
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM authority.tokens WHERE id = $1",  # noqa: S608
                uuid.UUID(token_id),
            )
        return _record(row) if row else None

    async def lineage(
        self, token_id: str, *, role_in: int | None = None
    ) -> tuple[list[TokenRecord], Role | None, str | None]:
        with database_errors():
            rows = await self._pool.fetch(_LINEAGE, uuid.UUID(token_id), _MAX_DEPTH, role_in)
        role = rows[0]["role"] if rows else None
        slug = rows[0]["org_slug"] if rows else None
        return [_record(r) for r in rows], Role(role) if role is not None else None, slug

    async def revoke(self, token_id: str, at: dt.datetime, before_commit: BeforeCommit[list[str]]) -> list[str]:
        async with change_transaction(self._pool) as conn:
            rows = await conn.fetch(_DESCENDANTS, uuid.UUID(token_id), _MAX_DEPTH)
            if not rows:
                raise NotFound(f"token {token_id} not found")
            ids = [r["id"] for r in rows]
            newly = {
                r["id"]
                for r in await conn.fetch(
                    "UPDATE authority.tokens SET revoked_at = $2 WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL "
                    "RETURNING id",
                    ids,
                    at,
                )
            }
            # Only what this call revoked: revoking a revoked token again changes nothing, and says so.
            revoked = [str(i) for i in ids if i in newly]
            # The list every node and store follows, in the same transaction: a token marked revoked here is
            # on it, and the audit event appended by before_commit says so exactly when both are.
            await append_token_revocations(conn, "authority", revoked)
            await before_commit(revoked, conn)
        return revoked

    async def for_user(self, user_id: int) -> list[TokenRecord]:
        with database_errors():
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM authority.tokens WHERE user_id = $1 ORDER BY created_at, id",  # noqa: S608
                user_id,
            )
        return [_record(r) for r in rows]
