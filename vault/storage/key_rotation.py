"""Online KEK rotation: new version, re-wrap every key in batches, retire the old versions.

Procedure (``cvault keys rotate``), per schema:

1. Take a per-schema advisory lock; a second rotation fails fast with Conflict.
2. In one transaction: add KEK version n+1 as ``active`` and turn the old
   active version into ``draining``. Writers' guarded inserts (see
   :mod:`vault.storage.keys`) hold ``FOR SHARE`` on the KEK row, so this waits
   for in-flight writers, and every later writer wraps under n+1.
3. Re-wrap rows not on n+1 in id order, ``batch_size`` rows per transaction
   (``FOR UPDATE``): readers see either the old or the new wrapping, both of
   which their keyring opens, so no read fails.
4. In one transaction: check no row is left on an old version, and mark the
   draining versions ``retired`` (kept wrapped, never loaded again).

A rotation interrupted at any point is finished by running it again: the next
run drains every non-retired version, not just the one it replaced.

Steps 2 and 4 each record a ``keys.rotate`` audit event in their own transaction,
in the schema's chain (:func:`record_key_change`): the versions, never a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import asyncpg

from vault.audit.event import AuditEvent
from vault.crypto.keyring import (
    Keyring,
    MasterKey,
    MasterKeys,
    WrappedKey,
    generate_key,
    master_keys,
    unwrap_kek,
    wrap_kek,
)
from vault.errors import ConfigError, Conflict, DecryptionError, Unavailable

from .audit import record_in_transaction
from .keys import load_keyring
from .pool import Connection, database_errors
from .schema import check_schema

__all__ = ["MasterRotationReport", "RotationReport", "record_key_change", "rotate_keys", "rotate_master_key"]

_MAX_PASSES = 5


@dataclass(frozen=True)
class RotationReport:
    schema: str
    new_version: int
    rewrapped: int
    retired_versions: tuple[int, ...]


@dataclass(frozen=True)
class MasterRotationReport:
    schema: str
    rewrapped: tuple[int, ...]  # KEK versions moved to the new master key by this run
    already: tuple[int, ...]  # KEK versions that were under it before (a rerun)


@dataclass(frozen=True)
class _Queries:
    next_version: str
    insert_kek: str
    drain: str
    activate: str
    count_old: str
    batch: str
    update: str
    retire: str
    all_keks: str
    rewrap_kek: str


@cache
def _queries(schema: str) -> _Queries:
    s = check_schema(schema)  # a closed set: safe to build SQL from
    return _Queries(
        next_version=f"SELECT coalesce(max(version), 0) + 1 FROM {s}.kek_versions",  # noqa: S608
        insert_kek=f"INSERT INTO {s}.kek_versions (version, wrapped, state) VALUES ($1, $2, 'draining')",  # noqa: S608
        # Old active -> draining, then the new one -> active: the one-active index holds throughout.
        drain=(
            f"WITH old AS (UPDATE {s}.kek_versions SET state = 'draining' "  # noqa: S608
            "WHERE state = 'active' AND version <> $1 RETURNING version) "
            "SELECT coalesce(array_agg(version ORDER BY version), '{}') FROM old"
        ),
        activate=f"UPDATE {s}.kek_versions SET state = 'active' WHERE version = $1",  # noqa: S608
        count_old=f"SELECT count(*) FROM {s}.wrapped_keys WHERE kek_version <> $1",  # noqa: S608
        batch=(
            f"SELECT id, purpose, kek_version, wrapped FROM {s}.wrapped_keys "  # noqa: S608
            "WHERE id > $1 AND kek_version <> $2 ORDER BY id LIMIT $3 FOR UPDATE"
        ),
        update=(
            f"UPDATE {s}.wrapped_keys AS k SET kek_version = $1, wrapped = u.wrapped "  # noqa: S608
            "FROM unnest($2::bigint[], $3::bytea[]) AS u(id, wrapped) WHERE k.id = u.id"
        ),
        retire=(
            f"UPDATE {s}.kek_versions SET state = 'retired', retired_at = now() "  # noqa: S608
            "WHERE state = 'draining' RETURNING version"
        ),
        # Every version, retired ones too: afterwards the old master key must open nothing.
        all_keks=f"SELECT version, wrapped FROM {s}.kek_versions ORDER BY version FOR UPDATE",  # noqa: S608
        rewrap_kek=(
            f"UPDATE {s}.kek_versions AS k SET wrapped = u.wrapped "  # noqa: S608
            "FROM unnest($1::integer[], $2::bytea[]) AS u(version, wrapped) WHERE k.version = u.version"
        ),
    )


async def record_key_change(
    conn: Connection, schema: str, action: str, actor: str | None, *, org: int | None = None, **detail: Any
) -> None:
    """The audit event of a key change, in ``schema``'s chain, inside the change's transaction on ``conn``.

    ``detail`` names keys by id and version only. ``actor`` is who ran the command
    (``local:<login>`` from the CLI); ``client_addr`` says it ran on the database's side, not over HTTP.
    """
    facts = {k: v for k, v in detail.items() if v is not None}
    event = AuditEvent(
        service=schema, action=action, outcome="ok", org=org, actor=actor, client_addr="local", detail=facts
    )
    await record_in_transaction(conn, schema, event)


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"cvault.keys.rotate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _rewrap_pass(
    conn: Connection,
    queries: _Queries,
    keyring: Keyring,
    batch_size: int,
    total: int,
    done: int,
    progress: Callable[[str], None],
) -> int:
    last_id = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(queries.batch, last_id, keyring.active_version, batch_size)
            if not rows:
                return done
            ids, wrapped = [], []
            for row in rows:
                key = keyring.unwrap_key(row["purpose"], row["id"], WrappedKey(row["kek_version"], row["wrapped"]))
                ids.append(row["id"])
                wrapped.append(keyring.wrap_key(row["purpose"], row["id"], key).wrapped)
            await conn.execute(queries.update, keyring.active_version, ids, wrapped)
        last_id = ids[-1]
        done += len(ids)
        progress(f"keys rotate: {keyring.scope}: re-wrapped {done}/{max(total, done)} keys")


async def rotate_keys(
    pool: asyncpg.Pool,
    schema: str,
    master_key: MasterKey | MasterKeys,
    *,
    batch_size: int = 500,
    progress: Callable[[str], None] = lambda line: None,
    actor: str | None = None,
) -> RotationReport:
    """Rotate the KEK of ``schema`` while services keep reading and writing; ``actor`` goes in its audit events."""
    queries = _queries(schema)
    with database_errors():
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(schema)):
                raise Conflict(f"another `cvault keys rotate` is running for schema {schema}; wait for it")
            try:
                keyring = await load_keyring(pool, schema, master_key)
                kek = generate_key()
                async with conn.transaction():
                    version: int = await conn.fetchval(queries.next_version)
                    wrapped_kek = wrap_kek(master_keys(master_key).current, schema, version, kek)
                    await conn.execute(queries.insert_kek, version, wrapped_kek)
                    draining: list[int] = await conn.fetchval(queries.drain, version)
                    await conn.execute(queries.activate, version)
                    await record_key_change(
                        conn, schema, "keys.rotate", actor, phase="activated", kek_version=version, draining=draining
                    )
                keyring = keyring.with_kek(version, kek, active=True)
                total: int = await conn.fetchval(queries.count_old, version)
                progress(f"keys rotate: {schema}: KEK version {version} active; re-wrapping {total} keys")

                done = 0
                for _ in range(_MAX_PASSES):
                    done = await _rewrap_pass(conn, queries, keyring, batch_size, total, done, progress)
                    async with conn.transaction():
                        if await conn.fetchval(queries.count_old, version) == 0:
                            retired = tuple(sorted(r["version"] for r in await conn.fetch(queries.retire)))
                            await record_key_change(
                                conn,
                                schema,
                                "keys.rotate",
                                actor,
                                phase="finished",
                                kek_version=version,
                                rewrapped=done,
                                retired=list(retired),
                            )
                            break
                else:
                    raise Unavailable(f"keys of schema {schema} kept appearing on old KEK versions; run again")
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    progress(f"keys rotate: {schema}: done; retired KEK versions {', '.join(map(str, retired)) or 'none'}")
    return RotationReport(schema, version, done, retired)


async def rotate_master_key(
    pool: asyncpg.Pool,
    schema: str,
    keys: MasterKeys,
    *,
    progress: Callable[[str], None] = lambda line: None,
    actor: str | None = None,
) -> MasterRotationReport:
    """Re-wrap every KEK version of ``schema`` from a previous master key to ``keys.current``.

    One transaction per schema: the KEK table holds a handful of rows whatever the
    number of secrets, since only KEKs sit directly under the master key. Running
    services keep their unwrapped KEKs in memory, so reads and writes go on; a
    writer's ``FOR SHARE`` on the active KEK row only makes this wait for it. A
    rerun (after an interruption, or to be sure) re-wraps nothing already done.
    The transaction records a ``keys.rotate_master`` audit event with the versions.
    """
    if not keys.previous:
        raise ConfigError(
            "rotating the master key needs the old one too: set CVAULT_MASTER_KEY (or _FILE, _COMMAND) to the "
            "new key and CVAULT_MASTER_KEY_PREVIOUS (or _PREVIOUS_FILE) to the old one"
        )
    queries = _queries(schema)
    rewrapped: list[int] = []
    already: list[int] = []
    with database_errors():
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(schema)):
                raise Conflict(f"a key rotation is running for schema {schema}; wait for it")
            try:
                async with conn.transaction():
                    wrapped = []
                    for row in await conn.fetch(queries.all_keks):
                        version = row["version"]
                        try:
                            unwrap_kek(keys.current, schema, version, row["wrapped"])
                            already.append(version)
                            continue
                        except DecryptionError:
                            pass
                        try:
                            kek = MasterKeys(keys.previous[0], keys.previous[1:]).unwrap_kek(
                                schema, version, row["wrapped"]
                            )
                        except DecryptionError:
                            raise ConfigError(
                                f"KEK version {version} of schema {schema} opens with neither CVAULT_MASTER_KEY "
                                "nor CVAULT_MASTER_KEY_PREVIOUS; nothing was changed in this schema"
                            ) from None
                        rewrapped.append(version)
                        wrapped.append(wrap_kek(keys.current, schema, version, kek))
                    if rewrapped:
                        await conn.execute(queries.rewrap_kek, rewrapped, wrapped)
                    # A rerun that re-wraps nothing is recorded too: it says the old master key opens nothing.
                    await record_key_change(
                        conn, schema, "keys.rotate_master", actor, rewrapped=rewrapped, already=already
                    )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    progress(
        f"keys rotate-master: {schema}: {len(rewrapped)} KEK version(s) re-wrapped, "
        f"{len(already)} already under the new master key"
    )
    return MasterRotationReport(schema, tuple(rewrapped), tuple(already))
