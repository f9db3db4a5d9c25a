"""Keys at rest: the KEK keyring of a schema and the ``wrapped_keys`` repository.

Every key cvault keeps (data keys of secret versions, token root keys, X25519
private keys) is a row of ``<schema>.wrapped_keys``, wrapped under a KEK of
``<schema>.kek_versions``, which is wrapped under the master key. Unwrapped
keys are cached in memory, so a request does not read the key table.

Writers only wrap under a KEK version that is still ``active`` in the database,
checked in the same statement with a ``FOR SHARE`` row lock (see
``_INSERT``). That lock makes :func:`vault.storage.key_rotation.rotate_keys`
wait for in-flight writers before it stops wrapping under the old version, so
after rotation no row can be left behind on it.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

import asyncpg

from vault.crypto.keyring import Keyring, MasterKey, MasterKeys, WrappedKey, generate_key, master_keys, wrap_kek
from vault.crypto.ticket_keys import MAX_TICKET_KEYS, TicketKeyPair, TicketKeyRing
from vault.errors import ConfigError, DecryptionError, NotFound, Unavailable

from .pool import Connection, connection_of, database_errors
from .schema import check_schema

__all__ = ["PgKeyRepository", "load_keyring"]

_PURPOSE = re.compile(r"[a-z0-9][a-z0-9:._-]{0,63}")


@dataclass(frozen=True)
class _Queries:
    kek_versions: str
    insert_first_kek: str
    next_id: str
    insert: str
    select: str
    retire: str
    active_ids: str


@cache
def _queries(schema: str) -> _Queries:
    # The schema comes from a closed set (check_schema), so building SQL from it is safe.
    s = check_schema(schema)
    return _Queries(
        kek_versions=f"SELECT version, wrapped, state FROM {s}.kek_versions WHERE state <> 'retired'",  # noqa: S608
        insert_first_kek=(
            f"INSERT INTO {s}.kek_versions (version, wrapped, state) "  # noqa: S608
            f"SELECT 1, $1, 'active' WHERE NOT EXISTS (SELECT 1 FROM {s}.kek_versions) "
            "ON CONFLICT DO NOTHING"
        ),
        next_id=f"SELECT nextval(pg_get_serial_sequence('{s}.wrapped_keys', 'id'))",
        # Inserts nothing unless $3 is still the active KEK; FOR SHARE holds off a
        # rotation's state change until this transaction ends.
        insert=(
            f"INSERT INTO {s}.wrapped_keys (id, purpose, kek_version, wrapped) "  # noqa: S608
            f"SELECT $1, $2, $3, $4 FROM {s}.kek_versions "
            "WHERE version = $3 AND state = 'active' FOR SHARE RETURNING id"
        ),
        select=f"SELECT purpose, kek_version, wrapped FROM {s}.wrapped_keys WHERE id = $1",  # noqa: S608
        retire=f"UPDATE {s}.wrapped_keys SET retired_at = now() WHERE id = $1 AND retired_at IS NULL",  # noqa: S608
        active_ids=(
            f"SELECT id FROM {s}.wrapped_keys "  # noqa: S608
            "WHERE purpose = $1 AND retired_at IS NULL ORDER BY id"
        ),
    )


def _check_purpose(purpose: str) -> str:
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"key purpose {purpose!r} must match {_PURPOSE.pattern}")
    return purpose


async def load_keyring(pool: asyncpg.Pool, schema: str, master_key: MasterKey | MasterKeys) -> Keyring:
    """Unwrap the KEKs of ``schema`` that rows may still use; create KEK 1 on a new database.

    A master key that does not open them raises :class:`ConfigError` naming the
    variables, so a service with the wrong key stops at start. During a
    master-key rotation, a KEK opens with the current or a previous master key.
    """
    keys = master_keys(master_key)
    queries = _queries(schema)
    with database_errors():
        rows = await pool.fetch(queries.kek_versions)
        if not rows:
            await pool.execute(queries.insert_first_kek, wrap_kek(keys.current, schema, 1, generate_key()))
            rows = await pool.fetch(queries.kek_versions)
    keks: dict[int, bytes] = {}
    active = None
    for row in rows:
        try:
            keks[row["version"]] = keys.unwrap_kek(schema, row["version"], row["wrapped"])
        except DecryptionError:
            raise ConfigError(
                "the master key (CVAULT_MASTER_KEY, CVAULT_MASTER_KEY_FILE or CVAULT_MASTER_KEY_COMMAND) "
                f"does not open key-encryption key version {row['version']} of schema {schema}; "
                "is it the key this database was set up with (or, after `cvault keys rotate-master`, the new one)?"
            ) from None
        if row["state"] == "active":
            active = row["version"]
    if active is None:
        raise ConfigError(f"schema {schema} has no active key-encryption key; run `cvault keys rotate`")
    return Keyring(schema, keks, active)


class PgKeyRepository:
    """Wrapped keys of one schema, with an LRU cache of unwrapped keys.

    One instance per process and schema, built at start by :meth:`open`. Keys are
    immutable once stored, so the cache never needs invalidating; a KEK
    rotation by another process is noticed when a row names a KEK version this
    keyring lacks, or when the guarded insert refuses a retired one.
    """

    def __init__(
        self, pool: asyncpg.Pool, master_key: MasterKey | MasterKeys, keyring: Keyring, *, cache_size: int = 10_000
    ) -> None:
        self._pool = pool
        self._master_key = master_key
        self._keyring = keyring
        self._queries = _queries(keyring.scope)
        self._cache: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._reload_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PgKeyRepository({self._keyring!r}, cached={len(self._cache)})"

    @classmethod
    async def open(
        cls, pool: asyncpg.Pool, schema: str, master_key: MasterKey | MasterKeys, *, cache_size: int = 10_000
    ) -> PgKeyRepository:
        keyring = await load_keyring(pool, schema, master_key)
        return cls(pool, master_key, keyring, cache_size=cache_size)

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    @asynccontextmanager
    async def _connection(self, conn: Connection | None) -> AsyncIterator[Connection]:
        if conn is not None:
            yield conn
        else:
            async with self._pool.acquire() as acquired:
                yield acquired

    async def _reload(self, stale: Keyring, conn: Connection | None = None) -> None:
        # ``conn``: a writer reloads on the connection it holds. Taking another from the
        # pool could wait forever when every connection is held by a writer doing the same.
        async with self._reload_lock:
            # Another task may have reloaded while this one waited for the lock.
            if self._keyring is stale:
                self._keyring = await load_keyring(conn or self._pool, self._keyring.scope, self._master_key)

    def _remember(self, key_id: int, purpose: str, key: bytes) -> None:
        if self._cache_size <= 0:
            return
        self._cache[key_id] = (purpose, key)
        self._cache.move_to_end(key_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def add(self, purpose: str, key: bytes, *, conn: Connection | None = None) -> int:
        """Store ``key`` wrapped under the active KEK; return its id.

        Pass ``conn`` to insert inside the caller's transaction (a secret version
        and its data key commit together).
        """
        _check_purpose(purpose)
        with database_errors():
            async with self._connection(conn) as c:
                key_id: int = await c.fetchval(self._queries.next_id)
                for _attempt in range(3):
                    keyring = self._keyring
                    wrapped = keyring.wrap_key(purpose, key_id, key)
                    if await c.fetchval(self._queries.insert, key_id, purpose, wrapped.kek_version, wrapped.wrapped):
                        self._remember(key_id, purpose, key)
                        return key_id
                    await self._reload(keyring, c)
        raise Unavailable("the active key-encryption key kept changing; try again")

    async def generate(self, purpose: str, *, conn: Connection | None = None) -> tuple[int, bytes]:
        """A fresh random 32-byte key, stored; returns ``(id, key)``."""
        key = generate_key()
        return await self.add(purpose, key, conn=conn), key

    async def get(self, key_id: int, purpose: str, *, conn: object = None) -> bytes:
        """The unwrapped key ``key_id``; raises :class:`DecryptionError` if it is not a ``purpose`` key.

        ``conn``: the transaction the store's domain holds (opaque to it, see :func:`connection_of`).
        """
        held = None if conn is None else connection_of(conn)
        cached = self._cache.get(key_id)
        if cached is not None:
            if cached[0] != purpose:
                raise DecryptionError(f"key {key_id} is not a {purpose} key")
            self._cache.move_to_end(key_id)
            return cached[1]
        with database_errors():
            async with self._connection(held) as c:
                row = await c.fetchrow(self._queries.select, key_id)
        if row is None:
            raise NotFound(f"key {key_id} not found")
        stored = WrappedKey(row["kek_version"], row["wrapped"])
        keyring = self._keyring
        if not keyring.has_version(stored.kek_version):
            await self._reload(keyring, held)
        key = self._keyring.unwrap_key(purpose, key_id, stored)
        self._remember(key_id, purpose, key)
        return key

    async def retire(self, key_id: int) -> None:
        """Mark a key retired (e.g. an old root key); it stays readable for verification."""
        with database_errors():
            await self._pool.execute(self._queries.retire, key_id)

    async def active_ids(self, purpose: str, *, conn: Connection | None = None) -> list[int]:
        """Ids of the not-retired keys of ``purpose``, oldest first."""
        with database_errors():
            async with self._connection(conn) as c:
                rows = await c.fetch(self._queries.active_ids, _check_purpose(purpose))
        return [row["id"] for row in rows]

    async def ticket_ring(self, purpose: str) -> TicketKeyRing:
        """Every unretired X25519 pair of ``purpose`` (the newest few); services create the first at start."""
        ids = (await self.active_ids(purpose))[-MAX_TICKET_KEYS:]
        if not ids:
            raise NotFound(f"no unretired {purpose} key")
        return TicketKeyRing({i: TicketKeyPair.from_private_key_bytes(await self.get(i, purpose)) for i in ids})
