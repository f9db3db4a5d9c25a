"""More than one node of a service on one database: extra store and authority apps beside a harness's pair.

A second node is another app built from the same configuration (the same public URL, as behind a load balancer),
served on a port of its own, with its own pool, watchers and audit writer: what a second machine would run.
:func:`notify_only` makes every follower poll once an hour, so whatever a node learns in time was brought by
LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from vault.crypto.passwords import MINIMUM
from vault.storage.key_watch import KeyWatcher
from vault.storage.revocations import RevocationWatcher
from vault.web.authority import create_authority_app
from vault.web.store import create_store_app

from .harness import Harness, Reply, ServedApp

__all__ = ["BOUND", "HOUR", "Node", "another_authority", "another_store", "notify_only", "wait_until"]

HOUR = 3600.0
BOUND = 20.0
"""Seconds a test waits for another node to see a change: generous (shared machines); the figure is reported."""


def notify_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The apps built after this poll their revocations and keys once an hour (and never go stale meanwhile)."""
    for name in ("vault.web.store.app", "vault.web.authority.app"):
        module = importlib.import_module(name)
        monkeypatch.setattr(
            module, "RevocationWatcher", partial(RevocationWatcher, reconcile_interval=HOUR, max_staleness=None)
        )
        monkeypatch.setattr(module, "KeyWatcher", partial(KeyWatcher, interval=HOUR))


@dataclass(frozen=True)
class Node:
    url: str
    app: Any
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, auth: str | None = None, body: Any = None) -> Reply:
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return Reply(resp.status, payload)


@asynccontextmanager
async def _serve(h: Harness, app: Any) -> AsyncIterator[Node]:
    port = unused_port()
    async with ServedApp(app, port=port):
        yield Node(f"http://127.0.0.1:{port}", app, h.http)


@asynccontextmanager
async def another_store(h: Harness) -> AsyncIterator[Node]:
    """A second store node: the harness's store configuration, its own port."""
    async with _serve(h, create_store_app(h.store_config, clock=h.store_clock)) as node:
        yield node


@asynccontextmanager
async def another_authority(h: Harness) -> AsyncIterator[Node]:
    """A second authority node: the harness's authority configuration (same keys, same URL), its own port."""
    app = create_authority_app(h.authority_config, clock=h.authority_clock, password_cost=MINIMUM)
    async with _serve(h, app) as node:
        yield node


async def wait_until(check: Any, *, bound: float = BOUND, step: float = 0.005) -> float:
    """Seconds until ``await check()`` is true; fails the test after ``bound``."""
    start = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - start
        assert elapsed < bound, f"not seen within {bound} s"
        await asyncio.sleep(step)
    return time.monotonic() - start
