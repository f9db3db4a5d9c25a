"""``vault.batcher.Batcher``: what queues together is served together, and no waiter is ever left hanging."""

from __future__ import annotations

import asyncio

import pytest

from vault.batcher import Batcher, Job
from vault.errors import Unavailable


class Served:
    """A ``serve`` that records each batch and resolves every job with its item, or raises ``fail``."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[object]] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch: list[Job[object, object]]) -> None:
        await self.gate.wait()
        self.batches.append([job.item for job in batch])
        if self.fail is not None:
            raise self.fail
        for job in batch:
            job.resolve(job.item)


def stopped() -> Unavailable:
    return Unavailable("stopped")


async def test_items_queued_while_a_batch_is_served_form_the_next_batch_within_the_weight() -> None:
    served = Served()
    batcher: Batcher[object, object] = Batcher(served, name="t", max_batch=5, stopped=stopped, weight=len)
    batcher.start()
    try:
        served.gate.clear()
        first = batcher.submit("a")
        await asyncio.sleep(0)  # the task takes "a" and waits at the gate
        rest = [batcher.submit(item) for item in ("bb", "ccc", "dddddd", "e")]
        assert batcher.queue_depth == 4
        served.gate.set()
        assert await asyncio.gather(first, *rest) == ["a", "bb", "ccc", "dddddd", "e"]
    finally:
        await batcher.stop(drain=True)
    # "bb" + "ccc" fill 5; "dddddd" alone is over the cap but is never split or refused.
    assert served.batches == [["a"], ["bb", "ccc"], ["dddddd"], ["e"]]


async def test_a_failed_batch_fails_its_waiters_and_the_next_batch_is_served() -> None:
    served = Served(fail=RuntimeError("database gone"))
    batcher: Batcher[object, object] = Batcher(
        served, name="t", max_batch=10, stopped=stopped, failure=lambda batch, exc: Unavailable(f"{len(batch)} lost")
    )
    batcher.start()
    try:
        with pytest.raises(Unavailable, match="1 lost"):
            await batcher.submit("x")
        served.fail = None
        assert await batcher.submit("y") == "y"
    finally:
        await batcher.stop(drain=False)


async def test_stop_drains_or_fails_what_is_queued_and_then_refuses() -> None:
    served = Served()
    draining: Batcher[object, object] = Batcher(served, name="t", max_batch=10, stopped=stopped)
    with pytest.raises(Unavailable):
        draining.submit("before start")
    draining.start()
    queued = [draining.submit(i) for i in range(3)]
    await draining.stop(drain=True)
    assert [f.result() for f in queued] == [0, 1, 2]
    with pytest.raises(Unavailable):
        draining.submit("after stop")

    served.gate.clear()
    cancelled: Batcher[object, object] = Batcher(served, name="t", max_batch=1, stopped=stopped)
    cancelled.start()
    in_flight, queued_after = cancelled.submit("in flight"), cancelled.submit("queued")
    await asyncio.sleep(0)
    await cancelled.stop(drain=False)
    for future in (in_flight, queued_after):
        with pytest.raises(Unavailable, match="stopped"):
            await future


async def test_a_task_that_ends_by_a_bug_fails_every_waiter() -> None:
    served = Served()
    batcher: Batcher[object, object] = Batcher(served, name="t", max_batch=10, stopped=stopped)

    def broken() -> list[Job[object, object]]:
        raise RuntimeError("bug")

    batcher._take = broken  # type: ignore[method-assign]
    batcher.start()
    waiting = batcher.submit("x")
    with pytest.raises(Unavailable):
        await waiting
    with pytest.raises(Unavailable):
        batcher.submit("y")  # the task is gone: refused at once
    await batcher.stop(drain=True)
