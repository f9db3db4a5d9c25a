"""Keeping each node's in-memory keys current: a LISTEN on ``<schema>_keys``, and a shared reload on a miss.

Keys are loaded at start and never read from the database on a request. They change
only by ``cvault keys rotate-tokens|retire-tokens`` (and by enrolment, which adds an
org's root key), which commit the change with ``pg_notify('<schema>_keys')``
(:func:`announce_key_change`). :class:`KeyWatcher` follows that channel like the
revocation watcher follows its own (:class:`~vault.storage.channel_follower.ChannelFollower`)
and re-runs each registered reload, so a retired key is gone from every node within
moments and a new one is there to verify.

A key id arriving on a request is untrusted (no signature can be checked before its
key is found), so a miss never queries that id: :class:`SharedReload` runs one
reload for every concurrent miss, at most once per :data:`RELOAD_INTERVAL`. That covers
the short window in which another node already mints with a key this one has not
heard of yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .channel_follower import ChannelFollower
from .pool import Connection, Pool
from .schema import check_schema

__all__ = ["RELOAD_INTERVAL", "KeyWatcher", "SharedReload", "announce_key_change"]

RELOAD_INTERVAL = 1.0
"""Seconds between reloads triggered by unknown key ids."""

Reload = Callable[[], Awaitable[None]]


def channel(schema: str) -> str:
    return f"{check_schema(schema)}_keys"


async def announce_key_change(conn: Connection, schema: str) -> None:
    """Tell every node of ``schema`` to reload its keys once the caller's transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", channel(schema))


class SharedReload:
    """Runs ``reload`` on behalf of callers that missed, one run shared by all, at most once per ``interval``."""

    def __init__(self, reload: Reload, *, interval: float = RELOAD_INTERVAL) -> None:
        self._reload = reload
        self._interval = interval
        self._running: asyncio.Future[None] | None = None
        self._last = float("-inf")
        self.runs = 0

    async def __call__(self) -> None:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._run())
        await asyncio.shield(self._running)

    async def _run(self) -> None:
        wait = self._last + self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last = time.monotonic()
        self.runs += 1
        await self._reload()


class KeyWatcher(ChannelFollower):
    """Re-runs the registered reloads on every notification on ``<schema>_keys``, and every ``interval`` s."""

    def __init__(self, pool: Pool, schema: str, *, interval: float = 5.0, listen: bool = True) -> None:
        super().__init__(pool, channel(schema), interval=interval, listen=listen, name=f"keys-{schema}")
        self._reloads: list[Reload] = []
        self._lock = asyncio.Lock()

    def on_change(self, reload: Reload) -> None:
        self._reloads.append(reload)

    async def reconcile(self) -> None:
        async with self._lock:
            for reload in self._reloads:
                await reload()
