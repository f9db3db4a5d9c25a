"""Enrolled orgs and the store tokens minted for them (``store.orgs``, ``store.tokens``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vault.errors import NotFound
from vault.macaroon import SigningKey
from vault.store.interfaces import BeforeCommit
from vault.store.models import OrgRecord, RootKey, TokenRecord

from .change import change_transaction
from .key_watch import announce_key_change
from .keys import PgKeyRepository
from .pool import Connection, Pool
from .store_keys import ROOT_KEY_PURPOSE

__all__ = ["PgOrgRepository"]

_LOCK_ORG = "SELECT id, slug, root_key_id FROM store.orgs WHERE id = $1 FOR UPDATE"
_INSERT_ORG = (
    "INSERT INTO store.orgs (id, slug, root_key_id) VALUES ($1, $2, $3) "
    "ON CONFLICT (id) DO NOTHING RETURNING id, slug, root_key_id"
)
_SET_SLUG = "UPDATE store.orgs SET slug = $2 WHERE id = $1"
_DROP_KEY = "DELETE FROM store.wrapped_keys WHERE id = $1"
_INSERT_TOKEN = (
    "INSERT INTO store.tokens (id, org_id, kind, mask, vaults, secrets, parent, actor, expires_at, root_key_id) "  # noqa: S105
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
# The token and everything minted from it, however deep.
_REVOKE = """
WITH RECURSIVE tree AS (
    SELECT id FROM store.tokens WHERE org_id = $1 AND id = $2
    UNION
    SELECT t.id FROM store.tokens t JOIN tree ON t.parent = tree.id
)
UPDATE store.tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id IN (SELECT id FROM tree)
RETURNING id
"""


def _org(row: Any) -> OrgRecord:
    return OrgRecord(row["id"], row["slug"], row["root_key_id"])


class PgOrgRepository:
    """Implements :class:`vault.store.interfaces.OrgRepository`."""

    def __init__(self, pool: Pool, keys: PgKeyRepository) -> None:
        self._pool = pool
        self._keys = keys

    async def enroll(
        self,
        org_id: int,
        slug: str,
        token: Callable[[RootKey], TokenRecord],
        before_commit: BeforeCommit[TokenRecord],
    ) -> tuple[OrgRecord, RootKey]:
        async with change_transaction(self._pool) as conn:
            row = await conn.fetchrow(_LOCK_ORG, org_id)
            if row is None:
                key_id, _key = await self._keys.generate(ROOT_KEY_PURPOSE, conn=conn)
                row = await conn.fetchrow(_INSERT_ORG, org_id, slug, key_id)
                if row is None:
                    # Another node enrolled the org first; use its key, drop ours.
                    await conn.execute(_DROP_KEY, key_id)
                    row = await conn.fetchrow(_LOCK_ORG, org_id)
                # Every node's key directory and org table reload once this commits (a new key, a new slug).
                await announce_key_change(conn, "store")
            elif row["slug"] != slug:
                await conn.execute(_SET_SLUG, org_id, slug)
                await announce_key_change(conn, "store")
            org = OrgRecord(org_id, slug, row["root_key_id"])
            root = RootKey(
                org.root_key_id, org_id, SigningKey(await self._keys.get(org.root_key_id, ROOT_KEY_PURPOSE, conn=conn))
            )
            record = token(root)
            await self._insert_token(conn, record)
            await before_commit(record, conn)
        return org, root

    async def _insert_token(self, conn: Connection, r: TokenRecord) -> None:
        await conn.execute(
            _INSERT_TOKEN,
            r.id,
            r.org_id,
            r.kind,
            r.mask,
            r.vaults,
            r.secrets,
            r.parent,
            r.actor,
            r.expires_at,
            r.root_key_id,
        )

    async def record_token(self, record: TokenRecord, before_commit: BeforeCommit[TokenRecord]) -> None:
        async with change_transaction(self._pool) as conn:
            await self._insert_token(conn, record)
            await before_commit(record, conn)

    async def revoke_token(self, org_id: int, token_id: str, before_commit: BeforeCommit[list[str]]) -> list[str]:
        async with change_transaction(self._pool) as conn:
            rows = await conn.fetch(_REVOKE, org_id, token_id)
            if not rows:
                raise NotFound(f"store token {token_id} not found in organization {org_id}")
            ids = sorted(str(r["id"]) for r in rows)
            await before_commit(ids, conn)
        return ids
