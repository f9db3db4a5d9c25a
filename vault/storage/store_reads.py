"""Coalesced secret reads: every read waiting at the same moment shares one query.

The read-side twin of the audit log's group commit. Each caller enqueues its
lookup with a future; one task takes whatever is queued, runs a single
``unnest``-driven query for all of them (one round trip, one statement for
PostgreSQL to plan and execute) and resolves every future. Reads that arrive
while a query is in flight form the next batch, so batching follows the load
and an idle store adds no delay. Results are exactly what the one-row query
would return: each lookup is matched by its position in the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from vault.errors import Unavailable

from .connection import DedicatedConnection
from .pool import database_errors

__all__ = ["ReadCoalescer"]

MAX_BATCH = 256

_READ_MANY = """
SELECT q.i, s.name, v.version, v.state, v.stage, v.created_at, v.ciphertext, v.data_key_id, k.kek_version, k.wrapped
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[])
     WITH ORDINALITY AS q(org_id, vault, name, version, stage, i)
JOIN store.vaults va ON va.org_id = q.org_id AND va.name = q.vault
JOIN store.secrets s ON s.vault_id = va.id AND s.name = q.name
JOIN store.secret_versions v ON v.secret_id = s.id AND v.version = CASE
    WHEN q.version IS NOT NULL THEN q.version
    WHEN q.stage IN ('pending', 'previous') THEN (
        SELECT sv.version FROM store.secret_versions sv WHERE sv.secret_id = s.id AND sv.stage = q.stage)
    ELSE s.current_version END
LEFT JOIN store.wrapped_keys k ON k.id = v.data_key_id
"""


@dataclass(slots=True)
class _Lookup:
    org_id: int
    vault: str
    name: str
    version: int | None
    stage: str | None
    done: asyncio.Future[Any]


class ReadCoalescer:
    """Runs queued single-secret lookups as one query per batch. One per process."""

    def __init__(self, pool: Any, *, max_batch: int = MAX_BATCH) -> None:
        # One query at a time, so a connection of its own: no pool acquire and release
        # (with their reset) per batch, and requests keep the whole pool.
        self._conn = DedicatedConnection(pool)
        self._max_batch = max_batch
        self._queue: deque[_Lookup] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-read-coalescer")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            lookup = self._queue.popleft()
            if not lookup.done.done():
                lookup.done.set_exception(Unavailable("the store is shutting down"))
        await self._conn.close()

    async def read(self, org_id: int, vault: str, name: str, version: int | None, stage: str | None) -> Any:
        """The row for this lookup (columns as in the batch query), or ``None``."""
        if self._task is None:
            raise Unavailable("the store is not serving reads")
        lookup = _Lookup(org_id, vault, name, version, stage, asyncio.get_running_loop().create_future())
        self._queue.append(lookup)
        self._wakeup.set()
        # A caller that gives up cancels only its own future; the batch goes on without it.
        return await lookup.done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
                # Identical lookups (replicas booting together read the same secrets) share one row.
                positions: dict[tuple[Any, ...], int] = {}
                unique: list[_Lookup] = []
                where: list[int] = []
                for lookup in batch:
                    key = (lookup.org_id, lookup.vault, lookup.name, lookup.version, lookup.stage)
                    position = positions.get(key)
                    if position is None:
                        position = positions[key] = len(unique) + 1
                        unique.append(lookup)
                    where.append(position)
                try:
                    rows = await self._fetch(unique)
                except asyncio.CancelledError:
                    self._fail(batch, Unavailable("the store is shutting down"))
                    raise
                except Exception as exc:  # every waiter gets the error, the loop goes on
                    self._fail(batch, exc)
                    continue
                found = {row["i"]: row for row in rows}
                for position, lookup in zip(where, batch, strict=True):
                    if not lookup.done.done():
                        lookup.done.set_result(found.get(position))

    async def _fetch(self, batch: list[_Lookup]) -> list[Any]:
        conn = await self._conn.get()
        try:
            with database_errors():
                rows: list[Any] = await conn.fetch(
                    _READ_MANY,
                    [b.org_id for b in batch],
                    [b.vault for b in batch],
                    [b.name for b in batch],
                    [b.version for b in batch],
                    [b.stage for b in batch],
                )
        except Unavailable:
            if not self._conn.connected:
                self._conn.discard()  # the next batch opens a new one
            raise
        return rows

    @staticmethod
    def _fail(batch: list[_Lookup], exc: BaseException) -> None:
        for lookup in batch:
            if not lookup.done.done():
                lookup.done.set_exception(exc)
                lookup.done.exception()  # a waiter that gave up never reads it; do not warn
