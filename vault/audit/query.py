"""Reading the audit log: filtered queries, chain verification, JSON-lines export.

:class:`AuditQueries` is the service (over the chain's :class:`~vault.audit.interfaces.AuditRepository`);
:func:`verify_lines` checks an exported file and needs no database.

Rows are served and exported in one JSON shape, :meth:`AuditRecord.to_json`'s:
``at`` in ISO 8601 (UTC, microseconds), ``prev_hash`` and ``hash`` in hex. An
exported file can therefore be verified offline with :func:`verify_lines`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .chain import ChainReport, ChainVerifier
from .event import AuditEvent, AuditRecord
from .interfaces import AuditRepository

__all__ = ["MAX_QUERY_LIMIT", "AuditQueries", "record_from_row", "row_json", "verify_lines"]

MAX_QUERY_LIMIT = 1000
_PAGE = 1000


def record_from_row(row: Mapping[str, Any]) -> AuditRecord:
    """Rebuild a record from a database row; :class:`ValueError` if the row is not a valid event."""
    event = AuditEvent(
        service=row["service"],
        action=row["action"],
        outcome=row["outcome"],
        org=row["org"],
        vault=row["vault"],
        secret=row["secret"],
        version=row["version"],
        token_id=row["token_id"],
        lineage=tuple(row["lineage"]),
        actor=row["actor"],
        client_addr=row["client_addr"],
        request_id=row["request_id"],
        detail=row["detail"],
    )
    return AuditRecord(row["seq"], row["at"], event, row["prev_hash"], row["hash"])


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row in the served/exported shape, whether or not it is still a valid event."""
    body = dict(row)
    body["at"] = row["at"].astimezone(UTC).isoformat()
    body["prev_hash"] = row["prev_hash"].hex()
    body["hash"] = row["hash"].hex()
    return body


class AuditQueries:
    """Queries, verification and export of one chain (``repository``'s)."""

    def __init__(self, repository: AuditRepository) -> None:
        self._repository = repository

    async def query(
        self,
        *,
        org: int | None = None,
        vault: str | None = None,
        secret: str | None = None,
        actor: str | None = None,
        token_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events matching every given filter, oldest first (or newest first), at most ``limit``.

        ``token_id`` also matches the events of tokens derived from it (stripped
        service tokens carry their parent in ``lineage``). ``since`` is inclusive,
        ``until`` exclusive. Returns ``(events, next_cursor)``; pass ``next_cursor``
        back as ``cursor`` for the next page; it is None on the last page.
        Callers (the HTTP layer) validate user input; here a bad ``limit`` is a bug.
        """
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_QUERY_LIMIT}")
        equals = {
            name: value
            for name, value in (
                ("org", org),
                ("vault", vault),
                ("secret", secret),
                ("actor", actor),
                ("action", action),
                ("outcome", outcome),
            )
            if value is not None
        }
        rows = await self._repository.select(
            equals=equals,
            token_id=token_id,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit + 1,
            newest_first=newest_first,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = rows[-1]["seq"] if more else None
        return [row_json(row) for row in rows], next_cursor

    async def _rows_upto_head(self, head_seq: int) -> AsyncIterator[dict[str, Any]]:
        # Keyset pages, each its own short query: no transaction is held open while
        # millions of rows stream, and appends go on meanwhile (beyond head_seq).
        after = 0
        while True:
            rows = await self._repository.rows(after_seq=after, upto_seq=head_seq, limit=_PAGE)
            for row in rows:
                yield row
            if len(rows) < _PAGE:
                return
            after = rows[-1]["seq"]

    async def verify(self) -> ChainReport:
        """Recompute every hash of the log, up to its head as of the start; the report names the first broken link."""
        head = await self._repository.head()
        verifier = ChainVerifier()
        async for row in self._rows_upto_head(head[0]):
            try:
                record = record_from_row(row)
            except ValueError as exc:
                return verifier.fail(row["seq"], f"event {row['seq']}: {exc} (edited?)")
            if not verifier.feed(record):
                return verifier.finish()
        return verifier.finish(head)

    async def export(self) -> AsyncIterator[str]:
        """Every event up to the head as of the start, as JSON lines (each ending in ``\\n``)."""
        head_seq, _ = await self._repository.head()
        async for row in self._rows_upto_head(head_seq):
            yield json.dumps(row_json(row), sort_keys=True, separators=(",", ":")) + "\n"


def verify_lines(lines: Iterable[str]) -> ChainReport:
    """Verify an exported file (which must start at event 1); blank lines are ignored."""
    verifier = ChainVerifier()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = AuditRecord.from_json(json.loads(line))
        except ValueError as exc:
            return verifier.fail(verifier.last_seq + 1, f"line {number}: {exc}")
        if not verifier.feed(record):
            break
    return verifier.finish()
