"""Connection pool creation, and the translation of connection failures.

The pool is created here and only here, so every connection gets the same
per-connection setup (codecs) and every caller the same error mapping.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeAlias

import asyncpg

from vault.errors import Unavailable

__all__ = ["CONNECTION_ERRORS", "Pool", "close_pool", "create_pool", "database_errors"]

# For annotations outside this package, which must not import asyncpg.
Pool: TypeAlias = asyncpg.Pool

# Errors meaning "the database is not reachable or not accepting us", as opposed
# to errors in a statement. They become Unavailable (503: nothing was changed).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.AdminShutdownError,
)


def _describe(exc: BaseException) -> str:
    # Server messages and socket errors name hosts and users, never passwords;
    # the DSN itself is never part of the message.
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class database_errors:  # lower case: used like contextlib.suppress
    """``with database_errors():`` turns connection failures inside the block into :class:`Unavailable`.

    A class rather than a ``@contextmanager`` generator: every query runs inside one,
    and a generator costs several more calls per use.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None and isinstance(exc, CONNECTION_ERRORS):
            raise Unavailable(f"database unavailable ({_describe(exc)}); nothing was changed, try again") from exc


async def _init_connection(conn: Any) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _reset_connection(conn: Any) -> None:
    # asyncpg's default reset sends "RESET ALL; UNLISTEN *; CLOSE ALL; advisory unlock"
    # on every release: a round trip per query, the largest cost of a secret read.
    # cvault leaves no session state on pooled connections (LISTEN uses dedicated
    # connections; SET is always SET LOCAL; session advisory locks are released in
    # ``finally``), so only an abandoned transaction needs undoing. The rule is enforced by
    # tests/test_pool_session_state.py, which fails when a request leaves any of that behind.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; json/jsonb columns read and write Python objects.

    Raises :class:`Unavailable` when the database cannot be reached.
    """
    with database_errors():
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_reset_connection
        )
    return pool


async def close_pool(pool: asyncpg.Pool, *, timeout: float = 10.0) -> None:
    """Close gracefully, then forcibly: shutdown must not hang on a stuck query."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()
