"""A connection of its own, beside the pool, for long-lived duties.

The audit writer and the revocation listener each hold one connection for as
long as the process runs. Taking it from the pool would shrink the capacity
left for requests, and a request that waits for the audit writer while holding
the pool's last connection would deadlock it. So they open their own, with the
pool's connection settings, and reopen it after it is lost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from .pool import BoundedPool, database_errors

__all__ = ["DedicatedConnection"]


class DedicatedConnection:
    """One connection opened with ``pool``'s settings; :meth:`get` reopens it when it was lost."""

    def __init__(self, pool: BoundedPool, *, connect_timeout: float = 5.0) -> None:
        dsn, self._kwargs = pool.connect_settings
        self._args = (dsn,)
        self._kwargs.setdefault("timeout", connect_timeout)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def get(self) -> Any:
        """The open connection (an ``asyncpg.Connection``); raises ``Unavailable`` if it cannot be opened."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn  # the common case, once per batch: no lock to take
        async with self._lock:
            if not self.connected:
                with database_errors():
                    self._conn = await asyncpg.connect(*self._args, **self._kwargs)
            return self._conn

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
