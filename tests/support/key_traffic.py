"""Concurrent traffic against the running services, counting operations and failures, for the rotation tests.

Each worker loops over its own secret: write a new version, read it back, check the
value. Every reply other than 200 with the expected value is a failure, kept with
what went wrong. ``mark()`` / ``since(mark)`` count the operations of a window (the
rotation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from .cvault_command import cvault_env
from .harness import Harness


def keys_env(h: Harness) -> dict[str, str]:
    """The environment a `cvault keys ...` run needs against the harness's database."""
    assert h.store_config.master_key is not None and h.store_config.database_url is not None
    return cvault_env(
        {
            "CVAULT_DATABASE_URL": h.store_config.database_url,
            "CVAULT_MASTER_KEY": base64.b64encode(h.store_config.master_key).decode(),
        }
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, *, bound: float = 30.0) -> float:
    """Seconds until ``check()`` holds, polled every 20 ms; fails past ``bound`` (generous: machines are shared)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < bound, f"not within {bound} s: {what}"
        await asyncio.sleep(0.02)
    return loop.time() - started


def report_latency(what: str, seconds: float) -> None:
    """Printed, not asserted (shared machines): run with ``-s`` to collect the figures."""
    print(f"\nlatency: {what}: {seconds * 1000:.0f} ms")


Operation = Callable[[int, int], Awaitable[str | None]]
"""``(worker, n) -> None`` on success, else what failed."""


@dataclass
class Traffic:
    ops: int = 0
    failures: list[str] = field(default_factory=list)

    def mark(self) -> int:
        return self.ops

    def since(self, mark: int) -> int:
        return self.ops - mark

    async def wait_for(self, ops: int, timeout: float = 60.0) -> None:
        """Wait until at least ``ops`` more operations have completed."""
        target = self.ops + ops
        async with asyncio.timeout(timeout):
            while self.ops < target:
                await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def traffic(operation: Operation, workers: int = 4) -> AsyncIterator[Traffic]:
    counts = Traffic()
    stop = asyncio.Event()

    async def work(worker: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                problem = await operation(worker, n)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None:
                counts.failures.append(problem)
            counts.ops += 1
            n += 1

    tasks = [asyncio.create_task(work(w)) for w in range(workers)]
    try:
        yield counts
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def secret_reads_and_writes(h: Harness, org: int, bundle: str, *, store_url: str | None = None) -> Operation:
    """Each call writes a new version of the worker's secret and reads it back (two HTTP requests)."""
    base = store_url or h.store_url

    async def operation(worker: int, n: int) -> str | None:
        url = f"{base}/v1/orgs/{org}/vaults/prod/secrets/load/{worker}"
        headers = {"Authorization": f"Bearer {bundle}"}
        value = f"value {worker} {n}"
        async with h.http.put(url, json={"value": value}, headers=headers) as resp:
            if resp.status != 200:
                return f"write {resp.status}: {await resp.text()}"
        async with h.http.get(url, headers=headers) as resp:
            if resp.status != 200:
                return f"read {resp.status}: {await resp.text()}"
            body = await resp.json()
        if body.get("value") != value:
            return f"read back {body.get('value')!r}, not {value!r}"
        return None

    return operation
