"""Setting up an org at the store, and the mixed load the fault tests run while they break things."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import aiohttp

from tests.support.harness import Harness

from .ledger import Ledger, send_write

__all__ = ["Org", "mixed_load", "setup_org"]

NAMES = [f"s{i}" for i in range(8)]


@dataclass(frozen=True)
class Org:
    id: int
    bundle: str

    def secret_url(self, base: str, name: str) -> str:
        return f"{base}/v1/orgs/{self.id}/vaults/v/secrets/{name}"


async def setup_org(h: Harness) -> Org:
    """An enrolled org with vault ``v`` and the root store bundle (valid for the org discharge's 5 minutes)."""
    _owner, org, _auth, _root, bundle = await h.enrolled_vault("owner@example.com", "acme", "v")
    return Org(org, bundle)


async def _read(http: aiohttp.ClientSession, url: str, bundle: str, ledger: Ledger) -> None:
    started = time.monotonic()
    status, code = 0, None
    try:
        async with http.get(url, headers={"Authorization": f"Bearer {bundle}"}) as resp:
            status = resp.status
            body = await resp.json(content_type=None)
            if status >= 400 and isinstance(body, dict):
                code = body.get("error", {}).get("code")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        status = 0
    ended = time.monotonic()
    ledger.answers.append((ended - started, status, code, ended))


async def mixed_load(
    http: aiohttp.ClientSession,
    base: str,
    org: Org,
    ledger: Ledger,
    stop: asyncio.Event,
    *,
    workers: int = 6,
    writes: float = 0.5,
    names: list[str] = NAMES,
) -> None:
    """Workers alternating writes (each a fresh logical write with its own key) and reads until ``stop``.

    A write answered 200 is acknowledged; any other answer leaves it unknown, to be
    retried with its key by :func:`tests.faults.ledger.settle` once the fault is over.
    """
    rng = random.Random(20)

    async def worker() -> None:
        while not stop.is_set():
            name = rng.choice(names)
            if rng.random() < writes:
                write = ledger.next_write(name)
                status = await send_write(http, org.secret_url(base, name), org.bundle, write, ledger)
                (ledger.acknowledged if status == 200 else ledger.unknown).append(write)
                if status != 200:
                    await asyncio.sleep(0.05)
            else:
                await _read(http, org.secret_url(base, name), org.bundle, ledger)

    await asyncio.gather(*(worker() for _ in range(workers)))
