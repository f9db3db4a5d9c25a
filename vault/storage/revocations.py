"""Revoked token ids, kept in memory on every node and in ``<schema>.revocations``.

Checking a token is a set lookup (:meth:`RevocationWatcher.is_revoked`, no I/O);
keeping the set current is the watcher's job:

* ``revoke`` inserts the ids and sends ``pg_notify('<schema>_revocations')`` in
  the same transaction, so the notification goes out exactly when the rows are
  visible, and adds the ids to its own set at once;
* every watcher LISTENs on that channel over a connection of its own (it is a
  :class:`~vault.storage.channel_follower.ChannelFollower`); a notification wakes
  its reconcile loop immediately;
* the reconcile loop also wakes every ``reconcile_interval`` seconds and reads
  ``WHERE seq > last_seen``, so a lost notification or a dropped LISTEN
  connection (which it reopens) costs at most one interval.

``seq`` order must be commit order for ``seq > last_seen`` never to skip a row
that committed late; ``revoke`` therefore takes an ``EXCLUSIVE`` lock on the
table (other writers wait, readers do not) before it draws sequence numbers.

Revoking a token revokes the service tokens stripped from it: the authority
computes that lineage and passes every id to :meth:`revoke`.

In the authority's schema the same table also holds the other events of the
revocation feed (revoked login sessions, members removed, roles lowered), written
by :func:`append_revocation` inside the transaction that makes the change, under
the same lock; :meth:`RevocationWatcher.feed` and :meth:`~RevocationWatcher.wait_past`
serve them to ``GET /v1/revocations/feed`` (docs/revocation.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

from vault.authority.revocation_feed import MAX_SINCE_LIMIT
from vault.errors import BadRequest, Unavailable

from .channel_follower import ChannelFollower
from .pool import Connection, Pool, database_errors
from .schema import check_schema, quote_identifier

__all__ = ["FEED_KINDS", "MAX_SINCE_LIMIT", "RevocationWatcher", "append_revocation", "append_token_revocations"]

_POLL_PAGE = 10_000

FEED_KINDS = ("token", "session", "member_removed", "role_downgraded")
"""The kinds of event in the authority's revocation feed (the ``kind`` column)."""


def _table_of(schema: str) -> str:
    return f"{quote_identifier(check_schema(schema))}.revocations"


async def _lock(conn: Connection, table: str) -> None:
    # seq order must be commit order (see the module docstring): writers wait for each other.
    await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")


async def _notify(conn: Connection, channel: str) -> None:
    # Sent at commit, so listeners never poll before the rows are visible.
    await conn.execute("SELECT pg_notify($1, '')", channel)


async def append_revocation(
    conn: Connection,
    schema: str,
    kind: str,
    *,
    user_id: int,
    org_id: int | None = None,
    session_id: int | None = None,
) -> None:
    """Record a session revocation or a membership cut-off in ``<schema>.revocations``.

    Runs on ``conn`` inside the caller's transaction (the one that revokes the
    session or changes the membership), so the event commits with the change or
    not at all. ``revoked_at`` is the statement's clock, taken under the lock: a
    discharge issued before it was issued before the change.
    """
    if kind not in FEED_KINDS[1:]:
        raise ValueError(f"unknown revocation kind {kind!r}")
    table = _table_of(schema)
    await _lock(conn, table)
    await conn.execute(
        f"INSERT INTO {table} (kind, org_id, user_id, session_id, revoked_at) "  # noqa: S608 (checked schema)
        "VALUES ($1, $2, $3, $4, clock_timestamp())",
        kind,
        org_id,
        user_id,
        session_id,
    )
    await _notify(conn, f"{schema}_revocations")


async def append_token_revocations(
    conn: Connection, schema: str, token_ids: list[str], reason: str | None = None
) -> set[str]:
    """Revoke ``token_ids`` (UUIDs) in ``<schema>.revocations`` inside the caller's transaction.

    Returns the ids that were not revoked before. The caller's transaction is the
    one that marks the tokens revoked and records the audit event, so all three
    commit together; listeners hear of it at that commit.
    """
    table = _table_of(schema)
    await _lock(conn, table)
    rows = await conn.fetch(
        f"INSERT INTO {table} (token_id, reason) "  # noqa: S608 (checked schema)
        "SELECT t, $2 FROM unnest($1::uuid[]) AS t "
        "ON CONFLICT (token_id) DO NOTHING RETURNING token_id::text",
        token_ids,
        reason,
    )
    await _notify(conn, f"{schema}_revocations")
    return {row["token_id"] for row in rows}


def _iso(value: Any) -> str:
    return str(value.astimezone(UTC).isoformat())


def _token_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise BadRequest("token ids are UUIDs") from None


class RevocationWatcher(ChannelFollower):
    """The set of revoked token ids of one schema, kept current within ``reconcile_interval``.

    ``listen=False`` skips LISTEN/NOTIFY (tests use it to show the poll alone
    suffices). ``max_staleness`` (seconds, None for never) makes :meth:`is_revoked`
    fail closed with ``Unavailable`` when no reconcile has succeeded for that
    long: an unreachable database must not make revoked tokens valid again.
    ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        pool: Pool,
        schema: str,
        *,
        reconcile_interval: float = 0.5,
        listen: bool = True,
        max_staleness: float | None = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        channel = f"{check_schema(schema)}_revocations"
        super().__init__(pool, channel, interval=reconcile_interval, listen=listen, name=f"revocations-{schema}")
        self._pool = pool
        self._schema = schema
        self._table = _table_of(schema)
        self._max_staleness = max_staleness
        self._clock = clock
        self._revoked: set[str] = set()
        self._last_seq = 0
        self._synced_at: float | None = None
        # Set (and replaced) whenever last_seq advances; feed readers wait on it.
        self._advanced = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------
    # start() (ChannelFollower's) loads every revoked id, LISTENs and starts the loop; it raises
    # Unavailable if the first load fails: a node that cannot know what is revoked must not serve.

    async def close(self) -> None:
        await super().close()
        self._advanced.set()  # a closing watcher releases its feed readers

    # --- checks (no I/O) --------------------------------------------------------------------

    def is_revoked(self, token_id: str) -> bool:
        """True if ``token_id`` is revoked; ``Unavailable`` if the watcher cannot vouch for its answer."""
        self._check_fresh()
        return token_id.lower() in self._revoked

    def any_revoked(self, token_ids: Iterable[str]) -> str | None:
        """The first of ``token_ids`` (a token and its lineage) that is revoked, or None."""
        self._check_fresh()
        for token_id in token_ids:
            if token_id.lower() in self._revoked:
                return token_id
        return None

    def _check_fresh(self) -> None:
        if self._synced_at is None:
            raise Unavailable("revocation list not loaded yet; try again")
        if self._max_staleness is not None and self._clock() - self._synced_at > self._max_staleness:
            raise Unavailable("revocation list is out of date (database unreachable); try again")

    @property
    def last_seq(self) -> int:
        """The highest revocation seq this node has seen."""
        return self._last_seq

    # --- writes and reads -----------------------------------------------------------------

    async def revoke(self, token_ids: Iterable[str], reason: str | None = None) -> list[str]:
        """Revoke every id in ``token_ids``; returns those not revoked before (in the order given).

        Raises ``BadRequest`` for an id that is not a UUID, ``Unavailable`` if the
        database is unreachable (then nothing was revoked).
        """
        ids = list(dict.fromkeys(_token_id(t) for t in token_ids))
        if not ids:
            return []
        with database_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                fresh = await append_token_revocations(conn, self._schema, ids, reason)
        self.remember(ids)
        return [token_id for token_id in ids if token_id in fresh]

    def remember(self, token_ids: Iterable[str]) -> None:
        """Ids whose revocation this node just committed: refused here at once, before the next reconcile."""
        self._revoked.update(t.lower() for t in token_ids)
        self.poke()  # reconcile now, so feed readers of this node hear of it at once

    async def since(self, seq: int, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Token revocations after ``seq`` in their own numbering, for ``GET /v1/revocations?since=`` (the
        authority's table only).

        Returns ``([{token_id, seq, revoked_at}], next)``; ``seq`` is the row's ``list_seq``
        (1, 2, 3, ... over token revocations only: the feed's numbers would show how many
        session and membership events came between), ``next`` the last one returned
        (``seq`` itself when there is nothing new), to pass as ``since`` next time.
        Reasons are not included: the list is public.
        """
        if not 1 <= limit <= MAX_SINCE_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SINCE_LIMIT}")
        with database_errors():
            rows = await self._pool.fetch(
                f"SELECT list_seq, token_id::text, revoked_at FROM {self._table} "  # noqa: S608
                "WHERE list_seq > $1 ORDER BY list_seq LIMIT $2",
                seq,
                limit,
            )
        items = [{"token_id": r["token_id"], "seq": r["list_seq"], "revoked_at": _iso(r["revoked_at"])} for r in rows]
        return items, (rows[-1]["list_seq"] if rows else seq)

    async def feed(self, seq: int, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Every event after ``seq`` (all kinds of the authority's feed), as :meth:`since` pages them.

        Each item is ``{seq, kind, revoked_at}`` plus the kind's fields: ``token_id``;
        ``session_id`` and ``user_id``; or ``org`` and ``user_id`` for membership cut-offs.
        """
        if not 1 <= limit <= MAX_SINCE_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SINCE_LIMIT}")
        with database_errors():
            rows = await self._pool.fetch(
                f"SELECT seq, kind, token_id::text, org_id, user_id, session_id, revoked_at "  # noqa: S608
                f"FROM {self._table} WHERE seq > $1 ORDER BY seq LIMIT $2",
                seq,
                limit,
            )
        return [_feed_item(r) for r in rows], (rows[-1]["seq"] if rows else seq)

    async def wait_past(self, seq: int, timeout: float) -> None:
        """Return once this node has seen a revocation after ``seq``, or after ``timeout`` seconds."""
        if self._last_seq > seq or self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._advanced.wait(), timeout)

    # --- keeping current ------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Read the revocations after the last seen ``seq`` (all of them at start)."""
        while True:
            with database_errors():
                rows = await self._pool.fetch(
                    f"SELECT seq, token_id::text FROM {self._table} "  # noqa: S608
                    "WHERE seq > $1 ORDER BY seq LIMIT $2",
                    self._last_seq,
                    _POLL_PAGE,
                )
            # Rows of the other feed kinds have no token id.
            self._revoked.update(row["token_id"] for row in rows if row["token_id"] is not None)
            if rows:
                self._last_seq = rows[-1]["seq"]
                advanced, self._advanced = self._advanced, asyncio.Event()
                advanced.set()
            if len(rows) < _POLL_PAGE:
                break
        self._synced_at = self._clock()


def _feed_item(row: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"seq": row["seq"], "kind": row["kind"], "revoked_at": _iso(row["revoked_at"])}
    if row["kind"] == "token":
        item["token_id"] = row["token_id"]
    elif row["kind"] == "session":
        item["session_id"], item["user_id"] = row["session_id"], row["user_id"]
    else:
        item["org"], item["user_id"] = row["org_id"], row["user_id"]
    return item
