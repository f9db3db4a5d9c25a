"""Secret reads served in batches: one query, one audit submission and one wake-up per read.

Every read waiting at the same moment joins one batch. The batch task reads all
their rows with one query (:meth:`SecretRepository.read_lookups`), opens each
value, and hands all their audit events to the log at once; when the log has
committed them, a callback gives each caller its value. A caller therefore
suspends once per read, not once for its row and again for its audit event,
and the batch task does not wait for the commit: it goes on to the next batch
while the log commits this one (the two round trips overlap, as before).

Fail closed: a caller gets its value only after its event is committed; if the
log refuses the batch, every read in it fails with
:class:`~vault.errors.Unavailable`. A read that finds nothing, or whose value
fails to open, fails at once with that error (the guard audits the failure).
Reads that arrive while a batch is being processed form the next batch, so
batching follows the load and an idle store adds no delay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from vault.errors import Unavailable, VaultError
from vault.types import RequestContext

from .caller import Caller
from .interfaces import AuditSink
from .models import SecretLookup, StoredVersion

__all__ = ["MAX_BATCH", "ReadBatcher"]

MAX_BATCH = 256

Fetch = Callable[[Sequence[SecretLookup]], Awaitable[Sequence[StoredVersion | None]]]
# reveal(ctx, lookup, stored) -> (result for the caller, its audit event); raises VaultError.
Reveal = Callable[[RequestContext[Caller], SecretLookup, StoredVersion | None], Awaitable[tuple[Any, Any]]]


class _Read:
    __slots__ = ("ctx", "done", "lookup")

    def __init__(self, ctx: RequestContext[Caller], lookup: SecretLookup, done: asyncio.Future[Any]) -> None:
        self.ctx = ctx
        self.lookup = lookup
        self.done = done


class ReadBatcher:
    """Batches concurrent reads; ``reveal`` turns one row into the caller's result and its audit event."""

    def __init__(self, fetch: Fetch, reveal: Reveal, audit: AuditSink, *, max_batch: int = MAX_BATCH) -> None:
        self._fetch = fetch
        self._reveal = reveal
        self._audit = audit
        self._max_batch = max_batch
        self._queue: deque[_Read] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        # Kept: on Python 3.11 every get_running_loop() makes a getpid system call.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="store-read-batcher")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(self._queue, Unavailable("the store is shutting down"))
        self._queue.clear()

    def read(self, ctx: RequestContext[Caller], lookup: SecretLookup) -> asyncio.Future[Any]:
        """Queue a read: the future is the caller's result once its audit event is committed, or what
        ``reveal`` or the log raised. A plain function returning the future: a coroutine around it
        would cost every read two more frames to create and resume."""
        if self._task is None or self._task.done() or self._loop is None:
            raise Unavailable("the store is not serving reads")
        done: asyncio.Future[Any] = self._loop.create_future()
        self._queue.append(_Read(ctx, lookup, done))
        self._wakeup.set()
        # A caller that gives up cancels only its own future; its read is still audited.
        return done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
                try:
                    await self._serve(batch)
                except asyncio.CancelledError:
                    self._fail(batch, Unavailable("the store is shutting down"))
                    raise
                except Exception as exc:  # every waiter gets the error, the loop goes on
                    self._fail(batch, exc)

    async def _serve(self, batch: list[_Read]) -> None:
        rows = await self._fetch([r.lookup for r in batch])
        served: list[tuple[_Read, Any]] = []
        events: list[Any] = []
        for read, stored in zip(batch, rows, strict=True):
            try:
                result, event = await self._reveal(read.ctx, read.lookup, stored)
            except VaultError as exc:
                self._fail((read,), exc)
                continue
            served.append((read, result))
            events.append(event)
        if not served:
            return
        try:
            committed = self._audit.submit(*events)
        except Unavailable as exc:
            self._fail([read for read, _ in served], exc)
            return

        def deliver(future: asyncio.Future[None]) -> None:
            # Fail closed: no committed event, no value.
            failure = future.exception() if not future.cancelled() else Unavailable()
            for read, result in served:
                if read.done.done():
                    continue
                if failure is None:
                    read.done.set_result(result)
                else:
                    read.done.set_exception(failure)
                    read.done.exception()

        committed.add_done_callback(deliver)

    @staticmethod
    def _fail(reads: Sequence[_Read] | deque[_Read], exc: BaseException) -> None:
        for read in reads:
            if not read.done.done():
                read.done.set_exception(exc)
                read.done.exception()  # a waiter that gave up never reads it; do not warn
