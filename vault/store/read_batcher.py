"""Secret reads served in batches: one query, one audit submission and one wake-up per read.

Every read waiting at the same moment joins one batch. The batch task reads all
their rows with one query (:meth:`SecretRepository.read_lookups`), opens each
value, and hands all their audit events to the log at once; when the log has
committed them, a callback gives each caller its value. A caller therefore
suspends once per read, not once for its row and again for its audit event,
and the batch task does not wait for the commit: it goes on to the next batch
while the log commits this one (the two round trips overlap, as before).

Fail closed: a caller gets its value only after its event is committed; if the
log refuses the batch, every read in it fails with
:class:`~vault.errors.Unavailable`. A read that finds nothing, or whose value
fails to open, fails at once with that error (the guard audits the failure).
Reads that arrive while a batch is being processed form the next batch, so
batching follows the load and an idle store adds no delay. The queue, the task and
the failing of waiters are :class:`vault.batcher.Batcher`'s, the audit log's too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from vault.batcher import Batcher, Job, fail_all
from vault.errors import Unavailable, VaultError
from vault.types import RequestContext

from .caller import Caller
from .interfaces import AuditSink
from .models import SecretLookup, StoredVersion

__all__ = ["MAX_BATCH", "ReadBatcher"]

MAX_BATCH = 256

Fetch = Callable[[Sequence[SecretLookup]], Awaitable[Sequence[StoredVersion | None]]]
# reveal(ctx, lookup, stored) -> (result for the caller, its audit event); raises VaultError.
Reveal = Callable[[RequestContext[Caller], SecretLookup, StoredVersion | None], Awaitable[tuple[Any, Any]]]
Read = tuple[RequestContext[Caller], SecretLookup]


def _stopped() -> Unavailable:
    return Unavailable("the store is not serving reads (starting or shutting down)")


class ReadBatcher:
    """Batches concurrent reads; ``reveal`` turns one row into the caller's result and its audit event."""

    def __init__(self, fetch: Fetch, reveal: Reveal, audit: AuditSink, *, max_batch: int = MAX_BATCH) -> None:
        self._fetch = fetch
        self._reveal = reveal
        self._audit = audit
        self._batcher: Batcher[Read, Any] = Batcher(
            self._serve, name="store-read-batcher", max_batch=max_batch, stopped=_stopped
        )

    async def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.stop(drain=False)

    def read(self, ctx: RequestContext[Caller], lookup: SecretLookup) -> asyncio.Future[Any]:
        """Queue a read: the future is the caller's result once its audit event is committed, or what
        ``reveal`` or the log raised."""
        return self._batcher.submit((ctx, lookup))

    async def _serve(self, batch: list[Job[Read, Any]]) -> None:
        rows = await self._fetch([job.item[1] for job in batch])
        served: list[tuple[Job[Read, Any], Any]] = []
        events: list[Any] = []
        for job, stored in zip(batch, rows, strict=True):
            try:
                result, event = await self._reveal(*job.item, stored)
            except VaultError as exc:
                job.fail(exc)
                continue
            served.append((job, result))
            events.append(event)
        if not served:
            return
        try:
            committed = self._audit.submit(*events)
        except Unavailable as exc:
            fail_all((job for job, _ in served), exc)
            return

        def deliver(future: asyncio.Future[None]) -> None:
            # Fail closed: no committed event, no value.
            failure = future.exception() if not future.cancelled() else Unavailable()
            for job, result in served:
                if failure is None:
                    job.resolve(result)
                else:
                    job.fail(failure)

        committed.add_done_callback(deliver)
