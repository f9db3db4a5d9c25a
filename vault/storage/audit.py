"""SQL of the audit log: ``<schema>.audit_events`` and its head row.

Appends lock the head row (``FOR UPDATE``), let the caller place the batch in
the chain after the head, insert the whole batch with one statement and move
the head, all in one transaction. Writers in other processes wait for the lock,
so there is one chain per schema and seq order is commit order.

Rows come back as plain dicts (``at`` a UTC datetime, hashes ``bytes``,
``detail`` parsed JSON) so a verifier can look at a row even when tampering has
made it invalid as an event.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from vault.audit.event import AuditEvent, AuditRecord, placed_at
from vault.errors import Unavailable

from .connection import DedicatedConnection
from .pool import CONNECTION_ERRORS, database_errors
from .schema import check_schema, quote_identifier

__all__ = [
    "FILTER_COLUMNS",
    "PgAuditRepository",
    "append_in_transaction",
    "append_records",
    "fetch_head",
    "fetch_rows",
    "record_in_transaction",
    "select_rows",
]

_COLUMNS = (
    "seq, at, service, action, outcome, org, vault, secret, version, token_id, lineage, actor, "
    "client_addr, request_id, detail::text AS detail, prev_hash, hash"
)

# Columns AuditQueries.query may filter on by equality; token_id is special (see select_rows).
FILTER_COLUMNS = ("org", "vault", "secret", "actor", "action", "outcome")

_UNAVAILABLE = "audit log unavailable; the request was not served"


def _table(schema: str, name: str) -> str:
    return f"{quote_identifier(check_schema(schema))}.{name}"


@functools.cache  # built once per schema, not per batch
def _insert_sql(schema: str) -> str:
    # One statement for the whole batch and three typed arrays: each record's canonical JSON (the bytes
    # that were hashed), its prev_hash and its hash. Every column, at included, is read back out of that
    # JSON, so a row holds exactly what its hash covers; and three arrays cost the store a fraction of
    # what one array per column costs to encode (asyncpg encodes each element on its own). All three are
    # text[], the hashes in hex: asyncpg knows text[] without asking the server, while a bytea[] (or
    # bigint[]) parameter makes it introspect the type on each new connection, and that introspection
    # leaves a session setting (jit) on a pooled connection (tests/test_pool_session_state.py).
    # (ASCII-only JSON needs a UTF8 database for non-ASCII text, like any jsonb with \u escapes.)
    return (
        f"INSERT INTO {_table(schema, 'audit_events')} "  # noqa: S608 (checked schema)
        "(seq, at, service, action, outcome, org, vault, secret, version, token_id, lineage, actor, "
        "client_addr, request_id, detail, prev_hash, hash) "
        "SELECT (u.j->>'seq')::bigint, "
        # Integer microseconds to timestamptz, exactly: whole seconds and the rest apart, so
        # each product of an integer and an interval is exact in double precision.
        "timestamptz 'epoch' + ((u.j->>'at')::bigint / 1000000) * interval '1 second' "
        "+ ((u.j->>'at')::bigint % 1000000) * interval '1 microsecond', "
        "u.j->>'service', u.j->>'action', u.j->>'outcome', "
        "(u.j->>'org')::bigint, u.j->>'vault', u.j->>'secret', (u.j->>'version')::bigint, u.j->>'token_id', "
        "ARRAY(SELECT jsonb_array_elements_text(u.j->'lineage')), u.j->>'actor', u.j->>'client_addr', "
        "u.j->>'request_id', u.j->'detail', decode(u.prev_hash, 'hex'), decode(u.hash, 'hex') "
        # text[]::jsonb[] parses each record's JSON once, before the columns are taken from it.
        "FROM unnest($1::text[]::jsonb[], $2::text[], $3::text[]) AS u(j, prev_hash, hash)"
    )


def _parameters(records: Sequence[AuditRecord]) -> tuple[list[str], list[str], list[str]]:
    """The batch as the insert's three arrays: the records' canonical JSON, prev_hash and hash (hex)."""
    return (
        [r.canonical.decode("ascii") for r in records],
        [r.prev_hash.hex() for r in records],
        [r.hash.hex() for r in records],
    )


@functools.cache
def _append_if_head_sql(schema: str) -> str:
    # The head moves only if it is still where this writer last left it; the insert
    # happens only if the head moved. One statement, so one round trip and one commit.
    return (
        f"WITH moved AS (UPDATE {_table(schema, 'audit_head')} SET seq = $6, hash = $7 "  # noqa: S608
        "WHERE seq = $4 AND hash = $5 RETURNING 1) " + _insert_sql(schema) + " WHERE EXISTS (SELECT 1 FROM moved)"
    )


async def append_records(
    conn: Any,
    schema: str,
    place: Callable[[int, bytes], Sequence[AuditRecord]],
    *,
    expected_head: tuple[int, bytes] | None = None,
) -> Sequence[AuditRecord]:
    """Append one batch in one transaction on ``conn`` (an asyncpg connection).

    ``place(last_seq, last_hash)`` returns the records to insert, already chained
    after that head. With ``expected_head`` (the head this writer committed last)
    the batch is first tried as a single compare-and-set statement; if another
    writer moved the head meanwhile, nothing is written by that attempt and the
    batch is placed again with the head locked. Raises :class:`Unavailable` when
    anything fails; then nothing was written.
    """
    try:
        if expected_head is not None:
            records = place(*expected_head)
            if not records:
                return records
            status = await conn.execute(
                _append_if_head_sql(schema),
                *_parameters(records),
                expected_head[0],
                expected_head[1],
                records[-1].seq,
                records[-1].hash,
            )
            if status == f"INSERT 0 {len(records)}":
                return records
        async with conn.transaction():
            records = await append_in_transaction(conn, schema, place)
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    return records


async def append_in_transaction(
    conn: Any, schema: str, place: Callable[[int, bytes], Sequence[AuditRecord]]
) -> Sequence[AuditRecord]:
    """Append inside the transaction already open on ``conn``: the records commit or roll back with it.

    Locks the head row (``FOR UPDATE``, the lock every appender takes, the group
    committer included), places the records after it, inserts them and moves the
    head. A state change calls this last, just before its ``COMMIT``, so it holds
    the head for one round trip. A statement the database refuses (a privilege
    taken away, a trigger) raises :class:`Unavailable`: the change cannot be
    audited, so it rolls back. Connection errors propagate unchanged, for the
    caller's transaction to map.
    """
    try:
        head = await conn.fetchrow(
            f"SELECT seq, hash FROM {_table(schema, 'audit_head')} FOR UPDATE"  # noqa: S608
        )
        if head is None:
            raise Unavailable("audit log unavailable (its head row is missing); the request was not served")
        records = place(head["seq"], bytes(head["hash"]))
        if records:
            await conn.execute(_insert_sql(schema), *_parameters(records))
            await conn.execute(
                f"UPDATE {_table(schema, 'audit_head')} SET seq = $1, hash = $2",  # noqa: S608
                records[-1].seq,
                records[-1].hash,
            )
    except asyncpg.PostgresError as exc:
        raise Unavailable("audit log unavailable; nothing was changed, try again") from exc
    return records


async def record_in_transaction(
    transaction: Any, schema: str, *events: AuditEvent, clock: Callable[[], datetime] | None = None
) -> None:
    """:meth:`vault.audit.log.AuditLog.record_in` for a process that runs no log of its own (the CLI's key rotations).

    The events join ``schema``'s one chain under its head lock, inside ``transaction``
    (an asyncpg connection in one), and commit or roll back with it.
    """
    if events:
        at = clock() if clock is not None else datetime.now(UTC)
        await append_in_transaction(transaction, schema, placed_at(at, events))


async def fetch_head(pool: Any, schema: str) -> tuple[int, bytes]:
    """The last seq and hash the log committed ``(0, 32 zero bytes)`` when empty."""
    with database_errors():
        row = await pool.fetchrow(f"SELECT seq, hash FROM {_table(schema, 'audit_head')}")  # noqa: S608
    if row is None:
        raise Unavailable("audit log head row is missing; was the database migrated?")
    return row["seq"], bytes(row["hash"])


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(record)
    row["lineage"] = list(row["lineage"] or ())
    row["detail"] = json.loads(row["detail"]) if row["detail"] is not None else None
    row["prev_hash"] = bytes(row["prev_hash"])
    row["hash"] = bytes(row["hash"])
    return row


async def fetch_rows(pool: Any, schema: str, *, after_seq: int, upto_seq: int, limit: int) -> list[dict[str, Any]]:
    """Rows with ``after_seq < seq <= upto_seq`` in seq order, at most ``limit``."""
    with database_errors():
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM {_table(schema, 'audit_events')} "  # noqa: S608
            "WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            after_seq,
            upto_seq,
            limit,
        )
    return [_row(r) for r in rows]


async def select_rows(
    pool: Any,
    schema: str,
    *,
    equals: Mapping[str, Any],
    token_id: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: int | None,
    limit: int,
    newest_first: bool,
) -> list[dict[str, Any]]:
    """Rows matching every filter, paged by seq after (or, newest first, before) ``cursor``.

    ``token_id`` matches events of that token and of every token derived from it
    (its id in their lineage). ``since`` is inclusive, ``until`` exclusive.
    """
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, value in equals.items():
        if column not in FILTER_COLUMNS:
            raise ValueError(f"cannot filter audit events on {column!r}")
        where.append(f"{column} = {arg(value)}")
    if token_id is not None:
        ref = arg(token_id)
        where.append(f"(token_id = {ref} OR lineage @> ARRAY[{ref}::text])")
    if since is not None:
        where.append(f"at >= {arg(since)}")
    if until is not None:
        where.append(f"at < {arg(until)}")
    if cursor is not None:
        where.append(f"seq {'<' if newest_first else '>'} {arg(cursor)}")
    sql = f"SELECT {_COLUMNS} FROM {_table(schema, 'audit_events')}"  # noqa: S608 (fixed columns, $n values)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT {arg(limit)}"
    with database_errors():
        rows = await pool.fetch(sql, *args)
    return [_row(r) for r in rows]


class PgAuditRepository:
    """Implements :class:`vault.audit.interfaces.AuditRepository` on ``<schema>.audit_events``.

    The group-committing writer's batches go over a connection of its own, opened with the pool's
    settings with the first batch (so a database that is down at start fails the first ``record``,
    not the service's start), and reopened after it is lost: a request that holds a pool
    connection while it waits for its audit event can never starve the writer. Queries use the pool.
    """

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self._schema = check_schema(schema)
        self._conn = DedicatedConnection(pool)

    @property
    def schema(self) -> str:
        return self._schema

    async def append(
        self,
        place: Callable[[int, bytes], Sequence[AuditRecord]],
        *,
        expected_head: tuple[int, bytes] | None,
        timeout: float,
    ) -> Sequence[AuditRecord]:
        conn = await self._conn.get()
        try:
            async with asyncio.timeout(timeout):  # no task per batch, unlike wait_for
                return await append_records(conn, self._schema, place, expected_head=expected_head)
        except TimeoutError:
            # The statement may still be running on that connection; start afresh.
            self._conn.discard()
            raise Unavailable(_UNAVAILABLE) from None
        except Unavailable:
            if not self._conn.connected:
                self._conn.discard()
            raise

    async def append_in(
        self, transaction: object, place: Callable[[int, bytes], Sequence[AuditRecord]]
    ) -> Sequence[AuditRecord]:
        return await append_in_transaction(transaction, self._schema, place)

    async def head(self) -> tuple[int, bytes]:
        return await fetch_head(self._pool, self._schema)

    async def rows(self, *, after_seq: int, upto_seq: int, limit: int) -> list[dict[str, Any]]:
        return await fetch_rows(self._pool, self._schema, after_seq=after_seq, upto_seq=upto_seq, limit=limit)

    async def select(
        self,
        *,
        equals: Mapping[str, Any],
        token_id: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: int | None,
        limit: int,
        newest_first: bool,
    ) -> list[dict[str, Any]]:
        return await select_rows(
            self._pool,
            self._schema,
            equals=equals,
            token_id=token_id,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            newest_first=newest_first,
        )

    async def close(self) -> None:
        await self._conn.close()
