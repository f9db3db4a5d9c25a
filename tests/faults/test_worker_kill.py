"""kill -9 of one worker of ``cvault serve store --workers 2`` under load: that worker is replaced, the other serves.

Issue 25, item 4: the parent stopped every worker and exited 1 when one died, and
the service was gone for 1.1 to 1.3 s per kill (847 writes without a reply over
three kills) until an outer supervisor restarted it. Here each cycle kills one
worker in the middle of 16 concurrent clients: the parent and the other worker
must live on, a replacement must listen, the requests lost must be at most the
ones in flight on the killed worker (one per client), writes whose answer was lost
are retried with their keys, and the counts of ``ledger.count_faults`` must all be
zero. The figure printed is the requests lost per kill (aiohttp sends a GET or PUT
cut by a dropped connection once more by itself; a PUT's key then makes the store
answer the first outcome, counted as ``replayed``). Past the bound on
replacements (5 within a minute) the parent does exit 1.

Cycles: ``--crash-cycles`` (default 2).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest

from vault.cli.workers import MAX_RESTARTS

from .cluster import Cluster
from .ledger import Ledger, assert_no_faults, count_faults, settle
from .scenario import mixed_load, setup_org
from .services import StoreProcess, fault_services

CLIENTS = 16
DATABASE_TIMEOUT = 2.0
BOUND = 3 * DATABASE_TIMEOUT + 2.0


async def _two_listening(store: StoreProcess, *, besides: frozenset[int] = frozenset()) -> set[int]:
    """The two workers once both listen (none of ``besides`` among them)."""
    deadline = time.monotonic() + 60
    while True:
        assert store.process is not None and store.process.poll() is None, store.log_tail()
        pids = store.workers()
        if len(pids) == 2 and not pids & besides and all(store.listening(pid) for pid in pids):
            return pids
        assert time.monotonic() < deadline, store.log_tail()
        await asyncio.sleep(0.05)


async def test_a_killed_worker_is_replaced_and_costs_only_its_requests(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    cycles: int = pytestconfig.getoption("--crash-cycles")
    ledger = Ledger()
    lost_per_kill: list[int] = []
    served_meanwhile: list[int] = []
    async with fault_services(
        fault_database, tmp_path, store_args=("--workers", "2"), log_level="INFO", database_timeout=DATABASE_TIMEOUT
    ) as (h, store):
        org = await setup_org(h)
        workers = await _two_listening(store)
        # A connection per request: the kernel spreads connections, not requests, over the workers, and a
        # kept-alive pool could sit on one worker only.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), connector=connector) as http:
            for _ in range(cycles):
                stop = asyncio.Event()
                first = len(ledger.answers)
                load = asyncio.create_task(
                    mixed_load(http, h.store_url, org, ledger, stop, workers=CLIENTS, writes=0.9)
                )
                await asyncio.sleep(1.0)
                victim, survivor = sorted(workers)
                os.kill(victim, 9)
                killed = time.monotonic()
                workers = await _two_listening(store, besides=frozenset({victim}))
                replaced = time.monotonic()
                await asyncio.sleep(0.5)
                stop.set()
                await load
                assert survivor in workers, "the other worker was stopped"
                answers = ledger.answers[first:]
                lost_per_kill.append(sum(1 for a in answers if a[1] == 0))
                served_meanwhile.append(sum(1 for a in answers if a[1] == 200 and killed < a[3] < replaced))
            assert store.process is not None and store.process.poll() is None
            await settle(http, h.store_url, org.id, org.bundle, ledger)
        assert h.store_config.master_key is not None
        master = h.store_config.master_key
    ledger.answers = [a for a in ledger.answers if a[1] != 0]
    counts = await count_faults(fault_database, master, ledger, bound=BOUND)
    print(
        f"\nkill -9 of one of 2 workers, {cycles} cycle(s) under {CLIENTS} clients: requests lost per kill "
        f"{lost_per_kill}, answered 200 while the replacement started {served_meanwhile}; {counts}"
    )
    assert all(lost <= CLIENTS for lost in lost_per_kill), lost_per_kill  # at most one in flight per client
    assert all(served_meanwhile), served_meanwhile
    assert_no_faults(counts, ledger, BOUND)


async def test_a_worker_dying_again_and_again_ends_the_service(
    fault_cluster: Cluster, fault_database: str, tmp_path: Path
) -> None:
    async with fault_services(fault_database, tmp_path, store_args=("--workers", "2"), log_level="INFO") as (
        _h,
        store,
    ):
        assert store.process is not None
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while store.process.poll() is None:
            for pid in store.workers() - killed:
                if len(killed) <= MAX_RESTARTS:
                    os.kill(pid, 9)
                    killed.add(pid)
                    break
            assert time.monotonic() < deadline, store.log_tail()
            await asyncio.sleep(0.02)
        assert store.process.returncode == 1
        log = store.log_tail(200)
    print(f"\n{len(killed)} worker deaths: the parent exited {store.process.returncode}")
    assert len(killed) == MAX_RESTARTS + 1
    assert f"more than {MAX_RESTARTS} replacements within 60 s: stopping the others" in log
