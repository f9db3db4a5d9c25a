"""Micro-benchmark: audit events per second, group commit vs one transaction per event.

Usage::

    CVAULT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python bench/audit_commit.py [--writers 64] [--events 4000]

Creates a scratch database next to the one named (the role needs CREATEDB),
migrates it, and runs three ways of committing the same events from
``--writers`` concurrent tasks (think: requests in flight):

* ``group``: one :class:`AuditLog`; concurrent events share transactions.
* ``serial``: one :class:`AuditLog` with ``max_batch=1``: one transaction per
  event, one at a time.
* ``per-request``: every task appends its own event in its own transaction on
  a pool connection (what a service without a writer task would do); the head
  row's lock serializes them anyway.

Not a test: the figures depend on the disk's fsync latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from vault.audit.event import AuditEvent, AuditRecord, chain
from vault.audit.log import AuditLog
from vault.storage.audit import ChainLease, PgAuditRepository, append_records, writer_name
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.migrations import migrate
from vault.storage.pool import Pool, close_pool, create_pool

SCHEMA = "store"


def make_event(i: int) -> AuditEvent:
    return AuditEvent(
        "store",
        "secret.read",
        "ok",
        org=1,
        vault="prod",
        secret=f"db/url{i % 50}",
        version=1,
        token_id="7b6c8a2e-0000-5000-8000-000000000001",
        lineage=("7b6c8a2e-0000-5000-8000-000000000000",),
        actor="user:1",
        client_addr="10.0.0.1",
        request_id=f"req-{i}",
    )


async def drive(writers: int, events: int, record: Callable[[AuditEvent], Awaitable[None]]) -> float:
    """Events per second with ``writers`` tasks recording ``events`` in all."""
    counter = iter(range(events))

    async def writer() -> None:
        for i in counter:
            await record(make_event(i))

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return events / (time.perf_counter() - start)


async def with_log(pool: Pool, writers: int, events: int, max_batch: int) -> tuple[float, int]:
    log = AuditLog(PgAuditRepository(pool, SCHEMA), max_batch=max_batch)
    await log.start()
    try:
        rate = await drive(writers, events, log.record)
    finally:
        await log.close()
    return rate, log.stats.batches


async def per_request(pool: Pool, writers: int, events: int) -> float:
    holder = ChainLease(writer_name("bench"))  # one process: one chain, as a log has

    async def record(event: AuditEvent) -> None:
        at = datetime.now(UTC)

        def place(chain_id: int, seq: int, prev: bytes) -> list[AuditRecord]:
            return list(chain([(at, event)], chain_id, seq, prev))

        async with pool.acquire() as conn:
            await append_records(conn, SCHEMA, place, holder)

    return await drive(writers, events, record)


async def run(admin_dsn: str, writers: int, events: int) -> None:
    name = f"cvault_bench_{secrets.token_hex(4)}"
    await create_database(admin_dsn, name)
    pool = await create_pool(with_database(admin_dsn, name), min_size=1, max_size=min(writers, 20))
    try:
        await migrate(pool)
        group, batches = await with_log(pool, writers, events, 512)
        print(f"group commit : {group:9.0f} events/s  ({events} events in {batches} transactions)")
        serial, _ = await with_log(pool, writers, events, 1)
        print(f"serial       : {serial:9.0f} events/s  (one transaction per event, one writer)")
        naive = await per_request(pool, writers, events)
        print(f"per-request  : {naive:9.0f} events/s  (one transaction per event, {writers} writers)")
        print(f"ratio group/serial = {group / serial:.1f}x, group/per-request = {group / naive:.1f}x")
    finally:
        await close_pool(pool)
        await drop_database(admin_dsn, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--events", type=int, default=4000)
    args = parser.parse_args()
    dsn = os.environ.get("CVAULT_TEST_DATABASE_URL") or os.environ.get("CVAULT_DATABASE_URL")
    if not dsn:
        print("set CVAULT_TEST_DATABASE_URL to a PostgreSQL the role may create databases on", file=sys.stderr)
        return 2
    print(f"{args.writers} concurrent writers, {args.events} events per run")
    asyncio.run(run(dsn, args.writers, args.events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
