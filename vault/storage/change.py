"""The transaction of a state change, and what its failures mean to the caller.

A failure before ``COMMIT`` leaves nothing changed (``Unavailable``, 503: try
again). A failure *during* ``COMMIT`` is different: when the connection is lost
or the database stops answering then, the server may have committed, so the
caller hears ``OutcomeUnknown`` (503 ``outcome_unknown``: retry with the same
``Idempotency-Key``, or check). A ``COMMIT`` the server *answers* with an error
(severity ``ERROR``: a deferred constraint or trigger, a statement timeout or an
out-of-memory inside one) rolled back, and is mapped by its SQLSTATE class like
every other statement (:func:`~vault.storage.pool.error_for_sqlstate`): ``40``
(serialization failure, deadlock) 503 ``transaction_aborted``; ``53``
(insufficient resources), ``57`` (operator intervention, a statement timeout) and
``58`` 503 ``unavailable`` (nothing was changed); ``22`` 400; any other class 500
``database_error``. What the server did not answer as an ``ERROR`` is an unknown
outcome: a ``FATAL`` or ``PANIC`` (an admin shutdown or crash may end a backend
after its commit record is durable), and errors asyncpg raises itself when the
connection closed mid-operation. A committed change whose connection then fails
to go back to the pool is committed: no error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from vault.errors import DatabaseError, OutcomeUnknown, VaultError

from .pool import CONNECTION_ERRORS, Pool, database_errors, error_for_sqlstate

__all__ = ["change_transaction"]

log = logging.getLogger("cvault.storage")


def _answered(exc: BaseException) -> bool:
    """Whether the server answered the statement with an ERROR (it then rolled the transaction back)."""
    if not isinstance(exc, asyncpg.PostgresError) or not getattr(exc, "sqlstate", None):
        return False
    severity = getattr(exc, "severity_en", None) or getattr(exc, "severity", None)
    return severity == "ERROR"


def _commit_failure(exc: Exception) -> Exception:
    """What a failed ``COMMIT`` means: refused by the server (rolled back), or an unknown outcome."""
    cause = exc.__cause__ if isinstance(exc, VaultError) else exc
    if cause is not None and _answered(cause):
        sqlstate: str = getattr(cause, "sqlstate", "")
        return error_for_sqlstate(sqlstate) or DatabaseError(
            f"the database refused to commit the change (SQLSTATE {sqlstate}); nothing was changed"
        )
    return OutcomeUnknown()


@contextlib.asynccontextmanager
async def change_transaction(pool: Pool) -> AsyncIterator[Any]:
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
