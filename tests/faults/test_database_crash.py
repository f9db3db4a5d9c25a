"""PostgreSQL crashed (``pg_ctl stop -m immediate``) during mixed load, then started again.

An immediate stop is a crash as PostgreSQL sees it (no checkpoint, recovery from
the WAL at the next start): every connection dies wherever it is, COMMITs in
flight included. Writes whose answer was not a 200 are retried with their keys
once the server is back; the counts must all be zero.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from .cluster import Cluster
from .ledger import Ledger, assert_no_faults, count_faults, settle
from .scenario import mixed_load, setup_org
from .services import fault_services

DATABASE_TIMEOUT = 1.0
BOUND = 3 * DATABASE_TIMEOUT + 2.0  # docs/store.md "Faults: bounded waits", with a margin


async def test_postgres_crash_during_mixed_load(fault_cluster: Cluster, fault_database: str, tmp_path: Path) -> None:
    ledger = Ledger()
    async with fault_services(fault_database, tmp_path, database_timeout=DATABASE_TIMEOUT) as (h, _store):
        org = await setup_org(h)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            stop = asyncio.Event()
            load = asyncio.create_task(mixed_load(http, h.store_url, org, ledger, stop, workers=8))
            await asyncio.sleep(1.5)
            fault_cluster.stop("immediate")
            down_at = time.monotonic()
            await asyncio.sleep(2.0)
            down = [a for a in ledger.answers if down_at + 0.5 <= a[3]]
            fault_cluster.start()
            await asyncio.sleep(3.0)  # recovery under load
            stop.set()
            await load
            await settle(http, h.store_url, org.id, org.bundle, ledger)
            # Recovered: a read and a write answer again.
            r = await h.store("GET", f"/v1/orgs/{org.id}/vaults/v/secrets/{ledger.acknowledged[-1].name}", org.bundle)
            assert r.status == 200, r
        assert h.store_config.master_key is not None
        master = h.store_config.master_key
    counts = await count_faults(fault_database, master, ledger, bound=BOUND)
    print(f"\nPostgreSQL stop -m immediate for 2 s under mixed load: {counts}")
    assert down and all(status == 503 for _, status, _, _ in down), down
    assert_no_faults(counts, ledger, BOUND)
