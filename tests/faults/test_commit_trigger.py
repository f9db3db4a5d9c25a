"""A COMMIT that fails through a trigger (a deferred constraint trigger that raises), under mixed load.

Issue 20, items 2 and 5: such a write was answered ``500 internal``, its ``ok``
event was already committed, and no ``error`` event recorded the failure. Here
every write to a ``doomed*`` secret fails at COMMIT, beside ordinary writes and
reads; each must be a JSON ``database_error`` with an ``error`` event, and no
``ok`` event may name a version that does not exist.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.support.audit_rows import FAIL_AT_COMMIT
from vault.storage.pool import close_pool, create_pool

from .cluster import Cluster
from .ledger import Ledger, assert_no_faults, count_faults
from .scenario import NAMES, mixed_load, setup_org
from .services import fault_services

BOUND = 3 * 3.0 + 2.0  # the default database_timeout (docs/store.md), with a margin


async def test_commit_failing_in_a_trigger(fault_cluster: Cluster, fault_database: str, tmp_path: Path) -> None:
    pool = await create_pool(fault_database, max_size=1)
    try:
        await pool.execute(FAIL_AT_COMMIT)
    finally:
        await close_pool(pool)
    ledger = Ledger()
    async with fault_services(fault_database, tmp_path) as (h, _store):
        org = await setup_org(h)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            stop = asyncio.Event()
            names = [*NAMES, "doomed1", "doomed2"]
            load = asyncio.create_task(mixed_load(http, h.store_url, org, ledger, stop, workers=6, names=names))
            await asyncio.sleep(3.0)
            stop.set()
            await load
        assert h.store_config.master_key is not None
        master = h.store_config.master_key
    doomed = [w for w in ledger.unknown if w.name.startswith("doomed")]
    assert doomed and len(doomed) == len(ledger.unknown), "only the doomed writes fail"
    codes = {code for _, status, code, _ in ledger.answers if status == 500}
    assert codes == {"database_error"}, codes
    assert not any(w.name.startswith("doomed") for w in ledger.acknowledged)
    ledger.unknown.clear()  # refused for good: nothing to retry
    pool = await create_pool(fault_database, max_size=1)
    try:
        errors = await pool.fetchval(
            "SELECT count(*) FROM store.audit_events WHERE secret LIKE 'doomed%' AND outcome = 'error' "
            "AND detail->>'code' = 'database_error'"
        )
        oks = await pool.fetchval(
            "SELECT count(*) FROM store.audit_events WHERE secret LIKE 'doomed%' AND outcome = 'ok'"
        )
    finally:
        await close_pool(pool)
    counts = await count_faults(fault_database, master, ledger, bound=BOUND)
    print(f"\nCOMMIT failing in a deferred trigger ({len(doomed)} doomed writes) under mixed load: {counts}")
    assert errors == len(doomed) and oks == 0
    assert_no_faults(counts, ledger, BOUND)
