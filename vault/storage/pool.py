"""Connection pool creation, and the translation of connection failures.

The pool is created here and only here, so every connection gets the same
per-connection setup (codecs) and every caller the same error mapping.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeAlias, cast

import asyncpg

from vault.errors import BadRequest, TransactionAborted, Unavailable, VaultError

__all__ = [
    "CONNECTION_ERRORS",
    "BoundedPool",
    "Connection",
    "Pool",
    "close_pool",
    "connection_of",
    "create_pool",
    "database_errors",
    "error_for_sqlstate",
    "pool_in",
]

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
    # Server messages and socket errors name hosts and users, never passwords (the DSN itself is
    # never part of the message): an operator's detail (VaultError.detail), never a client's message.
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return "no answer within the database timeout"
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
        if exc is None:
            return
        if isinstance(exc, CONNECTION_ERRORS):
            # The description names hosts and users of the deployment: the log's, not the client's (detail).
            unavailable = Unavailable("database unavailable; nothing was changed, try again")
            unavailable.detail = _describe(exc)
            raise unavailable from exc
        if isinstance(exc, asyncpg.PostgresError):
            mapped = error_for_sqlstate(getattr(exc, "sqlstate", None) or "")
            if mapped is not None:
                raise mapped from exc


def error_for_sqlstate(sqlstate: str) -> VaultError | None:
    """Our error for a statement's SQLSTATE, by its class (the first two characters), or None for a bug.

    Repositories catch the errors they expect (a unique violation that means "already exists") inside the
    block; what reaches here is mapped by class so a caller sees one of our codes, never a 500:

    - ``40`` transaction rollback (serialization failure, deadlock): nothing was changed, retrying is safe;
    - ``53`` insufficient resources, ``57`` operator intervention (``57014`` a statement timeout, an admin
      shutdown), ``58`` system error: the database cannot serve now;
    - ``22`` data exception: a value the database refused, reported without the value.

    Other classes (``42`` a syntax or permission error, ``23`` an unexpected constraint) are bugs or
    deployment errors: they stay exceptions and become a logged 500 with a request id.
    """
    kind = sqlstate[:2]
    if kind == "40":
        return TransactionAborted()
    if kind in ("53", "57", "58"):
        return Unavailable("the database cannot serve the request now; nothing was changed, try again")
    if kind == "22":
        return BadRequest("the database refused a value of the request (out of range or malformed)")
    return None


class Connection(Protocol):
    """What the repositories call on a connection: the statements of ``asyncpg.Connection`` they use.

    asyncpg ships no type hints (it is ``Any`` to mypy), so this protocol is what lets ``mypy --strict`` check
    the calls a repository makes on the connection it is handed. The pool answers the same statements (each on a
    connection of its own), which is why a function that runs one statement may take either; ``transaction``
    and ``is_in_transaction`` are a connection's only. Rows stay ``Any``: ``asyncpg.Record`` is untyped too,
    and each repository turns its rows into its domain's values where it reads them.
    """

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any: ...

    def transaction(self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False) -> Any: ...

    def is_in_transaction(self) -> bool: ...


def connection_of(transaction: object) -> Connection:
    """The connection a domain hands back as its opaque ``transaction`` (a hook's argument, ``record_in``).

    The domains may not name asyncpg or this package, so their ports carry the transaction a repository opened as
    an ``object``; the repository that receives it back knows it is one of its connections.
    """
    return cast(Connection, transaction)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _reset_connection(conn: Connection) -> None:
    # asyncpg's default reset sends "RESET ALL; UNLISTEN *; CLOSE ALL; advisory unlock"
    # on every release: a round trip per query, the largest cost of a secret read.
    # cvault leaves no session state on pooled connections (LISTEN uses dedicated
    # connections; SET is always SET LOCAL; session advisory locks are released in
    # ``finally``), so only an abandoned transaction needs undoing. The rule is enforced by
    # tests/store/test_pool_session_state.py, which fails when a request leaves any of that behind.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type hints
    """A pool whose ``acquire`` (and so ``release``, and ``pool.fetch`` and friends) waits at most
    ``acquire_timeout`` by default: a pool drained by requests stuck on a frozen database makes the
    next request fail with 503 instead of queueing behind them.

    It also keeps the DSN and the per-connection bounds it was opened with (:attr:`connect_settings`), so
    connections opened beside it (``DedicatedConnection``) use the same ones without reading asyncpg's
    private attributes.
    """

    def __init__(
        self, dsn: str, *, acquire_timeout: float | None = None, bounds: dict[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(dsn, **bounds, **kwargs)
        self._acquire_timeout = acquire_timeout
        self._connect_settings = (dsn, dict(bounds))

    @property
    def connect_settings(self) -> tuple[str, dict[str, Any]]:
        """The DSN and the keyword arguments of ``asyncpg.connect`` a connection beside the pool should use."""
        dsn, bounds = self._connect_settings
        return dsn, dict(bounds)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


# For annotations outside this package, which must not import asyncpg.
Pool: TypeAlias = BoundedPool


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float | None = None) -> Pool:
    """Open a pool; json/jsonb columns read and write Python objects.

    ``timeout`` (the services pass ``database_timeout``) bounds every wait on the
    database: opening a connection, taking one from the pool, each statement
    (asyncpg's ``command_timeout``, also on the dedicated connections opened with
    the pool's settings). A wait that hits it raises ``TimeoutError``, which
    :class:`database_errors` turns into :class:`Unavailable`. ``None`` (migrations,
    the CLI's maintenance commands) waits as long as a statement takes.

    Raises :class:`Unavailable` when the database cannot be reached.
    """
    bounds: dict[str, Any] = {} if timeout is None else {"command_timeout": timeout, "timeout": timeout}
    with database_errors():
        pool: BoundedPool = await BoundedPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            max_queries=50000,
            max_inactive_connection_lifetime=300.0,
            init=_init_connection,
            reset=_reset_connection,
            loop=None,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            acquire_timeout=timeout,
            bounds=bounds,
        )
    return pool


async def pool_in(stack: AsyncExitStack, dsn: str, *, max_size: int, timeout: float | None) -> Pool:
    """:func:`create_pool`, closed when ``stack`` closes (the app factories open their resources on one)."""
    pool = await create_pool(dsn, max_size=max_size, timeout=timeout)
    stack.push_async_callback(close_pool, pool)
    return pool


async def close_pool(pool: Pool, *, timeout: float = 10.0) -> None:
    """Close gracefully, then forcibly: shutdown must not hang on a stuck query."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()
