"""Keeping in-memory state current from a table: LISTEN for a channel's notifications, poll as a fallback.

Shared by :class:`~vault.storage.revocations.RevocationWatcher` and
:class:`~vault.storage.key_watch.KeyWatcher`: a writer changes rows and sends
``pg_notify(channel)`` in the same transaction; every follower LISTENs over a
connection of its own (:class:`~vault.storage.connection.DedicatedConnection`),
and a notification wakes its loop, which calls :meth:`ChannelFollower.reconcile`.
The loop also wakes every ``interval`` seconds, so a lost notification costs at
most one interval. A LISTEN connection that drops (a database restart) wakes the
loop at once (asyncpg's termination callback): it reopens the connection and
reconciles, re-reading whatever changed while nobody listened, and while the
database stays unreachable it retries after short, growing pauses
(:data:`RETRY_DELAYS`, never longer than ``interval``), so a change made right
after the database returns is followed within about a second, not an interval.
A subclass says what reconciling means; nothing here runs on a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from vault.errors import Unavailable

from .connection import DedicatedConnection
from .pool import CONNECTION_ERRORS, Pool

__all__ = ["RETRY_DELAYS", "ChannelFollower"]

log = logging.getLogger("cvault.follow")

RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0)
"""Seconds before each retry of a follower that is not listening or failed to reconcile (then the last, repeated)."""


class ChannelFollower:
    """Runs :meth:`reconcile` at start, on every notification on ``channel``, and every ``interval`` seconds."""

    def __init__(self, pool: Pool | None, channel: str, *, interval: float, listen: bool = True, name: str) -> None:
        self._channel = channel
        self._interval = interval
        self._name = name
        self._listener = DedicatedConnection(pool) if listen and pool is not None else None
        self._listening_on: asyncpg.Connection | None = None
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._poll_failures = 0
        self._retries = 0  # short retries since the follower was last healthy
        self._listen_failures = 0  # LISTEN attempts failed in a row (logged once per burst)

    async def reconcile(self) -> None:
        """Bring the in-memory state up to date with the table (the subclass's job)."""
        raise NotImplementedError

    async def start(self, *, required: bool = True) -> None:
        """LISTEN, reconcile once, and start the loop.

        Raises ``Unavailable`` if the first reconcile fails: a node that cannot load
        the state must not start serving. With ``required=False`` (state the node can
        serve without, for a while) the first reconcile runs in the loop instead. A
        LISTEN connection that cannot be opened is only logged; the loop retries it
        and polls meanwhile.
        """
        if self._task is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        await self._ensure_listening()
        if required:
            await self.reconcile()
        else:
            self._poke.set()
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-follower")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            await self._listener.close()
        self._listening_on = None

    def poke(self) -> None:
        """Reconcile soon, as if a notification had arrived."""
        self._poke.set()

    @property
    def listening(self) -> bool:
        return self._listening_on is not None and not self._listening_on.is_closed()

    def _notified(self, *_: object) -> None:
        self._poke.set()

    def _lost(self, conn: object) -> None:
        # The LISTEN connection closed (the server restarted or ended it): reopen and re-read now.
        if conn is self._listening_on:
            self._listening_on = None
            self._poke.set()

    def _pause(self) -> float:
        """How long the loop sleeps before its next pass: an interval when all is well, else a short retry."""
        healthy = self._poll_failures == 0 and (self._listener is None or self.listening)
        if healthy:
            return self._interval
        self._retries += 1
        return min(self._interval, RETRY_DELAYS[min(self._retries, len(RETRY_DELAYS)) - 1])

    async def _ensure_listening(self) -> None:
        if self._listener is None or self.listening:
            return
        self._listening_on = None
        try:
            conn = await self._listener.get()
            await conn.add_listener(self._channel, self._notified)
            conn.add_termination_listener(self._lost)
        except (Unavailable, asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
            self._listener.discard()
            self._listen_failures += 1
            # Once per burst, not once per retry (about a second while the database is down).
            if self._listen_failures == 1 or self._listen_failures % 120 == 0:
                log.warning("%s: cannot LISTEN on %s (%s); polling meanwhile", self._name, self._channel, _name(exc))
            return
        if self._listen_failures:
            log.info("%s: listening on %s again after %d failure(s)", self._name, self._channel, self._listen_failures)
        self._listen_failures = 0
        self._listening_on = conn

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives as the
            # event is set, and close() then waits forever on a loop that keeps running (seen under load).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._pause()):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._ensure_listening()
                await self.reconcile()
            except Exception as exc:
                self._poll_failures += 1
                # Once per burst, not once per tick, so an outage does not flood the log.
                if self._poll_failures == 1 or self._poll_failures % 120 == 0:
                    log.warning("%s: reconcile failed (%s); retrying", self._name, _name(exc))
            else:
                if self._poll_failures:
                    log.info("%s: reconcile recovered after %d failure(s)", self._name, self._poll_failures)
                self._poll_failures = 0
                if self.listening or self._listener is None:
                    self._retries = 0


def _name(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return type(cause).__name__
