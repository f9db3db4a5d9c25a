"""The authority's keys at rest: macaroon root keys by kid and its three X25519 key pairs.

All of them are rows of ``authority.wrapped_keys`` (wrapped under the KEK by
:class:`~vault.storage.keys.KeyRepository`, which also caches unwrapped keys in
memory, so verification reads a key from the database at most once). Keys are
created on first start; an advisory lock makes concurrent first starts of
several nodes agree on one key per purpose.
"""

from __future__ import annotations

import hashlib

import asyncpg

from vault.crypto.ticket_keys import TicketKeyPair
from vault.errors import DecryptionError, InvalidToken, NotFound

from .keys import KeyRepository
from .pool import database_errors

__all__ = [
    "ISSUER_PURPOSE",
    "LOGIN_PURPOSE",
    "ORG_PURPOSE",
    "ROOT_PURPOSE",
    "RootKeyRing",
    "ensure_key",
    "load_ticket_key_pair",
]

ROOT_PURPOSE = "authority-root"
LOGIN_PURPOSE = "authority-login-x25519"
ORG_PURPOSE = "authority-org-x25519"
ISSUER_PURPOSE = "authority-issuer-x25519"
_KID_SIZE = 8


def _lock_key(purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(b"cvault.key:" + purpose.encode()).digest()[:8], "big", signed=True)


async def ensure_key(pool: asyncpg.Pool, keys: KeyRepository, purpose: str) -> tuple[int, bytes]:
    """The newest unretired key of ``purpose``, generated if there is none."""
    with database_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(purpose))
            key_id = await conn.fetchval(
                "SELECT id FROM authority.wrapped_keys WHERE purpose = $1 AND retired_at IS NULL "
                "ORDER BY id DESC LIMIT 1",
                purpose,
            )
            if key_id is None:
                return await keys.generate(purpose, conn=conn)
            return key_id, await keys.get(key_id, purpose, conn=conn)


async def load_ticket_key_pair(pool: asyncpg.Pool, keys: KeyRepository, purpose: str) -> TicketKeyPair:
    _, private = await ensure_key(pool, keys, purpose)
    return TicketKeyPair.from_private_key_bytes(private)


def kid_for(key_id: int) -> bytes:
    return key_id.to_bytes(_KID_SIZE, "big")


class RootKeyRing:
    """Implements :class:`vault.authority.interfaces.RootKeys`: kid = the key's row id, 8 bytes big-endian."""

    def __init__(self, keys: KeyRepository, current_id: int, current_key: bytes) -> None:
        self._keys = keys
        self._current = (kid_for(current_id), current_key)

    def __repr__(self) -> str:
        return f"RootKeyRing(current_kid={self._current[0].hex()})"

    @classmethod
    async def open(cls, pool: asyncpg.Pool, keys: KeyRepository) -> RootKeyRing:
        key_id, key = await ensure_key(pool, keys, ROOT_PURPOSE)
        return cls(keys, key_id, key)

    async def current(self) -> tuple[bytes, bytes]:
        return self._current

    async def get(self, kid: bytes) -> bytes:
        # The kid is read before any signature can be checked: only row ids a bigint can hold reach the database.
        key_id = int.from_bytes(kid, "big")
        if len(kid) != _KID_SIZE or key_id >= 1 << 63:
            raise InvalidToken()
        if kid == self._current[0]:
            return self._current[1]
        try:
            return await self._keys.get(key_id, ROOT_PURPOSE)
        except (NotFound, DecryptionError):
            raise InvalidToken() from None
