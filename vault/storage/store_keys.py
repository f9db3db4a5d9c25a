"""The store's signing keys (org root keys, the enrolment key) and its X25519 ticket key pair.

All are rows of ``store.wrapped_keys`` (see :mod:`vault.storage.keys`). Signing
keys are cached in memory by key id once read, so verifying a request reads no
key from the database. The enrolment key and the first ticket pair are
created at first start; two nodes starting at once may both create one, and
both then use the oldest enrolment key (so they agree) and seal with the newest
ticket pair (every unretired one opens; ``cvault keys rotate-tickets`` adds more).
"""

from __future__ import annotations

from typing import Any

from vault.crypto.keyring import generate_key
from vault.crypto.ticket_keys import TicketKeyPair, TicketKeyRing
from vault.errors import NotFound
from vault.macaroon import SigningKey
from vault.store.models import RootKey

from .key_watch import RELOAD_INTERVAL, SharedReload
from .keys import PgKeyRepository
from .pool import Pool, database_errors

__all__ = [
    "DATA_KEY_PURPOSE",
    "ENROLL_KEY_PURPOSE",
    "RELOAD_INTERVAL",
    "ROOT_KEY_PURPOSE",
    "TICKET_KEY_PURPOSE",
    "StoreKeyDirectory",
]

ROOT_KEY_PURPOSE = "store-root"
ENROLL_KEY_PURPOSE = "store-enroll"
TICKET_KEY_PURPOSE = "store-ticket"
DATA_KEY_PURPOSE = "store-dek"

# Every unretired root key of every org, and whether it is the one the org mints with.
_ROOT_KEYS = (
    "SELECT r.key_id, r.org_id, o.root_key_id = r.key_id AS minting FROM store.org_root_keys AS r "
    "JOIN store.orgs AS o ON o.id = r.org_id JOIN store.wrapped_keys AS k ON k.id = r.key_id "
    "WHERE k.retired_at IS NULL"
)
_ROOT_OF_ORG = "SELECT root_key_id FROM store.orgs WHERE id = $1"


async def _single_key(pool: Pool, keys: PgKeyRepository, purpose: str, make: Any) -> tuple[int, bytes]:
    ids = await keys.active_ids(purpose)
    if not ids:
        # Store workers starting together on a new database: one creates the key while the others wait for its
        # commit and find it. Two keys would give the workers different enrolment keys and idempotency hashes
        # (a retried write answered 422 by the other worker), since key ids follow allocation, not commit, order.
        with database_errors():
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"cvault.single_key.{purpose}")
                ids = await keys.active_ids(purpose, conn=conn)
                if not ids:
                    await keys.add(purpose, make(), conn=conn)
                    ids = await keys.active_ids(purpose, conn=conn)
    return ids[0], await keys.get(ids[0], purpose)


class StoreKeyDirectory:
    """Implements :class:`vault.store.interfaces.KeyDirectory` over ``store.org_root_keys`` and the key repository.

    Every unretired root key of every org is in memory (loaded at start, reloaded by
    the :class:`~vault.storage.key_watch.KeyWatcher` when keys change); ``by_org``
    holds the one each org mints with.
    """

    def __init__(self, pool: Pool, keys: PgKeyRepository, enroll_key: RootKey, ticket_ring: TicketKeyRing) -> None:
        self._pool = pool
        self._keys = keys
        self.enroll_key = enroll_key
        self.ticket_ring = ticket_ring
        self._by_id: dict[int, RootKey] = {enroll_key.key_id: enroll_key}
        self._by_org: dict[int, RootKey] = {}
        self._miss = SharedReload(self.reload)

    def __repr__(self) -> str:
        return f"StoreKeyDirectory(cached={len(self._by_id)})"

    @property
    def reloads(self) -> int:
        """Reloads run because of unknown key ids."""
        return self._miss.runs

    @classmethod
    async def open(cls, pool: Pool, keys: PgKeyRepository) -> StoreKeyDirectory:
        """Create the single-row keys if needed and load every org's root keys into memory."""
        enroll_id, enroll = await _single_key(pool, keys, ENROLL_KEY_PURPOSE, generate_key)
        await _single_key(pool, keys, TICKET_KEY_PURPOSE, lambda: TicketKeyPair.generate().private_key_bytes)
        directory = cls(
            pool, keys, RootKey(enroll_id, None, SigningKey(enroll)), await keys.ticket_ring(TICKET_KEY_PURPOSE)
        )
        await directory.reload()
        return directory

    async def reload(self) -> None:
        """Every unretired org root key and ticket pair from the database; retired ones drop out of memory."""
        with database_errors():
            rows = await self._pool.fetch(_ROOT_KEYS)
        self.ticket_ring = await self._keys.ticket_ring(TICKET_KEY_PURPOSE)
        by_id: dict[int, RootKey] = {self.enroll_key.key_id: self.enroll_key}
        by_org: dict[int, RootKey] = {}
        for row in rows:
            root = self._by_id.get(row["key_id"])
            if root is None:
                try:
                    root = RootKey(
                        row["key_id"], row["org_id"], SigningKey(await self._keys.get(row["key_id"], ROOT_KEY_PURPOSE))
                    )
                except NotFound:
                    continue
            by_id[root.key_id] = root
            if row["minting"]:
                by_org[row["org_id"]] = root
        self._by_id, self._by_org = by_id, by_org

    def remember(self, root: RootKey) -> None:
        """Cache a root key just created (by enrolment on this node)."""
        assert root.org_id is not None
        self._by_id[root.key_id] = root
        self._by_org[root.org_id] = root

    def cached(self, key_id: int) -> RootKey | None:
        return self._by_id.get(key_id)

    async def load(self, key_id: int) -> RootKey | None:
        """The root key with this id, if an org has it unretired; unknown ids wait for a shared reload.

        Key ids arrive before any signature can be checked, so they are untrusted: a
        miss does not query that id but waits for one reload, shared by every
        concurrent miss and run at most once per :data:`RELOAD_INTERVAL`. Made-up kids
        thus cost at most one query a second; a key made on another node (an org
        enrolled there, a rotation this node has not heard of yet) is found after at
        most that long.
        """
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        await self._miss()
        return self._by_id.get(key_id)

    async def root_key_for(self, org_id: int) -> RootKey | None:
        """The key ``org_id``'s new tokens are signed with."""
        found = self._by_org.get(org_id)
        if found is not None:
            return found
        with database_errors():
            key_id = await self._pool.fetchval(_ROOT_OF_ORG, org_id)
        if key_id is None:
            return None
        root = RootKey(key_id, org_id, SigningKey(await self._keys.get(key_id, ROOT_KEY_PURPOSE)))
        self.remember(root)
        return root
