"""The transaction of a state change, and what its failures mean to the caller.

A failure before ``COMMIT`` leaves nothing changed (``Unavailable``, 503: try
again). A failure *during* ``COMMIT`` is different: when the connection is lost
or the database stops answering then, the server may have committed, so the
caller hears ``OutcomeUnknown`` (503 ``outcome_unknown``: retry with the same
``Idempotency-Key``, or check). A ``COMMIT`` the server refuses (a deferred
constraint or trigger) rolled back: ``DatabaseError`` (500 ``database_error``),
or ``Unavailable`` for the transaction-rollback class (40: serialization
failure, deadlock), which a retry may cure. A committed change whose connection
then fails to go back to the pool is committed: no error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from vault.errors import DatabaseError, OutcomeUnknown, Unavailable

from .pool import CONNECTION_ERRORS, database_errors

__all__ = ["change_transaction"]

log = logging.getLogger("cvault.storage")


def _refused(exc: asyncpg.PostgresError) -> Exception:
    sqlstate = getattr(exc, "sqlstate", None) or "?"
    if sqlstate.startswith("40"):
        return Unavailable(f"the database rolled the change back (SQLSTATE {sqlstate}); nothing was changed, try again")
    return DatabaseError(f"the database refused to commit the change (SQLSTATE {sqlstate}); nothing was changed")


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
            if isinstance(exc, Unavailable):
                raise OutcomeUnknown() from exc
            if isinstance(exc, asyncpg.PostgresError):
                raise _refused(exc) from exc
        raise
