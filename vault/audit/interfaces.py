"""The audit domain's port: what the log and its queries need from the place the chain is kept.

:class:`vault.storage.audit.PgAuditRepository` implements it on PostgreSQL; the app factories wire it
(``AuditLog(PgAuditRepository(pool, "store"))``), so nothing under ``vault/audit/`` imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypedDict

from .event import AuditRecord

__all__ = ["AuditRepository", "AuditRow", "CheckpointRow", "Place"]

# Given the writer's chain and its head (chain, last chain_seq, last hash), the records to append after it, chained.
Place = Callable[[int, int, bytes], Sequence[AuditRecord]]


class AuditRow(TypedDict):
    """One stored event as read, whether or not it is still a valid one (``v`` its record format).

    A dict rather than an :class:`AuditRecord`, so a verifier can look at a row that tampering has made
    invalid as an event; typed, so what reads one checks its columns.
    """

    seq: int
    chain: int
    chain_seq: int
    v: int
    at: datetime
    service: str
    action: str
    outcome: str
    org: int | None
    vault: str | None
    secret: str | None
    version: int | None
    token_id: str | None
    lineage: list[str]
    actor: str | None
    client_addr: str | None
    request_id: str | None
    detail: Any  # parsed JSON: an object unless edited
    prev_hash: bytes
    hash: bytes


class CheckpointRow(TypedDict):
    """One stored checkpoint: its number, its body (the heads it records, as text) and its link in their chain."""

    id: int
    body: str
    prev_hash: bytes
    hash: bytes


class AuditRepository(Protocol):
    """A service's log (the store's, the authority's): its chains, one per writer, and their checkpoints.

    One repository object is one writer: what it appends goes to the chain it holds.

    Rows come back as :class:`AuditRow` (``at`` a UTC datetime, hashes ``bytes``, ``detail`` parsed
    JSON) so a verifier can look at a row even when tampering has made it invalid as an event.
    """

    async def append(
        self, place: Place, *, expected_head: tuple[int, int, bytes] | None, timeout: float
    ) -> Sequence[AuditRecord]:
        """Append one batch in a transaction of its own, on the writer's own connection (not the pool's).

        ``expected_head`` is where this writer left its chain (chain, chain_seq, hash): the adapter
        may try a one-statement append after it first. Raises :class:`vault.errors.Unavailable` when the batch was not
        committed (``timeout`` seconds passed included); then nothing of it was written.
        """
        ...

    async def append_in(self, transaction: object, place: Place) -> Sequence[AuditRecord]:
        """Append inside a state change's open ``transaction``: the records commit or roll back with it."""
        ...

    async def checkpoint(self, *, every: float, timeout: float) -> bool:
        """Record every chain's head in a new checkpoint unless one is younger than ``every`` seconds.

        Returns whether one was written; raises :class:`vault.errors.Unavailable` on failure.
        """
        ...

    async def heads(self) -> list[tuple[int, int, bytes]]:
        """Every chain's (chain, last chain_seq, last hash), by chain."""
        ...

    async def chain_rows(self, chain: int, *, after_seq: int, upto_seq: int, limit: int) -> list[AuditRow]:
        """One chain's rows with ``after_seq < chain_seq <= upto_seq`` in chain_seq order, at most ``limit``."""
        ...

    async def rows(
        self, *, after_seq: int, heads: Mapping[int, int], limit: int, org: int | None = None
    ) -> list[AuditRow]:
        """Rows with ``seq > after_seq`` in seq order, at most ``limit``, each chain's only up to ``heads[chain]``
        (and only org ``org``'s, if given)."""
        ...

    async def checkpoints(self, *, after_id: int, limit: int) -> list[CheckpointRow]:
        """Checkpoint rows (id, body, prev_hash, hash) with ``id > after_id`` in id order, at most ``limit``."""
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
        hide_audit_of: Mapping[str, str] | None = None,
    ) -> list[AuditRow]:
        """Rows matching every filter, paged by seq after (or, newest first, before) ``cursor``; without the
        ``audit.*`` events whose actor or token_id is ``hide_audit_of``'s (a reviewer's own queries)."""
        ...

    async def close(self) -> None:
        """Close the writer's connection (queries use the pool and need no closing)."""
        ...
