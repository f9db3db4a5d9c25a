"""Benchmark: each key rotation over 10 000 secrets' data keys, with reads going on; failures counted.

Usage::

    CVAULT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python bench/key_rotation.py [--keys 10000] [--readers 4] [--orgs 100]

Creates a scratch database next to the one named (the role needs CREATEDB),
migrates it, stores ``--keys`` data keys (one per secret version) and ``--orgs``
enrolled orgs, then runs, while ``--readers`` tasks keep fetching and unwrapping
random data keys (each with its own keyring and no cache, like separate processes):

* ``baseline``: one pass that reads and unwraps every data key (the least any
  re-wrap must do);
* ``keys rotate`` (KEK): new KEK version, every key re-wrapped in batches of 500;
* ``keys rotate-master``: every KEK version re-wrapped under a new master key;
* ``keys rotate-tokens --service store``: a new root key per org;
* ``keys rotate-tickets --service store`` and ``--service authority``: a new X25519 pair
  (one, and one per authority location plus the issuer's).

Prints, for each: seconds, the ratio to the baseline, reads during it, failed reads.
Bounded: about half a minute on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import time
from collections.abc import Awaitable, Callable

from vault.crypto.keyring import MasterKey, MasterKeys, WrappedKey, generate_key
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.key_rotation import rotate_keys, rotate_master_key
from vault.storage.keys import PgKeyRepository
from vault.storage.migrations import migrate
from vault.storage.pool import Pool, close_pool, create_pool
from vault.storage.store_keys import DATA_KEY_PURPOSE, ROOT_KEY_PURPOSE
from vault.storage.ticket_keys import rotate_ticket_keys
from vault.storage.token_keys import rotate_token_keys


async def fill(pool: Pool, keys: PgKeyRepository, count: int, orgs: int) -> list[int]:
    ids: list[int] = []

    async def writer(n: int) -> None:
        for _ in range(n):
            ids.append(await keys.add(DATA_KEY_PURPOSE, generate_key()))

    per = count // 8
    await asyncio.gather(*(writer(per + (1 if i < count % 8 else 0)) for i in range(8)))
    for org in range(1, orgs + 1):
        key_id = await keys.add(ROOT_KEY_PURPOSE, generate_key())
        await pool.execute("INSERT INTO store.orgs (id, slug, root_key_id) VALUES ($1, $2, $3)", org, f"o{org}", key_id)
    return ids


async def baseline(pool: Pool, keys: PgKeyRepository) -> float:
    started = time.perf_counter()
    rows = await pool.fetch("SELECT id, purpose, kek_version, wrapped FROM store.wrapped_keys")
    for row in rows:
        keys.keyring.unwrap_key(row["purpose"], row["id"], WrappedKey(row["kek_version"], row["wrapped"]))
    return time.perf_counter() - started


async def measure(
    name: str, rotation: Callable[[], Awaitable[object]], readers: list[PgKeyRepository], ids: list[int], base: float
) -> None:
    stop = asyncio.Event()
    reads = failures = 0

    async def read(keys: PgKeyRepository) -> None:
        nonlocal reads, failures
        while not stop.is_set():
            try:
                await keys.get(random.choice(ids), DATA_KEY_PURPOSE)
            except Exception:
                failures += 1
            reads += 1

    tasks = [asyncio.create_task(read(keys)) for keys in readers]
    await asyncio.sleep(0.2)
    before = reads
    started = time.perf_counter()
    await rotation()
    took = time.perf_counter() - started
    during = reads - before
    stop.set()
    await asyncio.gather(*tasks)
    print(f"{name:<28} {took:7.2f} s  {took / base:7.1f}x baseline  {during:6d} reads during  {failures} failed")


async def run(admin_dsn: str, count: int, readers: int, orgs: int) -> None:
    name = f"cvault_bench_{secrets.token_hex(4)}"
    await create_database(admin_dsn, name)
    pool = await create_pool(with_database(admin_dsn, name), min_size=1, max_size=readers + 4)
    try:
        await migrate(pool)
        old, new = MasterKey(generate_key()), MasterKey(generate_key())
        keys = await PgKeyRepository.open(pool, "store", old, cache_size=0)
        ids = await fill(pool, keys, count, orgs)
        base = await baseline(pool, keys)
        print(f"{count} data keys, {orgs} orgs, {readers} readers (own keyring, no cache)")
        print(f"{'baseline (read + unwrap all)':<28} {base:7.2f} s")
        both = MasterKeys(new, (old,))
        group = [await PgKeyRepository.open(pool, "store", both, cache_size=0) for _ in range(readers)]
        await measure("keys rotate (KEK)", lambda: rotate_keys(pool, "store", old), group, ids, base)
        await measure("keys rotate-master", lambda: rotate_master_key(pool, "store", both), group, ids, base)
        token_keys = await PgKeyRepository.open(pool, "store", new, cache_size=0)
        await measure(
            "keys rotate-tokens (store)", lambda: rotate_token_keys(pool, token_keys, "store"), group, ids, base
        )
        await measure(
            "keys rotate-tickets (store)", lambda: rotate_ticket_keys(pool, token_keys, "store"), group, ids, base
        )
        authority_keys = await PgKeyRepository.open(pool, "authority", new, cache_size=0)
        await measure(
            "keys rotate-tickets (auth.)",
            lambda: rotate_ticket_keys(pool, authority_keys, "authority"),
            group,
            ids,
            base,
        )
    finally:
        await close_pool(pool)
        await drop_database(admin_dsn, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--orgs", type=int, default=100)
    args = parser.parse_args()
    dsn = os.environ.get("CVAULT_TEST_DATABASE_URL") or os.environ.get("CVAULT_DATABASE_URL")
    if not dsn:
        print("set CVAULT_TEST_DATABASE_URL to a PostgreSQL the role may create databases on", file=sys.stderr)
        return 2
    asyncio.run(run(dsn, args.keys, args.readers, args.orgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
