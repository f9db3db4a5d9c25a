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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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


@dataclass(slots=True)
class _Pending:
    items: list[tuple[datetime, AuditEvent]]
    done: asyncio.Future[None]


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
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if checkpoint_every <= 0:
            raise ValueError("checkpoint_every must be positive")
        self._checkpoint_every = checkpoint_every
        self._next_checkpoint = 0.0  # monotonic time; the first batch checkpoints
        self._repository = repository
        self._max_batch = max_batch
        self._timeout = timeout
        self._clock = clock
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
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
        return len(self._queue)

    @property
    def stats(self) -> AuditStats:
        return AuditStats(self._events, self._batches, self._failed, self._largest)

    async def start(self) -> None:
        """Start the writer. The connection opens with the first batch, so a database that is down
        at start makes the first ``record`` fail (503), not the service's start."""
        if self._writer is not None:
            raise RuntimeError("AuditLog already started")
        self._closing = False
        # Kept: on Python 3.11 every get_running_loop() makes a getpid system call.
        self._loop = asyncio.get_running_loop()
        self._writer = self._loop.create_task(self._run(), name="audit-writer")
        self._writer.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        # The writer only ends on close; if a bug ends it early, nobody may wait forever.
        if not task.cancelled() and task.exception() is not None:
            log.error("audit writer stopped: %s", _describe(task.exception() or RuntimeError()))
        self._fail_all(self._queue)
        self._queue.clear()

    async def close(self) -> None:
        """Commit everything already queued, then stop; later ``record`` calls raise ``Unavailable``."""
        self._closing = True
        self._wakeup.set()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await asyncio.wait([writer])  # never raises; a crash was logged by _writer_done
            finally:
                self._fail_all(self._queue)
                self._queue.clear()
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
        if self._writer is None or self._writer.done() or self._closing or self._loop is None:
            raise Unavailable(UNAVAILABLE_MESSAGE)
        done: asyncio.Future[None] = self._loop.create_future()
        if not events:
            done.set_result(None)
            return done
        at = self._clock()
        self._queue.append(_Pending([(at, event) for event in events], done))
        self._wakeup.set()
        return done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._take_batch()
                try:
                    await self._write(batch)
                except asyncio.CancelledError:
                    self._fail_all(batch)
                    raise
                except Exception as exc:
                    self._failed += 1
                    log.warning(
                        "audit batch of %d event(s) not committed: %s",
                        sum(len(p.items) for p in batch),
                        _describe(exc),
                    )
                    self._fail_all(batch)
                else:
                    for pending in batch:
                        if not pending.done.done():
                            pending.done.set_result(None)
                    await self._maybe_checkpoint()
            if self._closing:
                return

    def _take_batch(self) -> list[_Pending]:
        batch = [self._queue.popleft()]
        size = len(batch[0].items)
        while self._queue and size + len(self._queue[0].items) <= self._max_batch:
            pending = self._queue.popleft()
            size += len(pending.items)
            batch.append(pending)
        return batch

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

    async def _write(self, batch: Sequence[_Pending]) -> None:
        items = [item for pending in batch for item in pending.items]

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

    @staticmethod
    def _fail_all(batch: Sequence[_Pending] | deque[_Pending]) -> None:
        for pending in batch:
            if not pending.done.done():
                pending.done.set_exception(Unavailable(UNAVAILABLE_MESSAGE))
                # Callers that gave up never read the exception; do not warn about it.
                pending.done.exception()


def _describe(exc: BaseException) -> str:
    # The cause's class and SQLSTATE say what went wrong without echoing values.
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None)
    return f"{type(cause).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
