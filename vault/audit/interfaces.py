"""The audit domain's port: what the log and its queries need from the place the chain is kept.

:class:`vault.storage.audit.PgAuditRepository` implements it on PostgreSQL; the app factories wire it
(``AuditLog(PgAuditRepository(pool, "store"))``), so nothing under ``vault/audit/`` imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from .event import AuditRecord

__all__ = ["AuditRepository", "Place"]

# Given the chain's head (last seq, last hash), the records to append after it, already chained.
Place = Callable[[int, bytes], Sequence[AuditRecord]]


class AuditRepository(Protocol):
    """One chain's records and its head (one per service: the store's, the authority's).

    Rows come back as plain dicts (``at`` a UTC datetime, hashes ``bytes``, ``detail`` parsed
    JSON) so a verifier can look at a row even when tampering has made it invalid as an event.
    """

    async def append(
        self, place: Place, *, expected_head: tuple[int, bytes] | None, timeout: float
    ) -> Sequence[AuditRecord]:
        """Append one batch in a transaction of its own, on the writer's own connection (not the pool's).

        ``expected_head`` is where this writer left the chain: the adapter may try a one-statement
        append after it first. Raises :class:`vault.errors.Unavailable` when the batch was not
        committed (``timeout`` seconds passed included); then nothing of it was written.
        """
        ...

    async def append_in(self, transaction: object, place: Place) -> Sequence[AuditRecord]:
        """Append inside a state change's open ``transaction``: the records commit or roll back with it."""
        ...

    async def head(self) -> tuple[int, bytes]:
        """The last seq and hash committed; ``(0, 32 zero bytes)`` for an empty log."""
        ...

    async def rows(self, *, after_seq: int, upto_seq: int, limit: int) -> list[dict[str, Any]]:
        """Rows with ``after_seq < seq <= upto_seq`` in seq order, at most ``limit``."""
        ...

    async def select(
        self,
        *,
        equals: Mapping[str, Any],
        token_id: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: int | None,
        limit: int,
        newest_first: bool,
    ) -> list[dict[str, Any]]:
        """Rows matching every filter, paged by seq after (or, newest first, before) ``cursor``."""
        ...

    async def close(self) -> None:
        """Close the writer's connection (queries use the pool and need no closing)."""
        ...
