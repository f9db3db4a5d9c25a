"""One task serving queued work in batches: the audit log's group commit and the store's batched reads.

Callers :meth:`Batcher.submit` an item and get a future. One task wakes when
something is queued, takes what is there (the first item always, then more while
their total ``weight`` stays within ``max_batch``) and awaits ``serve(batch)``,
which resolves each job's future, at once or later (a read's when its audit event
is committed). Items that arrive while a batch is served form the next one, so
batching follows the load and an idle batcher adds no delay.

Fail closed: whatever ``serve`` raises fails every job of its batch not yet
resolved (``failure(exc)`` says with what; the exception itself by default), and
the task goes on with the next batch. A batcher that is not running refuses
new items at once (``stopped()``); jobs still queued when it stops, or when its
task ends by a bug, fail with ``stopped()`` too. A caller that gives up cancels
only its own future: its item is still served (a read is still audited).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["Batcher", "Job", "fail_all"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("cvault.batcher")


class Job(Generic[T, R]):
    """One queued item and the future its caller waits on."""

    __slots__ = ("done", "item")

    def __init__(self, item: T, done: asyncio.Future[R]) -> None:
        self.item = item
        self.done = done

    def resolve(self, result: R) -> None:
        if not self.done.done():
            self.done.set_result(result)

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # a caller that gave up never reads it: no "never retrieved" warning


def fail_all(jobs: Iterable[Job[T, R]], exc: BaseException) -> None:
    for job in jobs:
        job.fail(exc)


class Batcher(Generic[T, R]):
    """Items of type ``T`` served in batches by ``serve``; each caller's future holds an ``R`` (module docs)."""

    def __init__(
        self,
        serve: Callable[[list[Job[T, R]]], Awaitable[None]],
        *,
        name: str,
        max_batch: int,
        stopped: Callable[[], BaseException],
        weight: Callable[[T], int] | None = None,
        failure: Callable[[list[Job[T, R]], Exception], BaseException] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._serve = serve
        self._name = name
        self._max_batch = max_batch
        self._stopped = stopped
        self._weight = weight
        self._failure = failure
        self._queue: deque[Job[T, R]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    @property
    def queue_depth(self) -> int:
        """Items waiting for a batch."""
        return len(self._queue)

    @property
    def running(self) -> bool:
        """Whether :meth:`submit` takes items (started, not stopping, its task alive)."""
        return self._task is not None and not self._task.done() and not self._draining

    def start(self) -> None:
        """Start the batch task (on the running loop)."""
        if self._task is not None:
            raise RuntimeError(f"{self._name} already started")
        self._draining = False
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=self._name)
        self._task.add_done_callback(self._ended)

    async def stop(self, *, drain: bool) -> None:
        """Stop: with ``drain``, after serving everything already queued; else at once (the batch in
        flight and the queue fail with ``stopped()``). New items are refused from now on."""
        task, self._task = self._task, None
        if task is not None:
            if drain:
                self._draining = True
                self._wakeup.set()
                await asyncio.wait([task])  # never raises; a crash was logged by _ended
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        fail_all(self._queue, self._stopped())
        self._queue.clear()

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future is what ``serve`` resolves it with (or fails it with)."""
        if not self.running or self._loop is None:
            raise self._stopped()
        done: asyncio.Future[R] = self._loop.create_future()
        self._queue.append(Job(item, done))
        self._wakeup.set()
        return done

    def _ended(self, task: asyncio.Task[None]) -> None:
        # The task ends only on stop; if a bug ends it early, nobody may wait forever.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s stopped: %s", self._name, type(exc).__name__)
        fail_all(self._queue, self._stopped())
        self._queue.clear()

    def _take(self) -> list[Job[T, R]]:
        queue = self._queue
        if self._weight is None:
            return [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
        batch = [queue.popleft()]
        size = self._weight(batch[0].item)
        while queue and size + (next_size := self._weight(queue[0].item)) <= self._max_batch:
            size += next_size
            batch.append(queue.popleft())
        return batch

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._take()
                try:
                    await self._serve(batch)
                except asyncio.CancelledError:
                    fail_all(batch, self._stopped())
                    raise
                except Exception as exc:  # every waiter gets the error, the task goes on
                    fail_all(batch, exc if self._failure is None else self._failure(batch, exc))
            if self._draining:
                return
