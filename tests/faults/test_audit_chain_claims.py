"""A store that starts under concurrent writers holds one audit chain, not one per first append.

Issue 25, item 5: a store starting under 13 concurrent writers opened 75 chains,
up to 15 held by one writer: each state change's first append claimed a chain
inside its own transaction, where no other could see the claim. Here the store
is killed (its chain's lease still runs, so the new process cannot reuse it),
started again, and hit at once by 16 concurrent writers; every event the new
process appended must be on one chain, and it must have added at most one chain.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from vault.storage.pool import close_pool, create_pool

from .cluster import Cluster
from .ledger import Ledger, send_write
from .scenario import setup_org
from .services import fault_services

WRITERS = 16


async def _chains(url: str, after_seq: int) -> tuple[int, int, list[tuple[str, int]]]:
    pool = await create_pool(url, max_size=1)
    try:
        head = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM store.audit_events")
        rows = await pool.fetch("SELECT writer, chain FROM store.audit_chains ORDER BY chain")
        used = await pool.fetchval("SELECT count(DISTINCT chain) FROM store.audit_events WHERE seq > $1", after_seq)
    finally:
        await close_pool(pool)
    return head, used, [(r["writer"] or "", r["chain"]) for r in rows]


async def test_concurrent_first_appends_share_one_chain(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    async with fault_services(fault_database, tmp_path) as (h, store):
        org = await setup_org(h)
        store.kill9()
        before, _, chains_before = await _chains(fault_database, 0)
        await store.start()
        ledger = Ledger()
        async with aiohttp.ClientSession() as http:
            writes = [ledger.next_write(f"s{i}") for i in range(WRITERS)]
            statuses = await asyncio.gather(
                *(send_write(http, org.secret_url(h.store_url, w.name), org.bundle, w, ledger) for w in writes)
            )
            # And a second round, the chain now held.
            more = [ledger.next_write(f"s{i}") for i in range(WRITERS)]
            statuses += await asyncio.gather(
                *(send_write(http, org.secret_url(h.store_url, w.name), org.bundle, w, ledger) for w in more)
            )
    _, used, chains_after = await _chains(fault_database, before)
    added = [c for c in chains_after if c[1] not in {chain for _, chain in chains_before}]
    print(f"\n{WRITERS} concurrent first writes after a restart: {used} chain(s) used, {len(added)} added: {added}")
    assert statuses == [200] * (2 * WRITERS)
    assert used == 1 and len(added) <= 1, (chains_before, chains_after)
