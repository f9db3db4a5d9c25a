"""`cvault keys rotate-master`: online under real traffic, the old key opens nothing, interruption and rerun."""

from __future__ import annotations

import asyncio
import base64
import signal
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestServer

from tests.support.cvault_command import cvault_command, cvault_env, run_cvault
from tests.support.enrolled_org import EnrolledOrg
from tests.support.key_traffic import secret_reads_and_writes, traffic
from vault.crypto.keyring import MasterKey, MasterKeys, generate_key, unwrap_kek
from vault.errors import ConfigError, DecryptionError
from vault.storage.key_rotation import rotate_keys, rotate_master_key
from vault.storage.keys import PgKeyRepository, load_keyring
from vault.storage.pool import Pool
from vault.web.store import create_store_app


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def _wrapped_keks(pool: Pool, schema: str) -> list[tuple[int, bytes]]:
    rows = await pool.fetch(f"SELECT version, wrapped FROM {schema}.kek_versions ORDER BY version")
    return [(r["version"], r["wrapped"]) for r in rows]


def _opens_all(master: MasterKey, schema: str, rows: list[tuple[int, bytes]]) -> bool:
    try:
        for version, wrapped in rows:
            unwrap_kek(master, schema, version, wrapped)
    except DecryptionError:
        return False
    return True


def _opens_any(master: MasterKey, schema: str, rows: list[tuple[int, bytes]]) -> bool:
    return any(_opens_all(master, schema, [row]) for row in rows)


async def test_rotate_master_under_load_then_old_key_opens_nothing(
    world: EnrolledOrg, pool: Pool, database_url: str
) -> None:
    h = world.h
    assert h.store_config.master_key is not None
    old = MasterKey(h.store_config.master_key)
    new = MasterKey(generate_key())
    # A retired KEK version too: afterwards the old master key must not open even that.
    await rotate_keys(pool, "store", old)
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": _b64(new.key),
            "CVAULT_MASTER_KEY_PREVIOUS": _b64(old.key),
        }
    )

    # During the transition window a store started with both keys (new first) serves as before.
    both = replace(h.store_config, master_key=new.key, master_key_previous=old.key)
    async with TestServer(create_store_app(both), host="127.0.0.1") as node:
        url = f"http://127.0.0.1:{node.port}" + world.secret("before")
        async with h.http.put(url, json={"value": "v"}, headers={"Authorization": f"Bearer {world.bundle}"}) as reply:
            assert reply.status == 200

    async with traffic(secret_reads_and_writes(h, world.org, world.bundle)) as load:
        await load.wait_for(20)
        mark = load.mark()
        code, out, err = await run_cvault("keys", "rotate-master", env=env)
        during = load.since(mark)
        await load.wait_for(20)
    assert code == 0, err
    assert "store: 2 KEK version(s) re-wrapped" in out and "authority: 1 KEK version(s) re-wrapped" in out
    assert load.failures == [] and during > 0

    for schema in ("store", "authority"):
        rows = await _wrapped_keks(pool, schema)
        assert _opens_all(new, schema, rows) and not _opens_any(old, schema, rows)
        with pytest.raises(ConfigError, match="does not open"):
            await load_keyring(pool, schema, old)

    # The next start: the new key alone works, the old key alone is refused, both work.
    for master, previous, starts in ((new, None, True), (old, None, False), (old, new, True)):
        config = replace(h.store_config, master_key=master.key, master_key_previous=previous and previous.key)
        server = TestServer(create_store_app(config), host="127.0.0.1")
        if not starts:
            with pytest.raises(ConfigError, match="does not open"):
                await server.start_server()
            await server.close()
            continue
        async with server:
            url = f"http://127.0.0.1:{server.port}" + world.secret("before")
            async with h.http.get(url, headers={"Authorization": f"Bearer {world.bundle}"}) as resp:
                assert resp.status == 200 and (await resp.json())["value"] == "v"

    # A rerun changes nothing.
    code, out, err = await run_cvault("keys", "rotate-master", env=env)
    assert code == 0, err
    assert "store: 0 KEK version(s) re-wrapped under the new master key, 2 already were" in out


async def test_rotate_master_needs_the_previous_key(database_url: str) -> None:
    env = cvault_env({"CVAULT_DATABASE_URL": database_url, "CVAULT_MASTER_KEY": _b64(generate_key())})
    code, _out, err = await run_cvault("keys", "rotate-master", env=env)
    assert code == 1 and "CVAULT_MASTER_KEY_PREVIOUS" in err


async def test_rotate_master_with_a_key_that_fits_nothing_changes_nothing(pool: Pool, master_key: MasterKey) -> None:
    await PgKeyRepository.open(pool, "store", master_key)
    before = await _wrapped_keks(pool, "store")
    strangers = MasterKeys(MasterKey(generate_key()), (MasterKey(generate_key()),))
    with pytest.raises(ConfigError, match="neither"):
        await rotate_master_key(pool, "store", strangers)
    assert await _wrapped_keks(pool, "store") == before


async def test_interrupted_rotation_is_finished_by_a_rerun(
    pool: Pool, database_url: str, master_key: MasterKey
) -> None:
    for schema in ("store", "authority"):
        keys = await PgKeyRepository.open(pool, schema, master_key)
        for _ in range(3):
            await keys.generate("data-key")
    new = MasterKey(generate_key())
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": _b64(new.key),
            "CVAULT_MASTER_KEY_PREVIOUS": _b64(master_key.key),
        }
    )
    # Hold the authority's KEK rows so the run finishes the store and then waits; kill it there.
    async with pool.acquire() as blocker:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT version FROM authority.kek_versions FOR UPDATE")
        process = await asyncio.create_subprocess_exec(
            *cvault_command("keys", "rotate-master"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            while not _opens_all(new, "store", await _wrapped_keks(pool, "store")):
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await transaction.rollback()

    assert _opens_all(new, "store", await _wrapped_keks(pool, "store"))
    assert _opens_all(master_key, "authority", await _wrapped_keks(pool, "authority"))
    # Half-way, a service configured with both keys opens both schemas.
    for schema in ("store", "authority"):
        await load_keyring(pool, schema, MasterKeys(new, (master_key,)))

    code, out, err = await run_cvault("keys", "rotate-master", env=env)
    assert code == 0, err
    assert "store: 0 KEK version(s) re-wrapped under the new master key, 1 already were" in out
    assert "authority: 1 KEK version(s) re-wrapped" in out
    for schema in ("store", "authority"):
        rows = await _wrapped_keks(pool, schema)
        assert _opens_all(new, schema, rows) and not _opens_any(master_key, schema, rows)
        keys = await PgKeyRepository.open(pool, schema, new, cache_size=0)
        for key_id in await keys.active_ids("data-key"):
            await keys.get(key_id, "data-key")
