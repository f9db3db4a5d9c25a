"""kill -9 of the store (a real ``cvault serve store`` process) during concurrent writes, N cycles.

Issue 20, items 1 and 2: a write cut during COMMIT was answered "nothing was
changed" and retried into a second version, and the write's ``ok`` event was
committed before the write, so a crash in between left an event for a version
that never existed. Each cycle here kills the store in the middle of 16
concurrent writers, restarts it, and retries every write whose answer was lost
with its own ``Idempotency-Key``; at the end the counts must all be zero and
``cvault audit verify`` must find the chain intact.

The cycle count is ``--crash-cycles`` (default 2, to stay fast; the issue's
acceptance run: ``pytest tests/faults/test_store_crash.py --crash-cycles 5 -s``).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
import pytest

from .cluster import Cluster
from .ledger import Ledger, assert_no_faults, count_faults, settle
from .scenario import mixed_load, setup_org
from .services import fault_services

DATABASE_TIMEOUT = 2.0
BOUND = 3 * DATABASE_TIMEOUT + 2.0  # docs/store.md "Faults: bounded waits", with a margin


async def test_kill_9_during_concurrent_writes(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    cycles: int = pytestconfig.getoption("--crash-cycles")
    rng = random.Random(9)
    ledger = Ledger()
    async with fault_services(fault_database, tmp_path, database_timeout=DATABASE_TIMEOUT) as (h, store):
        org = await setup_org(h)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            for _ in range(cycles):
                stop = asyncio.Event()
                load = asyncio.create_task(mixed_load(http, h.store_url, org, ledger, stop, workers=16, writes=0.9))
                await asyncio.sleep(rng.uniform(0.8, 2.0))
                store.kill9()
                stop.set()
                await load
                await store.start()
                await settle(http, h.store_url, org.id, org.bundle, ledger)
        assert h.store_config.master_key is not None
        master = h.store_config.master_key
    # Answers cut by the kill are not answers; only those the store gave count against the bound.
    ledger.answers = [a for a in ledger.answers if a[1] != 0]
    counts = await count_faults(fault_database, master, ledger, bound=BOUND)
    print(f"\nkill -9 of the store, {cycles} cycle(s) during 16 concurrent writers: {counts}")
    assert counts["acknowledged"] > 0
    assert_no_faults(counts, ledger, BOUND)
