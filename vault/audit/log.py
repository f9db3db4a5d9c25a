"""The audit log writer: group commit, fail closed.

``await log.record(event)`` returns only once the event is committed and raises
:class:`~vault.errors.Unavailable` otherwise, so a service can refuse to serve a
read it could not audit. Committing each event in its own transaction would cost
one fsync per request; instead every caller enqueues its events with a future
and one writer task commits whatever is queued in one transaction (one insert,
one commit), then resolves all the futures. Events that arrive while a commit is
in flight form the next batch: batching follows the load, with no added delay
when the log is idle.

The log keeps its records through an :class:`~vault.audit.interfaces.AuditRepository`
(on PostgreSQL, :class:`vault.storage.audit.PgAuditRepository`, whose writer has a
connection of its own, so a request holding a pool connection while it waits for its
audit event cannot starve it).

State changes do not use the writer: :meth:`AuditLog.record_in` appends their
events inside the change's own transaction, so an event exists exactly when its
change does (docs/audit.md, "Events of state changes").

Each log is one writer with a chain of its own (docs/audit.md, "Chains"): logs in
other processes append to theirs without waiting for this one. Every
``checkpoint_every`` seconds, after a batch, the log asks for a checkpoint of
every chain's head (one writer among all writes it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from vault.batcher import Batcher, Job
from vault.errors import Unavailable

from .event import AuditEvent, AuditRecord, chain, placed_at
from .interfaces import AuditRepository

__all__ = ["AuditLog", "AuditStats"]

log = logging.getLogger("cvault.audit")

UNAVAILABLE_MESSAGE = "audit log unavailable; the request was not served"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AuditStats:
    """Counters since start: ``batches`` is the number of committed transactions."""

    events: int
    batches: int
    failed_batches: int
    largest_batch: int


Items = list[tuple[datetime, AuditEvent]]
"""One ``record`` call's events with the time each was recorded: never split across transactions."""


class AuditLog:
    """Appends events to the chain its ``repository`` holds: one log per writer (process), one chain per log.

    ``max_batch`` caps the events per transaction (a single ``record`` call is
    never split). ``timeout`` bounds one batch's transaction: a database that
    hangs turns into ``Unavailable`` instead of requests that never finish.
    ``clock`` stamps each event's ``at`` when it is recorded. ``checkpoint_every`` is
    how often (seconds) the log checkpoints the chains' heads.
    """

    def __init__(
        self,
        repository: AuditRepository,
        *,
        max_batch: int = 512,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
        checkpoint_every: float = 10.0,
    ) -> None:
        if checkpoint_every <= 0:
            raise ValueError("checkpoint_every must be positive")
        self._checkpoint_every = checkpoint_every
        self._next_checkpoint = 0.0  # monotonic time; the first batch checkpoints
        self._repository = repository
        self._timeout = timeout
        self._clock = clock
        self._writer: Batcher[Items, None] = Batcher(
            self._write,
            name="audit-writer",
            max_batch=max_batch,
            stopped=_unavailable,
            weight=len,
            failure=self._failed_batch,
        )
        self._events = 0
        self._batches = 0
        self._failed = 0
        self._largest = 0
        # Told (events, seconds) after each committed batch; the metrics set it (vault.web.metrics).
        self.observer: Callable[[int, float], None] | None = None
        self._head: tuple[int, int, bytes] | None = None

    @property
    def queue_depth(self) -> int:
        """Calls waiting for the writer (read by the metrics at scrape time)."""
        return self._writer.queue_depth

    @property
    def stats(self) -> AuditStats:
        return AuditStats(self._events, self._batches, self._failed, self._largest)

    async def start(self) -> None:
        """Start the writer. The connection opens with the first batch, so a database that is down
        at start makes the first ``record`` fail (503), not the service's start."""
        self._writer.start()

    async def close(self) -> None:
        """Commit everything already queued, then stop; later ``record`` calls raise ``Unavailable``."""
        await self._writer.stop(drain=True)
        await self._repository.close()

    async def record(self, *events: AuditEvent) -> None:
        """Commit ``events`` (in this order, consecutive in the chain); raise ``Unavailable`` if they were not."""
        if events:
            # A caller that gives up (client gone) cancels only its own future: its events stay
            # queued and are committed with the others, and the writer skips resolving that future.
            await self.submit(*events)

    async def record_in(self, transaction: object, *events: AuditEvent) -> None:
        """Append ``events`` inside a state change's open transaction (an asyncpg connection in one).

        They commit exactly when the change does: no ``ok`` event for a change that
        rolled back, no change without its event. They go to this log's chain: the
        change's transaction locks that chain's head, as every batch of :meth:`record`
        does (and no other process's appends); the writer's next batch finds the head
        moved and places itself after it.
        """
        if events:
            await self._repository.append_in(transaction, placed_at(self._clock(), events))

    def submit(self, *events: AuditEvent) -> asyncio.Future[None]:
        """Queue ``events`` as :meth:`record` does, without waiting: the future is done once they are
        committed. Raises ``Unavailable`` at once when the log is not running."""
        if not events:
            if not self._writer.running:
                raise _unavailable()
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        at = self._clock()
        return self._writer.submit([(at, event) for event in events])

    async def _write(self, batch: list[Job[Items, None]]) -> None:
        items = [item for job in batch for item in job.item]

        def place(chain_id: int, last_seq: int, last_hash: bytes) -> list[AuditRecord]:
            return list(chain(items, chain_id, last_seq, last_hash))

        started = time.perf_counter()
        try:
            records = await self._repository.append(place, expected_head=self._head, timeout=self._timeout)
        except Unavailable:
            self._head = None  # the next batch finds the head under its lock
            raise
        # Where this writer left its chain: the next batch first tries a one-statement append after it.
        if records:
            self._head = (records[-1].chain, records[-1].chain_seq, records[-1].hash)
        self._batches += 1
        self._events += len(items)
        self._largest = max(self._largest, len(items))
        if self.observer is not None:
            self.observer(len(items), time.perf_counter() - started)
        for job in batch:
            job.resolve(None)
        await self._maybe_checkpoint()

    def _failed_batch(self, batch: list[Job[Items, None]], exc: Exception) -> Unavailable:
        self._failed += 1
        log.warning("audit batch of %d event(s) not committed: %s", sum(len(j.item) for j in batch), _describe(exc))
        return _unavailable()

    async def _maybe_checkpoint(self) -> None:
        # After the batch's callers were answered: a checkpoint delays only the next batch.
        now = time.monotonic()
        if now < self._next_checkpoint:
            return
        self._next_checkpoint = now + self._checkpoint_every
        try:
            await self._repository.checkpoint(every=self._checkpoint_every, timeout=self._timeout)
        except Unavailable as exc:
            log.warning("audit checkpoint not written: %s", _describe(exc))


def _unavailable() -> Unavailable:
    return Unavailable(UNAVAILABLE_MESSAGE)


def _describe(exc: BaseException) -> str:
    # The cause's class and SQLSTATE say what went wrong without echoing values.
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None)
    return f"{type(cause).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
