"""The authority's keys at rest: macaroon root keys by kid and its three X25519 key rings.

All of them are rows of ``authority.wrapped_keys`` (wrapped under the KEK by
:class:`~vault.storage.keys.PgKeyRepository`, which also caches unwrapped keys in
memory, so verification reads a key from the database at most once). Keys are
created on first start; an advisory lock makes concurrent first starts of
several nodes agree on one key per purpose.
"""

from __future__ import annotations

import hashlib

import asyncpg

from vault.errors import InvalidToken
from vault.macaroon import SigningKey

from .key_watch import SharedReload
from .keys import PgKeyRepository
from .pool import database_errors

__all__ = [
    "ISSUER_PURPOSE",
    "LOGIN_PURPOSE",
    "ORG_PURPOSE",
    "ROOT_PURPOSE",
    "RootKeyRing",
    "ensure_key",
    "purpose_lock",
]

ROOT_PURPOSE = "authority-root"
LOGIN_PURPOSE = "authority-login-x25519"
ORG_PURPOSE = "authority-org-x25519"
ISSUER_PURPOSE = "authority-issuer-x25519"
_KID_SIZE = 8


def purpose_lock(purpose: str) -> int:
    """The advisory lock that serialises creating keys of ``purpose`` (first starts, rotations)."""
    return int.from_bytes(hashlib.sha256(b"cvault.key:" + purpose.encode()).digest()[:8], "big", signed=True)


async def ensure_key(pool: asyncpg.Pool, keys: PgKeyRepository, purpose: str) -> tuple[int, bytes]:
    """The newest unretired key of ``purpose``, generated if there is none."""
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", purpose_lock(purpose))
            key_id = await conn.fetchval(
                "SELECT id FROM authority.wrapped_keys WHERE purpose = $1 AND retired_at IS NULL "
                "ORDER BY id DESC LIMIT 1",
                purpose,
            )
            if key_id is None:
                return await keys.generate(purpose, conn=conn)
            return key_id, await keys.get(key_id, purpose, conn=conn)


def kid_for(key_id: int) -> bytes:
    return key_id.to_bytes(_KID_SIZE, "big")


_ROOT_IDS = "SELECT id FROM authority.wrapped_keys WHERE purpose = $1 AND retired_at IS NULL ORDER BY id"


class RootKeyRing:
    """Implements :class:`vault.authority.interfaces.RootKeys`: kid = the key's row id, 8 bytes big-endian.

    Every unretired root key is in memory: loaded at start, reloaded when keys change
    (the :class:`~vault.storage.key_watch.KeyWatcher` calls :meth:`reload`), so
    verifying never reads a key from the database. The newest mints.
    """

    def __init__(self, pool: asyncpg.Pool, keys: PgKeyRepository, loaded: dict[int, bytes]) -> None:
        self._pool = pool
        self._keys = keys
        self._by_kid: dict[bytes, SigningKey] = {}
        self._retired: set[bytes] = set()
        self._current = (b"", SigningKey(b""))
        self._install(loaded)
        self._miss = SharedReload(self.reload)

    def __repr__(self) -> str:
        return f"RootKeyRing(current_kid={self._current[0].hex()}, kids={len(self._by_kid)})"

    def _install(self, loaded: dict[int, bytes]) -> None:
        newest = max(loaded)
        by_kid = {kid_for(key_id): SigningKey(key) for key_id, key in loaded.items()}
        # Kids this node verified with and no longer may: refused at once, not after a reload (a handful at most).
        self._retired |= self._by_kid.keys() - by_kid.keys()
        self._by_kid = by_kid
        self._current = (kid_for(newest), SigningKey(loaded[newest]))

    @classmethod
    async def open(cls, pool: asyncpg.Pool, keys: PgKeyRepository) -> RootKeyRing:
        key_id, key = await ensure_key(pool, keys, ROOT_PURPOSE)
        ring = cls(pool, keys, {key_id: key})
        await ring.reload()
        return ring

    async def reload(self) -> None:
        """The unretired root keys from the database; retired ones stop verifying here and now."""
        with database_errors():
            ids = [row["id"] for row in await self._pool.fetch(_ROOT_IDS, ROOT_PURPOSE)]
        if not ids:
            return  # retire-tokens never retires the minting key; keep minting with it rather than with nothing
        loaded = {}
        for key_id in ids:
            known = self._by_kid.get(kid_for(key_id))
            loaded[key_id] = known if known is not None else await self._keys.get(key_id, ROOT_PURPOSE)
        self._install(loaded)

    async def current(self) -> tuple[bytes, SigningKey]:
        return self._current

    async def get(self, kid: bytes) -> SigningKey:
        # The kid is read before any signature can be checked: only an unknown one of the
        # right shape waits for the shared reload (a key minted on a node that heard of a
        # rotation first); it never queries that id.
        if len(kid) != _KID_SIZE or int.from_bytes(kid, "big") >= 1 << 63:
            raise InvalidToken()
        key = self._by_kid.get(kid)
        if key is None and kid not in self._retired:
            await self._miss()
            key = self._by_kid.get(kid)
        if key is None:
            raise InvalidToken()
        return key
