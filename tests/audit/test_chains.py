"""One hash chain per writer (docs/audit.md, "Chains"): writers that do not wait for each other, each chain
verified on its own, checkpoints that catch a rewound head or a deleted chain, and the migration from one chain."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.audit.test_audit_log import checkpoint, event, tamper
from vault.audit.event import GENESIS_HASH, AuditEvent, AuditRecord
from vault.audit.log import AuditLog
from vault.audit.query import AuditQueries, verify_lines
from vault.cli.main import main
from vault.config import default_sql_dir
from vault.storage.audit import PgAuditRepository, record_in_transaction
from vault.storage.migrations import migrate
from vault.storage.pool import Pool, close_pool, create_pool

SCHEMA = "store"


def queries(pool: Pool, schema: str = SCHEMA) -> AuditQueries:
    return AuditQueries(PgAuditRepository(pool, schema))


@pytest.fixture
async def two_logs(pool: Pool, database_url: str) -> AsyncIterator[tuple[AuditLog, AuditLog]]:
    """Two writers as two processes have them: pools and logs of their own, on one database."""
    other_pool = await create_pool(database_url, max_size=4)
    first, second = AuditLog(PgAuditRepository(pool, SCHEMA)), AuditLog(PgAuditRepository(other_pool, SCHEMA))
    await first.start()
    await second.start()
    try:
        await first.record(event(0, service="a"))  # claims chain 0
        await second.record(event(0, service="b"))  # chain 0 is held: a chain of its own
        yield first, second
    finally:
        await first.close()
        await second.close()
        await close_pool(other_pool)


async def _chain_of(pool: Pool, service: str) -> int:
    chains = await pool.fetch("SELECT DISTINCT chain FROM store.audit_events WHERE service = $1", service)
    assert len(chains) == 1
    chain: int = chains[0]["chain"]
    return chain


async def test_a_writer_does_not_wait_for_another_writers_open_append(
    pool: Pool, two_logs: tuple[AuditLog, AuditLog]
) -> None:
    first, second = two_logs
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        # A state change of the first writer holds its chain's head lock, uncommitted...
        await first.record_in(conn, event(1, service="a"))
        # ... and the second writer commits meanwhile (with one chain it would wait for that lock).
        await asyncio.wait_for(second.record(*(event(i, service="b") for i in range(1, 20))), timeout=60)
        await tx.commit()
    await first.record(event(2, service="a"))
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert report.checked == 23
    assert await _chain_of(pool, "a") != await _chain_of(pool, "b")
    assert sorted(c.checked for c in report.chains if c.chain >= 0) == [3, 20]


async def test_concurrent_writers_each_keep_an_intact_chain(pool: Pool, two_logs: tuple[AuditLog, AuditLog]) -> None:
    first, second = two_logs
    await asyncio.gather(
        *(first.record(event(i, service="a")) for i in range(1, 200)),
        *(second.record(event(i, service="b")) for i in range(1, 200)),
    )
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert report.checked == 400
    # seq stays one order over all chains, and within a chain it follows chain_seq.
    rows = await pool.fetch("SELECT chain, chain_seq FROM store.audit_events ORDER BY seq")
    for chain in {r["chain"] for r in rows}:
        assert [r["chain_seq"] for r in rows if r["chain"] == chain] == list(range(1, 201))


async def test_an_edit_is_named_in_its_own_chain(pool: Pool, two_logs: tuple[AuditLog, AuditLog]) -> None:
    first, second = two_logs
    await first.record(*(event(i, service="a") for i in range(1, 10)))
    await second.record(*(event(i, service="b") for i in range(1, 10)))
    chain_b = await _chain_of(pool, "b")
    await tamper(pool, "UPDATE store.audit_events SET secret = 'x' WHERE chain = $1 AND chain_seq = 4", chain_b)
    report = await queries(pool).verify()
    assert not report.ok
    (broken,) = report.broken
    assert broken.chain == chain_b
    assert broken.broken_seq == 4
    assert broken.message.startswith(f"chain {chain_b}: event 4 (seq ")
    assert broken.message.endswith("hash does not match its contents (edited?)")
    assert [c.ok for c in report.chains if c.chain == 1 - chain_b] == [True]


async def test_a_deleted_tail_with_its_head_rewound_is_caught_by_the_checkpoint(
    pool: Pool, two_logs: tuple[AuditLog, AuditLog]
) -> None:
    _, second = two_logs
    await second.record(*(event(i, service="b") for i in range(1, 10)))
    await checkpoint(pool)
    chain_b = await _chain_of(pool, "b")
    sixth = await pool.fetchval("SELECT hash FROM store.audit_events WHERE chain = $1 AND chain_seq = 6", chain_b)
    await tamper(pool, "DELETE FROM store.audit_events WHERE chain = $1 AND chain_seq > 6", chain_b)
    await tamper(pool, "UPDATE store.audit_chains SET seq = 6, hash = $2 WHERE chain = $1", chain_b, sixth)
    report = await queries(pool).verify()
    (broken,) = report.broken
    assert broken.chain == chain_b
    assert broken.broken_seq == 7
    assert broken.message == (
        f"chain {chain_b}: events 7-10 missing (deleted?): the last checkpoint records event 10 "
        "but the chain ends at event 6"
    )


async def test_a_deleted_chain_is_caught_by_the_checkpoint(pool: Pool, two_logs: tuple[AuditLog, AuditLog]) -> None:
    await checkpoint(pool)
    chain_b = await _chain_of(pool, "b")
    await tamper(pool, "DELETE FROM store.audit_events WHERE chain = $1", chain_b)
    await tamper(pool, "DELETE FROM store.audit_chains WHERE chain = $1", chain_b)
    report = await queries(pool).verify()
    (broken,) = report.broken
    assert broken.chain == chain_b
    assert broken.message == f"chain {chain_b}: missing (deleted?): the last checkpoint records its event 1"


@pytest.fixture
async def closed_log(pool: Pool) -> None:
    """A log with one chain and some events, closed again (its chain released)."""
    log = AuditLog(PgAuditRepository(pool, SCHEMA))
    await log.start()
    try:
        await log.record(*(event(i) for i in range(3)))
    finally:
        await log.close()


async def test_an_edited_checkpoint_is_named(pool: Pool, closed_log: None) -> None:
    await checkpoint(pool)
    await checkpoint(pool)
    await tamper(pool, """UPDATE store.audit_checkpoints SET body = replace(body, '"v":1', '"v":2') WHERE id = 1""")
    report = await queries(pool).verify()
    (broken,) = report.broken
    assert broken.chain == -1
    assert broken.message == "checkpoints: checkpoint 1: hash does not match its contents (edited?)"


async def test_a_writer_whose_lease_was_taken_over_claims_again(pool: Pool, database_url: str) -> None:
    other_pool = await create_pool(database_url, max_size=2)
    first = AuditLog(PgAuditRepository(pool, SCHEMA))
    second = AuditLog(PgAuditRepository(other_pool, SCHEMA))
    await first.start()
    await second.start()
    try:
        await first.record(event(1, service="a"))
        # The first writer's lease runs out (it went quiet), and the second writer takes that chain over.
        await pool.execute("UPDATE store.audit_chains SET lease_until = now() - interval '1 second'")
        await second.record(event(1, service="b"))
        assert await _chain_of(pool, "b") == await _chain_of(pool, "a")
        # The first writer finds its chain taken and appends to another one instead of forking it.
        await first.record(event(2, service="a"))
    finally:
        await first.close()
        await second.close()
        await close_pool(other_pool)
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert report.checked == 3
    assert sorted(c.checked for c in report.chains if c.chain >= 0) == [1, 2]


async def test_a_closed_writers_chain_is_reused(pool: Pool) -> None:
    for i in range(3):
        log = AuditLog(PgAuditRepository(pool, SCHEMA))
        await log.start()
        try:
            await log.record(event(i))
        finally:
            await log.close()
    assert await pool.fetchval("SELECT count(*) FROM store.audit_chains") == 1
    assert (await queries(pool).verify()).checked == 3


async def test_a_process_without_a_log_appends_to_a_chain_it_releases(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, SCHEMA))
    await log.start()
    try:
        await log.record(event(1))  # holds chain 0
        async with pool.acquire() as conn, conn.transaction():
            await record_in_transaction(conn, SCHEMA, event(2, action="keys.rotate"))
        await log.record(event(3))
    finally:
        await log.close()
    chains = await pool.fetch("SELECT chain, writer FROM store.audit_chains ORDER BY chain")
    assert [r["writer"] for r in chains] == [None, None], "both chains released"
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert [c.checked for c in report.chains if c.chain >= 0] == [2, 1]


async def test_export_holds_every_chain_and_the_file_names_each_broken_chain(
    pool: Pool,
    two_logs: tuple[AuditLog, AuditLog],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    first, second = two_logs
    await asyncio.gather(
        *(first.record(event(i, service="a")) for i in range(1, 6)),
        *(second.record(event(i, service="b")) for i in range(1, 6)),
    )
    lines = [line async for line in queries(pool).export()]
    events = [json.loads(line) for line in lines if '"kind":' not in line]
    assert len(events) == 12 and json.loads(lines[-1]) == {"kind": "end", "events": 12}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert verify_lines(lines).ok
    bodies = [json.loads(line) for line in lines]
    chain_a, chain_b = await _chain_of(pool, "a"), await _chain_of(pool, "b")
    # One edit in each chain: each chain's report names its own first broken link.
    for chain, chain_seq in ((chain_a, 3), (chain_b, 5)):
        (index,) = [
            i for i, b in enumerate(bodies) if "kind" not in b and (b["chain"], b["chain_seq"]) == (chain, chain_seq)
        ]
        lines[index] = json.dumps(dict(bodies[index], secret="elsewhere")) + "\n"
    report = verify_lines(lines)
    assert sorted((c.chain, c.broken_seq) for c in report.broken) == sorted([(chain_a, 3), (chain_b, 5)])

    monkeypatch.setenv("CVAULT_DATABASE_URL", database_url)
    out = tmp_path / "audit.jsonl"
    out.write_text("".join(lines))
    assert await asyncio.to_thread(main, ["audit", "verify", "--file", str(out)]) == 3
    printed = capsys.readouterr().out
    assert f"BROKEN: chain {chain_a}: event 3" in printed
    assert f"BROKEN: chain {chain_b}: event 5" in printed
    await tamper(pool, "DELETE FROM store.audit_events WHERE chain = $1 AND chain_seq = 2", chain_b)
    assert await asyncio.to_thread(main, ["audit", "verify", "--schema", "store"]) == 3
    printed = capsys.readouterr().out
    assert f"BROKEN: chain {chain_b}: event 2 missing (deleted?)" in printed
    assert f"chain {chain_a}: 6 events verified; the chain is intact" in printed


async def test_a_single_chain_log_migrates_and_keeps_verifying(empty_database_url: str, tmp_path: Path) -> None:
    # A database as it was before chains: migrated without 0080, with format 1 events in its one chain.
    before = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), before)
    for path in before.glob("*/0080_audit_chains.sql"):
        path.unlink()
    db = await create_pool(empty_database_url, min_size=1, max_size=4)
    try:
        await migrate(db, sql_dir=before)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        prev = GENESIS_HASH
        for seq in range(1, 6):
            record = AuditRecord(seq, at, event(seq), prev, b"")
            prev = record.expected_hash()
            await db.execute(
                "INSERT INTO store.audit_events (seq, at, service, action, outcome, org, vault, secret, version, "
                "token_id, actor, request_id, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                "$11, $12, $13, $14)",
                seq,
                at,
                *(getattr(record.event, name) for name in ("service", "action", "outcome", "org", "vault")),
                *(getattr(record.event, name) for name in ("secret", "version", "token_id", "actor", "request_id")),
                record.prev_hash,
                prev,
            )
        await db.execute("UPDATE store.audit_head SET seq = 5, hash = $1", prev)

        await migrate(db)
        report = await queries(db).verify()
        assert report.ok, report.message
        assert report.checked == 5
        # New events continue chain 0 in format 2, after the old ones.
        log = AuditLog(PgAuditRepository(db, SCHEMA))
        await log.start()
        try:
            await log.record(event(6), event(7))
        finally:
            await log.close()
        rows = await db.fetch("SELECT seq, chain, chain_seq, format FROM store.audit_events ORDER BY seq")
        assert [tuple(r) for r in rows] == [(i, 0, i, 1 if i <= 5 else 2) for i in range(1, 8)]
        report = await queries(db).verify()
        assert report.ok, report.message
        assert report.checked == 7
        await tamper(db, "UPDATE store.audit_events SET secret = 'x' WHERE seq = 2")
        assert (await queries(db).verify()).broken_seq == 2
    finally:
        await close_pool(db)


async def test_every_chain_of_the_authority_verifies_too(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, "authority"))
    await log.start()
    try:
        await log.record(AuditEvent("authority", "token.mint", "ok"))
        async with pool.acquire() as conn, conn.transaction():
            await record_in_transaction(conn, "authority", AuditEvent("authority", "keys.rotate", "ok"))
    finally:
        await log.close()
    report = await queries(pool, "authority").verify()
    assert report.ok, report.message
    assert report.checked == 2
