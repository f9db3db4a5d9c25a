"""A connection of its own, beside the pool, for long-lived duties.

The audit writer and the revocation listener each hold one connection for as
long as the process runs. Taking it from the pool would shrink the capacity
left for requests, and a request that waits for the audit writer while holding
the pool's last connection would deadlock it. So they open their own, with the
pool's connection settings, and reopen it after it is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

from .pool import BoundedPool, Connection, database_errors

__all__ = ["DedicatedConnection", "ListeningConnection"]


class ListeningConnection(Connection, Protocol):
    """A connection of one's own can also LISTEN (a pooled one must not: see ``_reset_connection``)."""

    async def add_listener(self, channel: str, callback: Callable[[Any, int, str, str], object]) -> None: ...

    def add_termination_listener(self, callback: Callable[[Any], object]) -> None: ...

    def is_closed(self) -> bool: ...

    async def close(self, *, timeout: float | None = None) -> None: ...

    def terminate(self) -> None: ...


class DedicatedConnection:
    """One connection opened with ``pool``'s settings; :meth:`get` reopens it when it was lost."""

    def __init__(self, pool: BoundedPool, *, connect_timeout: float = 5.0) -> None:
        dsn, self._kwargs = pool.connect_settings
        self._args = (dsn,)
        self._kwargs.setdefault("timeout", connect_timeout)
        self._conn: ListeningConnection | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def get(self) -> ListeningConnection:
        """The open connection (an ``asyncpg.Connection``); raises ``Unavailable`` if it cannot be opened."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn  # the common case, once per batch: no lock to take
        async with self._lock:
            conn = self._conn  # another task may have opened it while this one waited for the lock
            if conn is None or conn.is_closed():
                with database_errors():
                    conn = self._conn = await asyncpg.connect(*self._args, **self._kwargs)
            return conn

    def discard(self) -> None:
        """Drop the connection after an error left it in an unknown state; the next :meth:`get` reopens."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
