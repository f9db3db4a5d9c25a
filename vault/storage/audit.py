"""SQL of the audit log: ``<schema>.audit_events``, its chains' heads and its checkpoints.

Every writer appends to a chain of its own (``audit_chains``, docs/audit.md
"Chains"): it claims a chain whose lease expired (``FOR UPDATE SKIP LOCKED``, so
claiming never waits) or starts a new one, and renews the lease with every
append. An append locks only its chain's row, places the batch after that
chain's head, inserts the whole batch with one statement and moves the head, all
in one transaction; a head moves only ``WHERE writer =`` the appender, so a
writer whose lease was taken over claims a chain again instead of forking one.
Writers in other processes hold other chains and do not wait for each other.

Rows come back as plain dicts (``at`` a UTC datetime, hashes ``bytes``,
``detail`` parsed JSON) so a verifier can look at a row even when tampering has
made it invalid as an event.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from vault.audit.chain import checkpoint_body
from vault.audit.event import GENESIS_HASH, AuditEvent, AuditRecord, placed_at
from vault.audit.interfaces import AuditRow, CheckpointRow, Place
from vault.errors import Unavailable

from .connection import DedicatedConnection
from .pool import CONNECTION_ERRORS, Connection, Pool, connection_of, database_errors
from .schema import check_schema, quote_identifier

__all__ = [
    "DEFAULT_LEASE",
    "FILTER_COLUMNS",
    "ChainLease",
    "PgAuditRepository",
    "append_in_transaction",
    "append_records",
    "claim_chain",
    "fetch_chain_rows",
    "fetch_checkpoints",
    "fetch_heads",
    "fetch_rows",
    "record_in_transaction",
    "release_chain",
    "write_checkpoint",
    "writer_name",
]

_COLUMNS = (
    "seq, chain, chain_seq, format AS v, at, service, action, outcome, org, vault, secret, version, token_id, "
    "lineage, actor, client_addr, request_id, detail::text AS detail, prev_hash, hash"
)

# How long a writer holds its chain without appending before another writer may take it over.
DEFAULT_LEASE = 60.0

# Columns AuditQueries.query may filter on by equality; token_id is special (see PgAuditRepository.select).
FILTER_COLUMNS = ("org", "vault", "secret", "actor", "action", "outcome")

_UNAVAILABLE = "audit log unavailable; the request was not served"
_CLAIM_TIMEOUT = 5.0  # seconds for a writer's first claim (its own connection and transaction) inside a change


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
    # leaves a session setting (jit) on a pooled connection (tests/store/test_pool_session_state.py).
    # seq is the column's default (a sequence: no lock), taken in the batch's order (ORDER BY n), so
    # within a chain seq grows with chain_seq.
    # (ASCII-only JSON needs a UTF8 database for non-ASCII text, like any jsonb with \u escapes.)
    return (
        f"INSERT INTO {_table(schema, 'audit_events')} "  # noqa: S608 (checked schema)
        "(chain, chain_seq, format, at, service, action, outcome, org, vault, secret, version, token_id, lineage, "
        "actor, client_addr, request_id, detail, prev_hash, hash) "
        "SELECT (u.j->>'chain')::bigint, (u.j->>'chain_seq')::bigint, (u.j->>'v')::smallint, "
        # Integer microseconds to timestamptz, exactly: whole seconds and the rest apart, so
        # each product of an integer and an interval is exact in double precision.
        "timestamptz 'epoch' + ((u.j->>'at')::bigint / 1000000) * interval '1 second' "
        "+ ((u.j->>'at')::bigint % 1000000) * interval '1 microsecond', "
        "u.j->>'service', u.j->>'action', u.j->>'outcome', "
        "(u.j->>'org')::bigint, u.j->>'vault', u.j->>'secret', (u.j->>'version')::bigint, u.j->>'token_id', "
        "ARRAY(SELECT jsonb_array_elements_text(u.j->'lineage')), u.j->>'actor', u.j->>'client_addr', "
        "u.j->>'request_id', u.j->'detail', decode(u.prev_hash, 'hex'), decode(u.hash, 'hex') "
        # text[]::jsonb[] parses each record's JSON once, before the columns are taken from it.
        "FROM unnest($1::text[]::jsonb[], $2::text[], $3::text[]) WITH ORDINALITY AS u(j, prev_hash, hash, n) "
    )


def _parameters(records: Sequence[AuditRecord]) -> tuple[list[str], list[str], list[str]]:
    """The batch as the insert's three arrays: the records' canonical JSON, prev_hash and hash (hex)."""
    return (
        [r.canonical.decode("ascii") for r in records],
        [r.prev_hash.hex() for r in records],
        [r.hash.hex() for r in records],
    )


_LEASE = "now() + {} * interval '1 second'"


@functools.cache
def _append_if_head_sql(schema: str) -> str:
    # The head moves only if it is still where this writer last left it and the chain is still this
    # writer's; the insert happens only if the head moved. One statement: one round trip, one commit.
    return (
        f"WITH moved AS (UPDATE {_table(schema, 'audit_chains')} "  # noqa: S608
        f"SET seq = $7, hash = $8, lease_until = {_LEASE.format('$10::float8')} "
        "WHERE chain = $4 AND seq = $5 AND hash = $6 AND writer = $9 RETURNING 1) "
        + _insert_sql(schema)
        + "WHERE EXISTS (SELECT 1 FROM moved) ORDER BY u.n"
    )


@functools.cache
def _chain_sql(schema: str) -> dict[str, str]:
    chains = _table(schema, "audit_chains")
    lease = _LEASE.format("$2::float8")
    return {
        # This writer's chain, locked, while it still holds it.
        "lock": f"SELECT chain, seq, hash FROM {chains} WHERE chain = $1 AND writer = $2 FOR UPDATE",  # noqa: S608
        # A chain nobody holds (its lease expired, or released), skipping those being claimed right now.
        "claim": (
            f"UPDATE {chains} AS c SET writer = $1, lease_until = {lease} "  # noqa: S608
            f"FROM (SELECT chain FROM {chains} WHERE lease_until IS NULL OR lease_until < now() "
            "ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED) AS free "
            "WHERE c.chain = free.chain RETURNING c.chain, c.seq, c.hash"
        ),
        "new": (
            f"INSERT INTO {chains} (seq, hash, writer, lease_until) "  # noqa: S608
            f"VALUES (0, decode(repeat('00', 32), 'hex'), $1, {lease}) RETURNING chain, seq, hash"
        ),
        "move": (
            f"UPDATE {chains} SET seq = $2, hash = $3, lease_until = {_LEASE.format('$4::float8')} "  # noqa: S608
            "WHERE chain = $1"
        ),
        "release": f"UPDATE {chains} SET writer = NULL, lease_until = NULL WHERE chain = $1 AND writer = $2",  # noqa: S608
    }


def writer_name(kind: str) -> str:
    """A writer's name in ``audit_chains.writer``: which host and process, and a nonce (one process may run two)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ChainLease:
    """The chain a writer appends to: its name, its lease, and the chain it holds (None: none yet)."""

    __slots__ = ("chain", "lease", "writer")

    def __init__(self, writer: str, lease: float = DEFAULT_LEASE) -> None:
        self.writer = writer
        self.lease = lease
        self.chain: int | None = None


async def claim_chain(conn: Connection, schema: str, holder: ChainLease) -> None:
    """Claim a chain for ``holder`` in a transaction of its own on ``conn`` (committed when this returns)."""
    sql = _chain_sql(schema)
    async with conn.transaction():
        head = await conn.fetchrow(sql["claim"], holder.writer, holder.lease)
        if head is None:
            head = await conn.fetchrow(sql["new"], holder.writer, holder.lease)
    holder.chain = head["chain"]


async def _hold(conn: Connection, schema: str, holder: ChainLease) -> Any:
    """Lock the writer's chain row, claiming a chain first if it holds none (any more)."""
    sql = _chain_sql(schema)
    head = None
    if holder.chain is not None:
        head = await conn.fetchrow(sql["lock"], holder.chain, holder.writer)
    if head is None:
        # Lost (taken over after the lease expired) or never held. A claim inside a transaction that
        # rolls back is undone with it; the next append then finds the chain not ours and claims again.
        head = await conn.fetchrow(sql["claim"], holder.writer, holder.lease)
        if head is None:
            head = await conn.fetchrow(sql["new"], holder.writer, holder.lease)
        holder.chain = head["chain"]
    return head


async def append_records(
    conn: Connection,
    schema: str,
    place: Place,
    holder: ChainLease,
    *,
    expected_head: tuple[int, int, bytes] | None = None,
) -> Sequence[AuditRecord]:
    """Append one batch in one transaction on ``conn`` (an asyncpg connection), to ``holder``'s chain.

    ``place(chain, last_seq, last_hash)`` returns the records to insert, already
    chained after that head. With ``expected_head`` (the chain and head this writer
    committed last) the batch is first tried as a single compare-and-set statement;
    if the head moved meanwhile (this process's own state changes append to the same
    chain) or the chain is no longer this writer's, nothing is written by that attempt
    and the batch is placed again with the chain's row locked. Raises
    :class:`Unavailable` when anything fails; then nothing was written.
    """
    try:
        if expected_head is not None and expected_head[0] == holder.chain:
            records = place(*expected_head)
            if not records:
                return records
            status = await conn.execute(
                _append_if_head_sql(schema),
                *_parameters(records),
                *expected_head,
                records[-1].chain_seq,
                records[-1].hash,
                holder.writer,
                holder.lease,
            )
            if status == f"INSERT 0 {len(records)}":
                return records
        async with conn.transaction():
            records = await _append_locked(conn, schema, place, holder)
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    return records


async def _append_locked(conn: Connection, schema: str, place: Place, holder: ChainLease) -> Sequence[AuditRecord]:
    head = await _hold(conn, schema, holder)
    records = place(head["chain"], head["seq"], bytes(head["hash"]))
    if records:
        await conn.execute(_insert_sql(schema) + "ORDER BY u.n", *_parameters(records))
        await conn.execute(
            _chain_sql(schema)["move"], head["chain"], records[-1].chain_seq, records[-1].hash, holder.lease
        )
    return records


async def append_in_transaction(
    conn: Connection, schema: str, place: Place, holder: ChainLease
) -> Sequence[AuditRecord]:
    """Append inside the transaction already open on ``conn``: the records commit or roll back with it.

    Locks ``holder``'s chain row (claiming one if it holds none), places the records
    after its head, inserts them and moves the head. Only this process's appends
    take that row: a state change calls this last, just before its ``COMMIT``, and
    waits at most for its own process's group commit. A statement the database
    refuses (a privilege taken away, a trigger) raises :class:`Unavailable`: the
    change cannot be audited, so it rolls back. Connection errors propagate
    unchanged, for the caller's transaction to map.
    """
    try:
        return await _append_locked(conn, schema, place, holder)
    except asyncpg.PostgresError as exc:
        raise Unavailable("audit log unavailable; nothing was changed, try again") from exc


async def record_in_transaction(
    transaction: Any, schema: str, *events: AuditEvent, clock: Callable[[], datetime] | None = None
) -> None:
    """:meth:`vault.audit.log.AuditLog.record_in` for a process that runs no log of its own (the CLI's key rotations).

    The events go to a chain claimed for this transaction only (one nobody holds, or a new one;
    claiming never waits) and released in it: they commit or roll back with ``transaction``
    (an asyncpg connection in one).
    """
    if events:
        at = clock() if clock is not None else datetime.now(UTC)
        holder = ChainLease(writer_name("cli"))
        await append_in_transaction(transaction, schema, placed_at(at, events), holder)
        try:
            await transaction.execute(_chain_sql(schema)["release"], holder.chain, holder.writer)
        except asyncpg.PostgresError as exc:
            raise Unavailable("audit log unavailable; nothing was changed, try again") from exc


async def release_chain(conn: Connection, schema: str, holder: ChainLease) -> None:
    """Give ``holder``'s chain up at once (a writer that closes), so the next writer takes it instead of a new one."""
    if holder.chain is not None:
        await conn.execute(_chain_sql(schema)["release"], holder.chain, holder.writer)
        holder.chain = None


def _checkpoint_lock(schema: str) -> int:
    digest = hashlib.sha256(f"cvault.audit.checkpoint.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def write_checkpoint(conn: Connection, schema: str, *, every: float) -> bool:
    """Record every chain's head in a new checkpoint, unless one was written in the last ``every`` seconds.

    Many writers call this; a transaction-scoped advisory lock taken without waiting lets one
    of them through, and the others skip. Returns whether a checkpoint was written.
    """
    checkpoints = _table(schema, "audit_checkpoints")
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _checkpoint_lock(schema)):
            return False
        last = await conn.fetchrow(
            f"SELECT id, hash, at > now() - $1::float8 * interval '1 second' AS fresh "  # noqa: S608
            f"FROM {checkpoints} ORDER BY id DESC LIMIT 1",
            every,
        )
        if last is not None and last["fresh"]:
            return False
        heads = await fetch_heads(conn, schema)
        number = 1 if last is None else last["id"] + 1
        prev = GENESIS_HASH if last is None else bytes(last["hash"])
        body = checkpoint_body(number, heads)
        await conn.execute(
            f"INSERT INTO {checkpoints} (id, body, prev_hash, hash) VALUES ($1, $2, $3, $4)",  # noqa: S608
            number,
            body,
            prev,
            hashlib.sha256(prev + body.encode("utf-8")).digest(),
        )
    return True


async def fetch_heads(conn: Connection, schema: str) -> list[tuple[int, int, bytes]]:
    """Every chain's (chain, last chain_seq, last hash), by chain."""
    with database_errors():
        rows = await conn.fetch(
            f"SELECT chain, seq, hash FROM {_table(schema, 'audit_chains')} ORDER BY chain"  # noqa: S608
        )
    return [(row["chain"], row["seq"], bytes(row["hash"])) for row in rows]


async def fetch_checkpoints(pool: Pool, schema: str, *, after_id: int, limit: int) -> list[CheckpointRow]:
    """Checkpoints with ``id > after_id`` in id order, at most ``limit``."""
    with database_errors():
        rows = await pool.fetch(
            f"SELECT id, body, prev_hash, hash FROM {_table(schema, 'audit_checkpoints')} "  # noqa: S608
            "WHERE id > $1 ORDER BY id LIMIT $2",
            after_id,
            limit,
        )
    return [
        CheckpointRow(id=row["id"], body=row["body"], prev_hash=bytes(row["prev_hash"]), hash=bytes(row["hash"]))
        for row in rows
    ]


def _row(record: Mapping[str, Any]) -> AuditRow:
    # The keys in _COLUMNS' order, as the record had them.
    detail = record["detail"]
    return AuditRow(
        seq=record["seq"],
        chain=record["chain"],
        chain_seq=record["chain_seq"],
        v=record["v"],
        at=record["at"],
        service=record["service"],
        action=record["action"],
        outcome=record["outcome"],
        org=record["org"],
        vault=record["vault"],
        secret=record["secret"],
        version=record["version"],
        token_id=record["token_id"],
        lineage=list(record["lineage"] or ()),
        actor=record["actor"],
        client_addr=record["client_addr"],
        request_id=record["request_id"],
        detail=json.loads(detail) if detail is not None else None,
        prev_hash=bytes(record["prev_hash"]),
        hash=bytes(record["hash"]),
    )


async def fetch_chain_rows(
    pool: Pool, schema: str, chain: int, *, after_seq: int, upto_seq: int, limit: int
) -> list[AuditRow]:
    """Chain ``chain``'s rows with ``after_seq < chain_seq <= upto_seq`` in chain_seq order, at most ``limit``."""
    with database_errors():
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM {_table(schema, 'audit_events')} "  # noqa: S608
            "WHERE chain = $1 AND chain_seq > $2 AND chain_seq <= $3 ORDER BY chain_seq LIMIT $4",
            chain,
            after_seq,
            upto_seq,
            limit,
        )
    return [_row(r) for r in rows]


async def fetch_rows(
    pool: Pool, schema: str, *, after_seq: int, heads: Mapping[int, int], limit: int, org: int | None = None
) -> list[AuditRow]:
    """Rows with ``seq > after_seq`` in seq order, at most ``limit``, of each chain up to its ``heads`` entry only
    (and of org ``org`` only, when given).

    Bounding each chain by a head read before paging makes the pages a fixed set: an event
    committed later, even with a lower seq than a page already read, is past its chain's bound.
    """
    chains = list(heads)
    with database_errors():
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM {_table(schema, 'audit_events')} "  # noqa: S608
            "JOIN unnest($2::text[]::bigint[], $3::text[]::bigint[]) AS h(head_chain, upto) "
            "ON chain = h.head_chain AND chain_seq <= h.upto "
            "WHERE seq > $1 AND ($5::bigint IS NULL OR org = $5) ORDER BY seq LIMIT $4",
            after_seq,
            [str(chain) for chain in chains],
            [str(heads[chain]) for chain in chains],
            limit,
            org,
        )
    return [_row(r) for r in rows]


class PgAuditRepository:
    """Implements :class:`vault.audit.interfaces.AuditRepository` on ``<schema>.audit_events``.

    The group-committing writer's batches go over a connection of its own, opened with the pool's
    settings with the first batch (so a database that is down at start fails the first ``record``,
    not the service's start), and reopened after it is lost: a request that holds a pool
    connection while it waits for its audit event can never starve the writer. Queries use the pool.
    One repository is one writer: its batches and the state changes appended through it
    (:meth:`append_in`) go to the one chain it holds (``lease`` seconds after its last append).
    Its first append claims that chain in a transaction of its own, committed before any
    append uses it, one claim at a time: concurrent first appends (a store starting under
    load) wait for that claim instead of each claiming a chain inside its own transaction,
    where none can see another's uncommitted claim.
    """

    def __init__(self, pool: Pool, schema: str, *, lease: float = DEFAULT_LEASE) -> None:
        self._pool = pool
        self._schema = check_schema(schema)
        self._conn = DedicatedConnection(pool)
        self._holder = ChainLease(writer_name(self._schema), lease)
        self._claiming = asyncio.Lock()

    async def _claimed(self, timeout: float) -> None:
        """Hold a committed chain before appending (see the class docstring)."""
        if self._holder.chain is not None:
            return
        # A connection of its own, opened for the claim: the group writer's may be mid-batch, and a
        # state change calling this holds a pool connection already (taking a second could deadlock).
        claim = DedicatedConnection(self._pool)
        try:
            # The wait for another's claim counts too: behind a claim hung on a frozen database, each
            # waiter would otherwise take its whole timeout in turn.
            async with asyncio.timeout(timeout), self._claiming:
                if self._holder.chain is not None:
                    return
                conn = await claim.get()
                with database_errors():
                    await claim_chain(conn, self._schema, self._holder)
        except TimeoutError:
            raise Unavailable(_UNAVAILABLE) from None
        finally:
            claim.discard()

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def chain(self) -> int | None:
        """The chain this writer holds (None before its first append)."""
        return self._holder.chain

    async def append(
        self, place: Place, *, expected_head: tuple[int, int, bytes] | None, timeout: float
    ) -> Sequence[AuditRecord]:
        await self._claimed(timeout)
        conn = await self._conn.get()
        try:
            async with asyncio.timeout(timeout):  # no task per batch, unlike wait_for
                return await append_records(conn, self._schema, place, self._holder, expected_head=expected_head)
        except TimeoutError:
            # The statement may still be running on that connection; start afresh.
            self._conn.discard()
            raise Unavailable(_UNAVAILABLE) from None
        except Unavailable:
            if not self._conn.connected:
                self._conn.discard()
            raise

    async def append_in(self, transaction: object, place: Place) -> Sequence[AuditRecord]:
        await self._claimed(_CLAIM_TIMEOUT)
        return await append_in_transaction(connection_of(transaction), self._schema, place, self._holder)

    async def checkpoint(self, *, every: float, timeout: float) -> bool:
        conn = await self._conn.get()
        try:
            async with asyncio.timeout(timeout):
                return await write_checkpoint(conn, self._schema, every=every)
        except TimeoutError:
            self._conn.discard()
            raise Unavailable(_UNAVAILABLE) from None
        except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
            if not self._conn.connected:
                self._conn.discard()
            raise Unavailable(_UNAVAILABLE) from exc

    async def heads(self) -> list[tuple[int, int, bytes]]:
        return await fetch_heads(self._pool, self._schema)

    async def chain_rows(self, chain: int, *, after_seq: int, upto_seq: int, limit: int) -> list[AuditRow]:
        return await fetch_chain_rows(
            self._pool, self._schema, chain, after_seq=after_seq, upto_seq=upto_seq, limit=limit
        )

    async def rows(
        self, *, after_seq: int, heads: Mapping[int, int], limit: int, org: int | None = None
    ) -> list[AuditRow]:
        return await fetch_rows(self._pool, self._schema, after_seq=after_seq, heads=heads, limit=limit, org=org)

    async def checkpoints(self, *, after_id: int, limit: int) -> list[CheckpointRow]:
        return await fetch_checkpoints(self._pool, self._schema, after_id=after_id, limit=limit)

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
        hide_audit_of: Mapping[str, str] | None = None,
    ) -> list[AuditRow]:
        """Rows matching every filter, paged by seq after (or, newest first, before) ``cursor``.

        ``token_id`` matches events of that token and of every token derived from it
        (its id in their lineage). ``since`` is inclusive, ``until`` exclusive.
        ``hide_audit_of`` (``{"actor": ..., "token_id": ...}``) leaves out the ``audit.*`` events
        any of whose columns equals its value there: a reviewer's own queries.
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
        if hide_audit_of:
            if not set(hide_audit_of) <= {"actor", "token_id"}:
                raise ValueError("hide_audit_of takes actor and token_id")
            whose = " OR ".join(f"coalesce({column} = {arg(value)}, false)" for column, value in hide_audit_of.items())
            where.append(f"NOT (action LIKE 'audit.%' AND ({whose}))")
        sql = f"SELECT {_COLUMNS} FROM {_table(self._schema, 'audit_events')}"  # noqa: S608 (fixed columns, $n values)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT {arg(limit)}"
        with database_errors():
            rows = await self._pool.fetch(sql, *args)
        return [_row(r) for r in rows]

    async def close(self) -> None:
        # Give the chain up for the next writer (best effort: only over a connection that is up).
        if self._conn.connected and self._holder.chain is not None:
            try:
                async with asyncio.timeout(5.0):
                    await release_chain(await self._conn.get(), self._schema, self._holder)
            except (TimeoutError, asyncpg.PostgresError, *CONNECTION_ERRORS):
                pass  # its lease runs out instead
        await self._conn.close()
