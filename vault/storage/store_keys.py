"""The store's signing keys (org root keys, the enrolment key) and its X25519 ticket key pair.

All are rows of ``store.wrapped_keys`` (see :mod:`vault.storage.keys`). Signing
keys are cached in memory by key id once read, so verifying a request reads no
key from the database. The single-row keys (enrolment, ticket pair) are
created at first start; two nodes starting at once may both create one, and
both then use the oldest, so they agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from vault.crypto.keyring import generate_key
from vault.crypto.ticket_keys import TicketKeyPair
from vault.errors import NotFound
from vault.store.models import RootKey

from .keys import KeyRepository
from .pool import database_errors

RELOAD_INTERVAL = 1.0
"""Seconds between reloads of the org table triggered by unknown key ids."""

__all__ = ["DATA_KEY_PURPOSE", "ENROLL_KEY_PURPOSE", "ROOT_KEY_PURPOSE", "TICKET_KEY_PURPOSE", "StoreKeyDirectory"]

ROOT_KEY_PURPOSE = "store-root"
ENROLL_KEY_PURPOSE = "store-enroll"
TICKET_KEY_PURPOSE = "store-ticket"
DATA_KEY_PURPOSE = "store-dek"

_ALL_ORGS = "SELECT id, root_key_id FROM store.orgs"
_ROOT_OF_ORG = "SELECT root_key_id FROM store.orgs WHERE id = $1"


async def _single_key(keys: KeyRepository, purpose: str, make: Any) -> tuple[int, bytes]:
    ids = await keys.active_ids(purpose)
    if not ids:
        await keys.add(purpose, make())
        ids = await keys.active_ids(purpose)
    return ids[0], await keys.get(ids[0], purpose)


class StoreKeyDirectory:
    """Implements :class:`vault.store.interfaces.KeyDirectory` over ``store.orgs`` and the key repository."""

    def __init__(self, pool: Any, keys: KeyRepository, enroll_key: RootKey, ticket_keys: TicketKeyPair) -> None:
        self._pool = pool
        self._keys = keys
        self.enroll_key = enroll_key
        self.ticket_keys = ticket_keys
        self._by_id: dict[int, RootKey] = {enroll_key.key_id: enroll_key}
        self._by_org: dict[int, RootKey] = {}
        self._reload: asyncio.Future[None] | None = None
        self._last_reload = float("-inf")
        self.reloads = 0

    def __repr__(self) -> str:
        return f"StoreKeyDirectory(cached={len(self._by_id)})"

    @classmethod
    async def open(cls, pool: Any, keys: KeyRepository) -> StoreKeyDirectory:
        """Create the single-row keys if needed and load every org's root key into memory."""
        enroll_id, enroll = await _single_key(keys, ENROLL_KEY_PURPOSE, generate_key)
        _ticket_id, private = await _single_key(
            keys, TICKET_KEY_PURPOSE, lambda: TicketKeyPair.generate().private_key_bytes
        )
        directory = cls(pool, keys, RootKey(enroll_id, None, enroll), TicketKeyPair.from_private_key_bytes(private))
        with database_errors():
            rows = await pool.fetch(_ALL_ORGS)
        for row in rows:
            await directory._remember(row["id"], row["root_key_id"])
        return directory

    async def _remember(self, org_id: int, key_id: int) -> RootKey:
        root = RootKey(key_id, org_id, await self._keys.get(key_id, ROOT_KEY_PURPOSE))
        self._by_id[key_id] = root
        self._by_org[org_id] = root
        return root

    def remember(self, root: RootKey) -> None:
        """Cache a root key just created (by enrolment on this node)."""
        assert root.org_id is not None
        self._by_id[root.key_id] = root
        self._by_org[root.org_id] = root

    def cached(self, key_id: int) -> RootKey | None:
        return self._by_id.get(key_id)

    async def load(self, key_id: int) -> RootKey | None:
        """The root key with this id, if an org has it; unknown ids wait for a shared reload.

        Key ids arrive before any signature can be checked, so they are untrusted: a
        miss does not query that id but waits for one reload of the org table, shared
        by every concurrent miss and run at most once per :data:`RELOAD_INTERVAL`. Made-up
        kids thus cost at most one query a second; an org enrolled through another node
        is found after at most that long.
        """
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        if self._reload is None or self._reload.done():
            self._reload = asyncio.ensure_future(self._reload_orgs())
        await asyncio.shield(self._reload)
        return self._by_id.get(key_id)

    async def _reload_orgs(self) -> None:
        wait = self._last_reload + RELOAD_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_reload = time.monotonic()
        self.reloads += 1
        with database_errors():
            rows = await self._pool.fetch(_ALL_ORGS)
        for row in rows:
            if row["root_key_id"] not in self._by_id:
                with contextlib.suppress(NotFound):
                    await self._remember(row["id"], row["root_key_id"])

    async def root_key_for(self, org_id: int) -> RootKey | None:
        found = self._by_org.get(org_id)
        if found is not None:
            return found
        with database_errors():
            key_id = await self._pool.fetchval(_ROOT_OF_ORG, org_id)
        return None if key_id is None else await self._remember(org_id, key_id)
