"""Online KEK rotation: readers never fail, every key ends on the new version."""

from __future__ import annotations

import asyncio
import base64
import itertools

import pytest

from tests.support.cvault_command import cvault_env, run_cvault
from vault.crypto.envelope import SecretBinding, open_value, seal_value
from vault.crypto.keyring import MasterKey
from vault.errors import Conflict
from vault.storage.key_rotation import rotate_keys
from vault.storage.keys import PgKeyRepository
from vault.storage.pool import Pool

ROWS = 600
READERS = 4

# Stand-in for issue 5's secret versions: a value sealed under a data key, bound to its row.
VALUES_TABLE = """
CREATE TABLE test_values (
    id serial PRIMARY KEY,
    data_key_id bigint NOT NULL REFERENCES store.wrapped_keys (id),
    sealed bytea NOT NULL
)
"""


def _binding(row_id: int, data_key_id: int) -> SecretBinding:
    return SecretBinding("org", "vault", f"secret-{row_id}", 1, data_key_id)


async def _write_value(pool: Pool, keys: PgKeyRepository, row_id: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        key_id, key = await keys.generate("data-key", conn=conn)
        sealed = seal_value(key, f"value-{row_id}".encode(), _binding(row_id, key_id))
        await conn.execute(
            "INSERT INTO test_values (id, data_key_id, sealed) VALUES ($1, $2, $3)", row_id, key_id, sealed
        )


async def _read_value(pool: Pool, keys: PgKeyRepository, row_id: int) -> bytes:
    row = await pool.fetchrow("SELECT data_key_id, sealed FROM test_values WHERE id = $1", row_id)
    key = await keys.get(row["data_key_id"], "data-key")
    return open_value(key, row["sealed"], _binding(row_id, row["data_key_id"]))


async def test_rotation_under_concurrent_reads_and_writes(pool: Pool, master_key: MasterKey) -> None:
    await pool.execute(VALUES_TABLE)
    writer_keys = await PgKeyRepository.open(pool, "store", master_key)
    for row_id in range(1, ROWS + 1):
        await _write_value(pool, writer_keys, row_id)

    # Each reader is like another process: its own keyring, loaded before the rotation,
    # and no cache, so every read fetches and unwraps the data key from the database.
    readers = [await PgKeyRepository.open(pool, "store", master_key, cache_size=0) for _ in range(READERS)]
    rotating, finished = asyncio.Event(), asyncio.Event()
    reads_during_rotation = 0
    failures: list[BaseException] = []
    written = ROWS

    async def read_continuously(keys: PgKeyRepository, start: int) -> None:
        nonlocal reads_during_rotation
        for row_id in itertools.islice(itertools.cycle(range(1, ROWS + 1)), start, None):
            if finished.is_set():
                return
            try:
                assert await _read_value(pool, keys, row_id) == f"value-{row_id}".encode()
            except Exception as exc:
                failures.append(exc)
            if rotating.is_set():
                reads_during_rotation += 1
            await asyncio.sleep(0)

    async def write_continuously() -> None:
        nonlocal written
        # A writer with a stale keyring: its first insert after the switch must move to the new KEK.
        keys = await PgKeyRepository.open(pool, "store", master_key)
        while not finished.is_set():
            written += 1
            await _write_value(pool, keys, written)

    tasks = [asyncio.create_task(read_continuously(keys, i * ROWS // READERS)) for i, keys in enumerate(readers)]
    tasks.append(asyncio.create_task(write_continuously()))
    progress: list[str] = []
    try:
        rotating.set()
        report = await rotate_keys(pool, "store", master_key, batch_size=25, progress=progress.append)
        rotating.clear()
    finally:
        finished.set()
        await asyncio.gather(*tasks)

    assert failures == []
    assert reads_during_rotation > 0
    assert report.new_version == 2 and report.retired_versions == (1,)
    assert report.rewrapped >= ROWS
    assert any("re-wrapped" in line for line in progress)
    assert await pool.fetchval("SELECT count(*) FROM store.wrapped_keys WHERE kek_version <> 2") == 0
    states = await pool.fetch("SELECT version, state FROM store.kek_versions ORDER BY version")
    assert [(r["version"], r["state"]) for r in states] == [(1, "retired"), (2, "active")]
    # Readers picked up the new KEK when they met the first re-wrapped row.
    assert all(keys.keyring.has_version(2) for keys in readers)

    # A process started now loads only KEK 2 and still opens every value, old and new.
    fresh = await PgKeyRepository.open(pool, "store", master_key, cache_size=0)
    assert fresh.keyring.versions == (2,)
    for row_id in range(1, written + 1):
        assert await _read_value(pool, fresh, row_id) == f"value-{row_id}".encode()


async def test_rotating_twice(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "authority", master_key)
    key_id, key = await keys.generate("root-key")
    await rotate_keys(pool, "authority", master_key)
    report = await rotate_keys(pool, "authority", master_key)
    assert report.new_version == 3 and report.retired_versions == (2,) and report.rewrapped == 1
    fresh = await PgKeyRepository.open(pool, "authority", master_key)
    assert fresh.keyring.versions == (3,)
    assert await fresh.get(key_id, "root-key") == key


async def test_interrupted_rotation_is_finished_by_the_next_one(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    key_id, key = await keys.generate("data-key")
    # A rotation that died after step 2: version 2 active, version 1 still draining, rows on 1.
    interrupted = await rotate_keys(pool, "store", master_key)
    await pool.execute("UPDATE store.kek_versions SET state = 'draining', retired_at = NULL WHERE version = 1")
    keyring = (await PgKeyRepository.open(pool, "store", master_key)).keyring
    assert keyring.versions == (1, 2) and interrupted.new_version == 2

    report = await rotate_keys(pool, "store", master_key)
    assert report.retired_versions == (1, 2)
    fresh = await PgKeyRepository.open(pool, "store", master_key)
    assert await fresh.get(key_id, "data-key") == key


async def test_concurrent_rotation_is_refused(pool: Pool, master_key: MasterKey) -> None:
    await PgKeyRepository.open(pool, "store", master_key)
    async with pool.acquire() as conn, conn.transaction():
        # Hold the KEK row as a writer would, so the first rotation waits at its switch.
        await conn.execute("SELECT 1 FROM store.kek_versions WHERE state = 'active' FOR SHARE")
        first = asyncio.create_task(rotate_keys(pool, "store", master_key))
        while not await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"):
            await asyncio.sleep(0.01)
        with pytest.raises(Conflict, match="another `cvault keys rotate` is running"):
            await rotate_keys(pool, "store", master_key)
    assert (await first).new_version == 2


async def test_cvault_keys_rotate_command(pool: Pool, database_url: str, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    key_id, key = await keys.generate("data-key")
    env = cvault_env(
        {"CVAULT_DATABASE_URL": database_url, "CVAULT_MASTER_KEY": base64.b64encode(master_key.key).decode()}
    )
    status, out, err = await run_cvault("keys", "rotate", "--schema", "store", env=env)
    assert status == 0, err
    assert "store: KEK version 2 active, 1 keys re-wrapped" in out
    assert "keys rotate: store: re-wrapped 1/1 keys" in err
    assert master_key.key.hex() not in out + err
    fresh = await PgKeyRepository.open(pool, "store", master_key)
    assert await fresh.get(key_id, "data-key") == key


async def test_cvault_keys_rotate_with_the_wrong_master_key(
    pool: Pool, database_url: str, master_key: MasterKey
) -> None:
    await PgKeyRepository.open(pool, "store", master_key)
    wrong = base64.b64encode(bytes(32)).decode()
    env = cvault_env({"CVAULT_DATABASE_URL": database_url, "CVAULT_MASTER_KEY": wrong})
    status, _, err = await run_cvault("keys", "rotate", "--schema", "store", env=env)
    assert status == 1
    assert "CVAULT_MASTER_KEY" in err and "(config_error)" in err
    assert await pool.fetchval("SELECT max(version) FROM store.kek_versions") == 1


async def test_stale_writers_holding_every_connection_reload_on_their_own(
    database_url: str, master_key: MasterKey
) -> None:
    # Two writers in transactions on a pool of two, both with a keyring made stale by a
    # rotation: reloading through the pool would wait for a connection forever.
    from vault.storage.pool import close_pool, create_pool

    small = await create_pool(database_url, min_size=1, max_size=2)
    try:
        keys = await PgKeyRepository.open(small, "store", master_key)
        await rotate_keys(small, "store", master_key)
        both_in = asyncio.Barrier(2)

        async def write() -> int:
            async with small.acquire() as conn, conn.transaction():
                await both_in.wait()
                return await keys.add("data-key", b"k" * 32, conn=conn)

        async with asyncio.timeout(30):
            await asyncio.gather(write(), write())
        assert keys.keyring.active_version == 2
    finally:
        await close_pool(small)
