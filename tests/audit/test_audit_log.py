"""The audit log against a real PostgreSQL: group commit, a chain per writer, tamper detection, fail closed."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from vault.audit.chain import ChainVerifier
from vault.audit.event import GENESIS_HASH, AuditEvent, AuditRecord, canonical_bytes, chain, chain_hash
from vault.audit.log import AuditLog
from vault.audit.query import AuditQueries, record_from_row, verify_lines
from vault.cli.main import main
from vault.errors import Unavailable
from vault.storage.audit import PgAuditRepository, fetch_rows, write_checkpoint
from vault.storage.pool import Pool, close_pool, create_pool

SCHEMA = "store"


def event(n: int = 0, **fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "service": "store",
        "action": "secret.read",
        "outcome": "ok",
        "org": 1,
        "vault": "prod",
        "secret": f"db/url{n}",
        "version": 1,
        "token_id": "7b6c8a2e-0000-5000-8000-000000000001",
        "actor": "user:1",
        "request_id": f"req-{n}",
    }
    values.update(fields)
    return AuditEvent(**values)  # type: ignore[arg-type]


def queries(pool: Pool, schema: str = SCHEMA) -> AuditQueries:
    return AuditQueries(PgAuditRepository(pool, schema))


@pytest.fixture
async def audit_log(pool: Pool) -> AsyncIterator[AuditLog]:
    log = AuditLog(PgAuditRepository(pool, SCHEMA))
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def checkpoint(pool: Pool, schema: str = SCHEMA) -> None:
    """Checkpoint every chain's head now (a log's own checkpoint may hold the lock a moment: wait for it)."""
    async with pool.acquire() as conn:
        for _ in range(1000):
            if await write_checkpoint(conn, schema, every=0):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no checkpoint written")


async def tamper(pool: Pool, sql: str, *args: object) -> None:
    # Triggers do not fire in replica mode (superuser only): the deliberate way around append-only.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


# --- pure parts -------------------------------------------------------------------------------


def test_canonical_bytes_are_pinned() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    e = AuditEvent(
        "store", "secret.read", "ok", org=7, secret="db/url", lineage=("a", "b"), detail={"z": 1, "a": [True, None]}
    )
    assert canonical_bytes(3, at, e) == (
        b'{"action":"secret.read","actor":null,"at":1714564800123456,"client_addr":null,'
        b'"detail":{"a":[true,null],"z":1},"lineage":["a","b"],"org":7,"outcome":"ok","request_id":null,'
        b'"secret":"db/url","seq":3,"service":"store","token_id":null,"v":1,"vault":null,"version":null}'
    )
    # The same instant in another time zone hashes the same.
    other = at.astimezone(timezone(timedelta(hours=2)))
    assert canonical_bytes(3, other, e) == canonical_bytes(3, at, e)


# Captured from the format-1 implementation before AuditEvent became a dataclass (issue 13): the bytes of existing
# chains, which every later implementation must reproduce exactly, or existing logs stop verifying.
_FORMAT_1 = [
    (
        1,
        datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        AuditEvent(
            "store",
            "secret.read",
            "ok",
            org=1,
            vault="prod",
            secret="db/url",
            version=3,
            token_id="7b6c8a2e-0000-5000-8000-000000000001",
            lineage=("7b6c8a2e-0000-5000-8000-000000000000",),
            actor="user:1",
            client_addr="10.0.0.1",
            request_id="req-1",
        ),
        b'{"action":"secret.read","actor":"user:1","at":1714564800123456,"client_addr":"10.0.0.1","detail":{},'
        b'"lineage":["7b6c8a2e-0000-5000-8000-000000000000"],"org":1,"outcome":"ok","request_id":"req-1",'
        b'"secret":"db/url","seq":1,"service":"store","token_id":"7b6c8a2e-0000-5000-8000-000000000001","v":1,'
        b'"vault":"prod","version":3}',
    ),
    (
        2**62,
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        AuditEvent(
            "authority",
            "token.mint",
            "denied",
            org=-(2**63),
            version=2**63 - 1,
            actor='sch\u00f6n \u65e5\u672c \U0001f511 "q" \\ /\t\n\x7f\x01',
            lineage=("a", "\u00e9", ""),
            detail={
                "z": [1, -2, True, False, None, "s"],
                "a": {"nested": {"k": ["x", {"y": 0}]}},
                "\u00fc": "\u2028",
                "": "",
            },
        ),
        b'{"action":"token.mint",'
        b'"actor":"sch\\u00f6n \\u65e5\\u672c \\ud83d\\udd11 \\"q\\" \\\\ /\\t\\n\\u007f\\u0001",'
        b'"at":946702799999999,"client_addr":null,"detail":{"":"","a":{"nested":{"k":["x",{"y":0}]}},'
        b'"z":[1,-2,true,false,null,"s"],"\\u00fc":"\\u2028"},"lineage":["a","\\u00e9",""],'
        b'"org":-9223372036854775808,"outcome":"denied","request_id":null,"secret":null,"seq":4611686018427387904,'
        b'"service":"authority","token_id":null,"v":1,"vault":null,"version":9223372036854775807}',
    ),
    (
        7,
        datetime(1970, 1, 1, tzinfo=UTC),
        AuditEvent(
            "store",
            "vault.create",
            "error",
            detail={"code": "conflict", "status": 409, "reason": 'vault "prod" exists\\x00'},
        ),
        b'{"action":"vault.create","actor":null,"at":0,"client_addr":null,'
        b'"detail":{"code":"conflict","reason":"vault \\"prod\\" exists\\\\x00","status":409},"lineage":[],'
        b'"org":null,"outcome":"error","request_id":null,"secret":null,"seq":7,"service":"store","token_id":null,'
        b'"v":1,"vault":null,"version":null}',
    ),
]


@pytest.mark.parametrize(("seq", "at", "e", "expected"), _FORMAT_1, ids=["read", "escapes-and-bounds", "refusal"])
def test_canonical_bytes_equal_the_format_1_bytes(seq: int, at: datetime, e: AuditEvent, expected: bytes) -> None:
    assert canonical_bytes(seq, at, e) == expected


def test_a_format_1_chain_hashes_as_before() -> None:
    # Format 1 records are never written any more, but the ones written before chains still verify.
    hashes, prev = [], GENESIS_HASH
    for seq, (_, at, e, _) in enumerate(_FORMAT_1, 1):
        record = AuditRecord(seq, at, e, prev, b"")
        prev = record.expected_hash()
        hashes.append(prev.hex())
    assert hashes == [
        "fd8a694fa2632f1bd764d35c46b63cd2a06747a43b01fc146569d39548c2a129",
        "c5a8c2acc168c7b0565f26e4a80e2753bb12467412d0f4998c7a4b210ded2ba6",
        "84e51f58b44a8ea61fa2fb6e0afa824c762f4dc55389d3401f9ccac7f4111982",
    ]


def test_format_2_bytes_hold_the_chain_and_chain_seq_instead_of_seq() -> None:
    _, at, e, _ = _FORMAT_1[0]
    (record,) = chain([(at, e)], 5, 41, GENESIS_HASH)
    assert record.canonical == (
        b'{"action":"secret.read","actor":"user:1","at":1714564800123456,"chain":5,"chain_seq":42,'
        b'"client_addr":"10.0.0.1","detail":{},"lineage":["7b6c8a2e-0000-5000-8000-000000000000"],"org":1,'
        b'"outcome":"ok","request_id":"req-1","secret":"db/url","service":"store",'
        b'"token_id":"7b6c8a2e-0000-5000-8000-000000000001","v":2,"vault":"prod","version":3}'
    )
    assert record.hash == chain_hash(GENESIS_HASH, record.canonical)
    # The global seq (numbered by the database) is not hashed: the stored record verifies with any.
    assert AuditRecord(977, at, e, GENESIS_HASH, record.hash, chain=5, chain_seq=42, format=2).expected_hash() == (
        record.hash
    )


def test_chain_links_each_record_to_the_one_before() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    records = list(chain([(at, event(i)) for i in range(3)], 0, 0, GENESIS_HASH))
    assert [r.chain_seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert all(r.hash == r.expected_hash() for r in records)
    verifier = ChainVerifier()
    assert all(verifier.feed(r) for r in records)
    assert verifier.finish((3, records[-1].hash)).ok


@pytest.mark.parametrize(
    "fields",
    [
        {"outcome": "maybe"},
        {"service": ""},
        {"detail": {"x": 1.5}},
        {"detail": {1: "x"}},
        {"secret": "a\x00b"},
        {"org": 2**64},
        {"org": True},
        {"version": "1"},
        {"lineage": ("ok", 3)},
        {"lineage": ("ok", None)},
        {"lineage": ("a\x00",)},
        {"actor": 7},
        {"vault": "x" * 4097},
        {"request_id": "\ud800"},
        {"action": ""},
    ],
)
def test_invalid_events_are_refused_at_construction(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        event(**fields)


def test_detail_is_frozen_at_construction() -> None:
    detail = {"reasons": ["expired"]}
    e = event(detail=detail)
    detail["reasons"].append("later")
    assert e.detail == {"reasons": ["expired"]}


def test_record_json_round_trips() -> None:
    at = datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    (record,) = chain([(at, event(lineage=("p",), detail={"k": "v"}))], 3, 0, GENESIS_HASH)
    assert AuditRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


# --- group commit and the chain ---------------------------------------------------------------


async def test_concurrent_records_share_transactions_and_form_one_chain(pool: Pool, audit_log: AuditLog) -> None:
    await asyncio.gather(*(audit_log.record(event(i)) for i in range(200)))
    stats = audit_log.stats
    assert stats.events == 200
    assert stats.batches < 200, "group commit must put concurrent events in shared transactions"
    assert stats.largest_batch > 1
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert report.checked == 200
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM store.audit_events ORDER BY seq")]
    assert seqs == list(range(1, 201))


async def test_events_of_one_call_are_consecutive(pool: Pool, audit_log: AuditLog) -> None:
    await asyncio.gather(
        *(audit_log.record(event(i, request_id=f"r{i}"), event(i, request_id=f"r{i}")) for i in range(20))
    )
    rows = await pool.fetch("SELECT seq, request_id FROM store.audit_events ORDER BY seq")
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert first["request_id"] == second["request_id"]


async def test_max_batch_caps_a_transaction(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, SCHEMA), max_batch=8)
    await log.start()
    try:
        await asyncio.gather(*(log.record(event(i)) for i in range(100)))
    finally:
        await log.close()
    assert log.stats.largest_batch <= 8
    assert log.stats.batches >= 13
    assert (await queries(pool).verify()).ok


async def test_stored_rows_are_the_events_lineages_and_details_included(pool: Pool, audit_log: AuditLog) -> None:
    # The batch goes as one array per column, each row's lineage a slice of one flat array: a slice off by
    # one would give an event its neighbour's lineage, and the chain would still verify what was stored.
    events = [
        event(0),
        event(1, lineage=("p1", "p2")),
        event(2, lineage=(), detail={"reasons": ["expired", "revoked"], "n": 2}),
        event(3, lineage=("q1", "q2", "q3")),
        event(4, lineage=("r1",), org=None, version=None, detail={"nested": {"k": [None, True]}}),
    ]
    await audit_log.record(*events)
    rows = await fetch_rows(pool, SCHEMA, after_seq=0, heads={0: len(events)}, limit=10)
    assert [record_from_row(row).event for row in rows] == events
    assert (await queries(pool).verify()).ok


async def test_stored_times_are_exactly_the_hashed_microseconds(pool: Pool) -> None:
    # The insert turns each record's hashed microseconds into its at column in SQL;
    # a rounding anywhere would break the chain of an honest log.
    times = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 19, 30, 0, 123_457, tzinfo=UTC),
        datetime(2300, 6, 1, 12, 0, 0, 999_999, tzinfo=UTC),  # beyond 2**53 microseconds
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 1, 21, 30, 0, 654_321, tzinfo=timezone(timedelta(hours=2))),
    ]
    clock = iter(times)
    log = AuditLog(PgAuditRepository(pool, SCHEMA), clock=lambda: next(clock))
    await log.start()
    try:
        for i in range(len(times)):
            await log.record(event(i))
    finally:
        await log.close()
    rows = await pool.fetch("SELECT at FROM store.audit_events ORDER BY seq")
    assert [r["at"] for r in rows] == times
    report = await queries(pool).verify()
    assert report.ok, report.message


async def test_two_logs_on_one_table_keep_a_chain_each(pool: Pool, database_url: str) -> None:
    # Two "processes": separate pools, separate writers, one table.
    other_pool = await create_pool(database_url, max_size=4)
    first, second = AuditLog(PgAuditRepository(pool, SCHEMA)), AuditLog(PgAuditRepository(other_pool, SCHEMA))
    await first.start()
    await second.start()
    try:
        await asyncio.gather(
            *(first.record(event(i, service="node-a")) for i in range(150)),
            *(second.record(event(i, service="node-b")) for i in range(150)),
        )
    finally:
        await first.close()
        await second.close()
        await close_pool(other_pool)
    report = await queries(pool).verify()
    assert report.ok, report.message
    assert report.checked == 300
    assert [c.checked for c in report.chains if c.chain >= 0] == [150, 150]
    chains = await pool.fetch(
        "SELECT chain, array_agg(DISTINCT service) AS services FROM store.audit_events GROUP BY chain"
    )
    assert sorted(tuple(r["services"]) for r in chains) == [("node-a",), ("node-b",)]
    by_service = await pool.fetch("SELECT service, count(*) AS n FROM store.audit_events GROUP BY service")
    assert {r["service"]: r["n"] for r in by_service} == {"node-a": 150, "node-b": 150}


async def test_close_commits_what_is_queued_and_refuses_more(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, SCHEMA))
    await log.start()
    tasks = [asyncio.create_task(log.record(event(i))) for i in range(50)]
    await asyncio.sleep(0)  # let every task enqueue
    await log.close()
    await asyncio.gather(*tasks)
    assert await pool.fetchval("SELECT count(*) FROM store.audit_events") == 50
    with pytest.raises(Unavailable):
        await log.record(event())


async def test_record_before_start_is_unavailable(pool: Pool) -> None:
    with pytest.raises(Unavailable):
        await AuditLog(PgAuditRepository(pool, SCHEMA)).record(event())


async def test_each_schema_has_its_own_chain(pool: Pool) -> None:
    store, authority = AuditLog(PgAuditRepository(pool, "store")), AuditLog(PgAuditRepository(pool, "authority"))
    await store.start()
    await authority.start()
    try:
        await store.record(event(1))
        await authority.record(event(1, service="authority", action="token.mint"))
        await authority.record(event(2, service="authority", action="token.mint"))
    finally:
        await store.close()
        await authority.close()
    assert (await queries(pool, "store").verify()).checked == 1
    assert (await queries(pool, "authority").verify()).checked == 2


# --- append-only and tamper detection ---------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE store.audit_events SET secret = 'x' WHERE seq = 1",
        "DELETE FROM store.audit_events WHERE seq = 1",
        "TRUNCATE store.audit_events",
        "UPDATE store.audit_chains SET seq = 0",
        "UPDATE store.audit_chains SET chain = 7",
        "DELETE FROM store.audit_chains",
        "TRUNCATE store.audit_chains",
        "UPDATE store.audit_checkpoints SET body = '{}'",
        "DELETE FROM store.audit_checkpoints",
    ],
)
async def test_the_table_refuses_changes_even_from_its_owner(pool: Pool, audit_log: AuditLog, sql: str) -> None:
    await audit_log.record(event())
    await checkpoint(pool)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="refused"):
        await pool.execute(sql)


async def test_verify_names_an_edited_event(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(50)))
    await tamper(pool, "UPDATE store.audit_events SET secret = 'other' WHERE seq = 42")
    report = await queries(pool).verify()
    assert not report.ok
    assert report.broken_seq == 42
    assert report.checked == 41
    assert report.message == "chain 0: event 42: hash does not match its contents (edited?)"


async def test_verify_names_an_edit_hidden_by_a_recomputed_hash(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(50)))
    row = await pool.fetchrow("SELECT * FROM store.audit_events WHERE seq = 42")
    forged = AuditRecord(
        42, row["at"], event(41, outcome="denied"), bytes(row["prev_hash"]), b"", chain=0, chain_seq=42, format=2
    )
    await tamper(
        pool,
        "UPDATE store.audit_events SET outcome = 'denied', hash = $1 WHERE seq = 42",
        forged.expected_hash(),
    )
    report = await queries(pool).verify()
    assert report.broken_seq == 43
    assert report.message == "chain 0: event 43: prev_hash does not match event 42"


async def test_verify_names_a_deleted_event(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(50)))
    await tamper(pool, "DELETE FROM store.audit_events WHERE seq = 43")
    report = await queries(pool).verify()
    assert not report.ok
    assert report.broken_seq == 43
    assert report.message == "chain 0: event 43 missing (deleted?): seq jumps from 42 to 44"


async def test_verify_notices_the_newest_events_deleted(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(10)))
    await tamper(pool, "DELETE FROM store.audit_events WHERE seq > 8")
    report = await queries(pool).verify()
    assert report.broken_seq == 9
    assert report.message.startswith("chain 0: events 9-10 missing (deleted?)")


async def test_verify_reports_an_unreadable_row(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(5)))
    await tamper(pool, """UPDATE store.audit_events SET detail = '{"x": 1.5}' WHERE seq = 3""")
    report = await queries(pool).verify()
    assert report.broken_seq == 3
    assert "(edited?)" in report.message


async def test_verify_of_an_empty_log_is_ok(pool: Pool) -> None:
    report = await queries(pool).verify()
    assert report.ok
    assert report.checked == 0


async def test_verify_pages_through_more_than_one_page(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(2500)))
    report = await queries(pool).verify()
    assert report.ok
    assert report.checked == 2500


# --- fail closed ------------------------------------------------------------------------------


def _as_role(dsn: str, role: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
async def app_role(pool: Pool) -> AsyncIterator[str]:
    """A non-superuser role with what the audit writer needs (superusers bypass privileges)."""
    role = f"cvault_app_{secrets.token_hex(4)}"
    await pool.execute(f"CREATE ROLE {role} LOGIN")
    await pool.execute(f"GRANT USAGE ON SCHEMA store TO {role}")
    await pool.execute(f"GRANT SELECT, INSERT ON store.audit_events TO {role}")
    await pool.execute(f"GRANT SELECT, INSERT, UPDATE ON store.audit_chains TO {role}")
    await pool.execute(f"GRANT SELECT, INSERT ON store.audit_checkpoints TO {role}")
    await pool.execute(f"GRANT USAGE ON SEQUENCE store.audit_event_seq, store.audit_chain_ids TO {role}")
    try:
        yield role
    finally:
        await pool.execute(f"DROP OWNED BY {role}")
        await pool.execute(f"DROP ROLE {role}")


async def test_record_raises_unavailable_when_the_insert_fails(
    pool: Pool, database_url: str, app_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    app_pool = await create_pool(_as_role(database_url, app_role), max_size=2)
    log = AuditLog(PgAuditRepository(app_pool, SCHEMA))
    await log.start()
    try:
        await log.record(event(1))  # the grants suffice
        await pool.execute(f"REVOKE INSERT ON store.audit_events FROM {app_role}")
        with pytest.raises(Unavailable, match="audit log unavailable; the request was not served"):
            await log.record(event(2, secret="db/password"))
        assert log.stats.failed_batches == 1
        # Nothing half-written: neither the event nor a moved head.
        assert await pool.fetchval("SELECT max(seq) FROM store.audit_chains") == 1
        await pool.execute(f"GRANT INSERT ON store.audit_events TO {app_role}")
        await log.record(event(3))  # the writer recovers once the database does
    finally:
        await log.close()
        await close_pool(app_pool)
    assert "InsufficientPrivilegeError" in caplog.text
    assert "db/password" not in caplog.text
    assert (await queries(pool).verify()).checked == 2


async def test_record_raises_unavailable_when_the_database_is_unreachable() -> None:
    # min_size=0: the pool opens nothing until asked; port 1 has no PostgreSQL.
    dead_pool = await create_pool("postgresql://postgres@127.0.0.1:1/nowhere", min_size=0)
    log = AuditLog(PgAuditRepository(dead_pool, SCHEMA))
    await log.start()
    try:
        with pytest.raises(Unavailable, match="audit log unavailable"):
            await log.record(event())
    finally:
        await log.close()
        await close_pool(dead_pool)


# --- export and query -------------------------------------------------------------------------


async def test_export_writes_json_lines_that_verify(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i, lineage=("parent",), detail={"n": i}) for i in range(30)))
    exported = [line async for line in queries(pool).export()]
    assert json.loads(exported[-1]) == {"kind": "end", "events": 30}
    heads = exported.index(next(line for line in exported if '"kind":"heads"' in line))
    lines = exported[heads + 1 : -1]
    assert len(lines) == 30
    bodies = [json.loads(line) for line in lines]
    assert [b["seq"] for b in bodies] == list(range(1, 31))
    assert bodies[4]["detail"] == {"n": 4}
    assert bodies[4]["lineage"] == ["parent"]
    assert len(bytes.fromhex(bodies[4]["hash"])) == 32
    assert verify_lines(exported).ok
    edited = dict(bodies[9], secret="elsewhere")
    exported[heads + 1 + 9] = json.dumps(edited) + "\n"
    report = verify_lines(exported)
    assert report.broken_seq == 10
    assert report.message == "chain 0: event 10: hash does not match its contents (edited?)"


async def test_query_filters(pool: Pool) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    times = iter(t0 + timedelta(minutes=i) for i in range(100))
    log = AuditLog(PgAuditRepository(pool, SCHEMA), clock=lambda: next(times))
    await log.start()
    try:
        await log.record(event(1, org=1, secret="a", actor="user:1", action="secret.read"))  # t0
        await log.record(event(2, org=1, secret="b", actor="user:2", action="secret.write"))  # t0+1
        await log.record(event(3, org=2, secret="a", actor="user:1", outcome="denied"))  # t0+2
        await log.record(event(4, org=1, secret="a", token_id="child", lineage=("parent",)))  # t0+3
        await log.record(event(5, org=1, secret="a", token_id="parent", outcome="error"))  # t0+4
    finally:
        await log.close()

    async def seqs(**filters: object) -> list[int]:
        events, _ = await queries(pool).query(**filters)  # type: ignore[arg-type]
        return [e["seq"] for e in events]

    assert await seqs(org=1) == [1, 2, 4, 5]
    assert await seqs(org=1, secret="a") == [1, 4, 5]
    assert await seqs(actor="user:2") == [2]
    assert await seqs(action="secret.write") == [2]
    assert await seqs(outcome="denied") == [3]
    assert await seqs(token_id="parent") == [4, 5], "a token's query includes tokens derived from it"
    assert await seqs(token_id="child") == [4]
    assert await seqs(since=t0 + timedelta(minutes=1), until=t0 + timedelta(minutes=3)) == [2, 3]
    assert await seqs(org=1, newest_first=True) == [5, 4, 2, 1]
    events, _ = await queries(pool).query(org=2)
    (only,) = events
    assert only["at"] == (t0 + timedelta(minutes=2)).isoformat()
    assert only["outcome"] == "denied"


async def test_query_cursor_pagination(pool: Pool, audit_log: AuditLog) -> None:
    await audit_log.record(*(event(i) for i in range(10)))
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        events, cursor = await queries(pool).query(org=1, cursor=cursor, limit=3)
        seen += [e["seq"] for e in events]
        pages += 1
        if cursor is None:
            break
    assert seen == list(range(1, 11))
    assert pages == 4
    newest, cursor = await queries(pool).query(limit=4, newest_first=True)
    older, last = await queries(pool).query(limit=4, newest_first=True, cursor=cursor)
    assert [e["seq"] for e in newest + older] == [10, 9, 8, 7, 6, 5, 4, 3]
    assert last == 3
    with pytest.raises(ValueError):
        await queries(pool).query(limit=0)


async def test_query_uses_an_index(pool: Pool) -> None:
    rows = await pool.fetch(
        "EXPLAIN SELECT seq FROM store.audit_events WHERE org = 1 AND secret = 'a' AND seq > 0 ORDER BY seq LIMIT 10"
    )
    assert "audit_events_org_secret_seq" in "\n".join(r[0] for r in rows)


# --- the command line -------------------------------------------------------------------------


async def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, *argv: str) -> int:
    monkeypatch.setenv("CVAULT_DATABASE_URL", database_url)
    # The CLI runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(main, list(argv))


async def test_cli_verify_and_export(
    pool: Pool,
    audit_log: AuditLog,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    await audit_log.record(*(event(i) for i in range(12)))
    assert await run_cli(monkeypatch, database_url, "audit", "verify", "--schema", "store") == 0
    assert "chain 0: 12 events verified; the chain is intact" in capsys.readouterr().out

    out = tmp_path / "audit.jsonl"
    assert await run_cli(monkeypatch, database_url, "audit", "export", "--output", str(out)) == 0
    assert "wrote 12 store audit event(s)" in capsys.readouterr().err
    assert len([line for line in out.read_text().splitlines() if '"kind":' not in line]) == 12
    assert await run_cli(monkeypatch, database_url, "audit", "verify", "--file", str(out)) == 0

    await tamper(pool, "DELETE FROM store.audit_events WHERE seq = 5")
    assert await run_cli(monkeypatch, database_url, "audit", "verify") == 3
    assert "event 5 missing (deleted?): seq jumps from 4 to 6" in capsys.readouterr().out


async def test_a_crashed_writer_fails_waiting_callers_instead_of_hanging(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, SCHEMA))

    def broken_take_batch() -> list[object]:
        raise RuntimeError("bug")

    log._writer._take = broken_take_batch  # type: ignore[method-assign]
    await log.start()
    try:
        with pytest.raises(Unavailable):
            await log.record(event())
        with pytest.raises(Unavailable):
            await log.record(event())
    finally:
        await log.close()


async def test_a_batch_that_hangs_times_out_as_unavailable_and_the_writer_recovers(pool: Pool) -> None:
    log = AuditLog(PgAuditRepository(pool, SCHEMA), timeout=0.5)
    await log.start()
    try:
        async with pool.acquire() as blocker, blocker.transaction():
            # Something holds the table and does not let go (another chain's head lock would not
            # stop this writer: it would claim a chain of its own).
            await blocker.execute("LOCK TABLE store.audit_events IN EXCLUSIVE MODE")
            with pytest.raises(Unavailable):
                await log.record(event(1))
        await log.record(event(2))  # on a fresh connection, once the lock is free
    finally:
        await log.close()
    report = await queries(pool).verify()
    assert report.ok
    assert report.checked == 1
