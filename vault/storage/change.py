"""The transaction of a state change, and what its failures mean to the caller.

A failure before ``COMMIT`` leaves nothing changed (``Unavailable``, 503: try
again). A failure *during* ``COMMIT`` is different: when the connection is lost
or the database stops answering then, the server may have committed, so the
caller hears ``OutcomeUnknown`` (503 ``outcome_unknown``: retry with the same
``Idempotency-Key``, or check). A ``COMMIT`` the server answers with an error (a
deferred constraint or trigger) rolled back: the SQLSTATE's class mapping of
:func:`~vault.storage.pool.error_for_sqlstate` (``40``, a serialization failure or
deadlock: 503 ``transaction_aborted``), else ``DatabaseError`` (500
``database_error``). Classes that speak of the connection or the server rather
than the transaction are unknown outcomes: ``08`` (asyncpg raises it itself when
the connection closed mid-operation), ``53``, ``57`` (a crash or admin shutdown
may end a backend after its commit record is on disk but before it answered),
``58`` and ``XX``. A committed change whose connection then fails to go back to
the pool is committed: no error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from vault.errors import DatabaseError, OutcomeUnknown, VaultError

from .pool import CONNECTION_ERRORS, database_errors, error_for_sqlstate

__all__ = ["change_transaction"]

log = logging.getLogger("cvault.storage")

# SQLSTATE classes that, at COMMIT, do not prove the transaction rolled back (module docstring).
_UNKNOWN_CLASSES = frozenset({"08", "53", "57", "58", "XX"})


def _commit_failure(exc: Exception) -> Exception:
    """What a failed ``COMMIT`` means: refused by the server (rolled back), or an unknown outcome."""
    cause = exc.__cause__ if isinstance(exc, VaultError) else exc
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if isinstance(cause, asyncpg.PostgresError) and sqlstate and sqlstate[:2] not in _UNKNOWN_CLASSES:
        return error_for_sqlstate(sqlstate) or DatabaseError(
            f"the database refused to commit the change (SQLSTATE {sqlstate}); nothing was changed"
        )
    return OutcomeUnknown()


@contextlib.asynccontextmanager
async def change_transaction(pool: Any) -> AsyncIterator[Any]:
    """``async with change_transaction(pool) as conn:``: a pool connection in a transaction, committed at the end.

    Errors of the block itself propagate as :class:`database_errors` maps them
    (a repository's own asyncpg errors, e.g. a unique violation it translates,
    unchanged); errors of the ``COMMIT`` as the module docstring says.
    """
    step = "body"
    try:
        with database_errors():
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    yield conn
                except BaseException:
                    # The pool's reset rolls back whatever this could not.
                    with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
                        if not conn.is_closed():
                            await transaction.rollback()
                    raise
                step = "commit"
                await transaction.commit()
                step = "committed"
    except Exception as exc:
        if step == "committed":
            # Only giving the connection back failed (the pool terminated it): the change stands.
            log.warning("change committed; its connection was dropped afterwards (%s)", type(exc).__name__)
            return
        if step == "commit":
            raise _commit_failure(exc) from exc
        raise
