"""Many single-secret lookups as one query: the storage half of the store's batched reads.

The store's read batcher (:mod:`vault.store.read_batcher`) collects the reads
waiting at the same moment and hands them here together; :class:`BatchReader`
runs a single ``unnest``-driven query for all of them (one round trip, one
statement for PostgreSQL to plan and execute) on a connection of its own.
Results are exactly what the one-row query would return, matched to each
lookup by its position; identical lookups (replicas booting together read the
same secrets) share one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vault.errors import Unavailable
from vault.store.models import SecretLookup

from .connection import DedicatedConnection
from .pool import Pool, database_errors

__all__ = ["MAX_VERSION", "BatchReader"]

MAX_VERSION = 2**31 - 1
"""Versions are PostgreSQL ``int`` columns."""

_SELECT = """
SELECT q.i, s.name, v.version, v.state, v.stage, v.created_at, v.ciphertext, v.data_key_id, k.kek_version, k.wrapped
"""
_LOOKUPS = """
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[])
     WITH ORDINALITY AS q(org_id, vault, name, version, stage, i)
"""
# One lookup (replicas booting together all read the same secrets): scalars, which cost
# a fraction of what arrays cost to encode, for the same rows.
_LOOKUP = """
FROM (VALUES ($1::bigint, $2::text, $3::text, $4::int, $5::text, 1::bigint))
     AS q(org_id, vault, name, version, stage, i)
"""
# A version and a stage together: that version, if it holds that stage.
_JOINS = """
JOIN store.vaults va ON va.org_id = q.org_id AND va.name = q.vault
JOIN store.secrets s ON s.vault_id = va.id AND s.name = q.name
JOIN store.secret_versions v ON v.secret_id = s.id AND v.version = CASE
    WHEN q.version IS NOT NULL THEN q.version
    WHEN q.stage IN ('pending', 'previous') THEN (
        SELECT sv.version FROM store.secret_versions sv WHERE sv.secret_id = s.id AND sv.stage = q.stage)
    ELSE s.current_version END
    AND (q.stage IS NULL OR v.stage = q.stage)
LEFT JOIN store.wrapped_keys k ON k.id = v.data_key_id
"""
_READ_MANY = _SELECT + _LOOKUPS + _JOINS
_READ_ONE = _SELECT + _LOOKUP + _JOINS


class BatchReader:
    """Runs lookups as one query per call, on a dedicated connection. One call at a time."""

    def __init__(self, pool: Pool) -> None:
        # A connection of its own: no pool acquire and release (with their reset) per
        # batch, and requests keep the whole pool.
        self._conn = DedicatedConnection(pool)

    async def close(self) -> None:
        await self._conn.close()

    async def fetch(self, lookups: Sequence[SecretLookup]) -> list[Any]:
        """The row of each lookup (columns as in the query), or ``None`` where there is none."""
        positions: dict[SecretLookup, int] = {}
        unique: list[SecretLookup] = []
        where: list[int | None] = []
        for lookup in lookups:
            if lookup.version is not None and not 0 < lookup.version <= MAX_VERSION:
                # No such version can exist (the column is an int); sent on, it would fail
                # the whole statement, other callers' reads included.
                where.append(None)
                continue
            position = positions.get(lookup)
            if position is None:
                position = positions[lookup] = len(unique) + 1
                unique.append(lookup)
            where.append(position)
        rows = await self._query(unique) if unique else []
        found = {row["i"]: row for row in rows}
        return [found.get(position) if position is not None else None for position in where]

    async def _query(self, lookups: list[SecretLookup]) -> list[Any]:
        conn = await self._conn.get()
        try:
            with database_errors():
                if len(lookups) == 1:
                    rows: list[Any] = await conn.fetch(_READ_ONE, *lookups[0])
                else:
                    rows = await conn.fetch(_READ_MANY, *map(list, zip(*lookups, strict=True)))
        except Unavailable:
            # Lost, or timed out with its cancellation still pending (which would stall the
            # next batch): the next batch opens a new one.
            self._conn.discard()
            raise
        return rows
