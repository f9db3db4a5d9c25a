"""Readiness: can this process run a statement on its database right now?"""

from __future__ import annotations

import asyncio

import asyncpg

from .pool import CONNECTION_ERRORS

__all__ = ["DatabaseHealth", "database_ready"]


def _forget(probe: asyncio.Future[object]) -> None:
    if not probe.cancelled():
        probe.exception()  # retrieved, so an abandoned probe's failure is not logged as unhandled


async def database_ready(pool: asyncpg.Pool, *, timeout: float = 2.0) -> bool:
    """True once ``SELECT true`` answered within ``timeout`` seconds; False otherwise, within ``timeout``.

    The probe runs as a task of its own and is abandoned, not awaited, when the
    bound passes: on a frozen server asyncpg's cancellation (and the pool's release
    of the connection) waits for the server too, so ``wait_for`` would answer only
    when the server thaws (19.98 s for a 2 s bound, issue 20). The abandoned probe
    ends by itself within the pool's own timeouts.
    """
    probe: asyncio.Future[object] = asyncio.ensure_future(pool.fetchval("SELECT true", timeout=timeout))
    done, _ = await asyncio.wait({probe}, timeout=timeout)
    if not done:
        probe.cancel()
        probe.add_done_callback(_forget)
        return False
    try:
        return bool(probe.result())
    except (*CONNECTION_ERRORS, asyncpg.PostgresError, asyncpg.InternalClientError):
        # InternalClientError: a pooled connection the server terminated mid-use ("cannot
        # switch to state"); the database is just as unusable.
        return False


class DatabaseHealth:
    """Implements :class:`vault.web.common.Readiness` for one pool: the handlers' readiness, without the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ready(self, *, timeout: float = 2.0) -> bool:
        return await database_ready(self._pool, timeout=timeout)
