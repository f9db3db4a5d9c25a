"""Reading the audit log: filtered queries, chain verification, JSON-lines export.

:class:`AuditQueries` is the service (over the chain's :class:`~vault.audit.interfaces.AuditRepository`);
:func:`verify_lines` checks an exported file and needs no database.

Rows are served and exported in one JSON shape, :meth:`AuditRecord.to_json`'s:
``at`` in ISO 8601 (UTC, microseconds), ``prev_hash`` and ``hash`` in hex. An
exported file can therefore be verified offline with :func:`verify_lines`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from vault.errors import RateLimited
from vault.types import Clock

from .chain import ChainReport, ChainVerifier, CheckpointVerifier, LogReport
from .event import LEGACY_FORMAT, AuditEvent, AuditRecord
from .export import checkpoint_line, end_line, heads_line, skip_line, verify_lines
from .interfaces import AuditRepository, AuditRow

__all__ = ["MAX_QUERY_LIMIT", "AuditQueries", "record_from_row", "row_json", "verify_lines"]

MAX_QUERY_LIMIT = 1000
_PAGE = 1000
_EXPORT_RETRY = 30  # seconds a caller refused an export slot is told to wait


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
    return AuditRecord(
        row["seq"],
        row["at"],
        event,
        row["prev_hash"],
        row["hash"],
        chain=row.get("chain", 0),
        chain_seq=row.get("chain_seq", 0),
        format=row.get("v", LEGACY_FORMAT),
    )


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row in the served/exported shape, whether or not it is still a valid event."""
    body = dict(row)
    body["at"] = row["at"].astimezone(UTC).isoformat()
    body["prev_hash"] = row["prev_hash"].hex()
    body["hash"] = row["hash"].hex()
    return body


class AuditQueries:
    """Queries, verification and export of a service's log (every chain of ``repository``'s)."""

    def __init__(self, repository: AuditRepository, *, clock: Clock = time.time, max_exports: int = 2) -> None:
        self._repository = repository
        self._clock = clock
        self._max_exports = max_exports
        self._exporting = 0
        self._verifying: asyncio.Task[LogReport] | None = None
        self._verified: tuple[float, LogReport] | None = None

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
        hide_audit_of: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events matching every given filter, oldest first (or newest first), at most ``limit``.

        ``token_id`` also matches the events of tokens derived from it (stripped
        service tokens carry their parent in ``lineage``). ``since`` is inclusive,
        ``until`` exclusive. Returns ``(events, next_cursor)``; pass ``next_cursor``
        back as ``cursor`` for the next page; it is None on the last page. ``hide_audit_of``
        (``{"actor": ..., "token_id": ...}``) leaves out the ``audit.*`` events of that actor or token.
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
            hide_audit_of=hide_audit_of,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = rows[-1]["seq"] if more else None
        return [row_json(row) for row in rows], next_cursor

    async def _chain_rows(self, chain: int, upto: int) -> AsyncIterator[AuditRow]:
        # Keyset pages, each its own short query: no transaction is held open while
        # millions of rows stream, and appends go on meanwhile (beyond the head).
        after = 0
        while True:
            rows = await self._repository.chain_rows(chain, after_seq=after, upto_seq=upto, limit=_PAGE)
            for row in rows:
                yield row
            if len(rows) < _PAGE:
                return
            after = rows[-1]["chain_seq"]

    async def _verify_checkpoints(self) -> tuple[ChainReport, dict[int, tuple[int, bytes]]]:
        verifier = CheckpointVerifier()
        after = 0
        while True:
            rows = await self._repository.checkpoints(after_id=after, limit=_PAGE)
            for row in rows:
                if not verifier.feed(row):
                    return verifier.finish(), verifier.heads
            if len(rows) < _PAGE:
                return verifier.finish(), verifier.heads
            after = rows[-1]["id"]

    async def _verify_chain(
        self, chain: int, head: tuple[int, bytes], checkpoint: tuple[int, bytes] | None
    ) -> ChainReport:
        verifier = ChainVerifier(chain=chain, checkpoint=checkpoint)
        async for row in self._chain_rows(chain, head[0]):
            try:
                record = record_from_row(row)
            except ValueError as exc:
                return verifier.fail(row["chain_seq"], f"event {row['chain_seq']} (seq {row['seq']}): {exc} (edited?)")
            if not verifier.feed(record):
                return verifier.finish()
        return verifier.finish(head)

    async def verify(self, *, reuse_for: float = 0) -> LogReport:
        """Recompute every hash of every chain, each up to its head as of the start, and check the chains
        against the last checkpoint; the report names each broken chain's first broken link.

        Callers that ask while a verification runs share its report: the store serves this to any caller
        with ``a``, and a verification reads the whole log, so N callers cost one pass, not N at once.
        With ``reuse_for`` (seconds), a report that finished less than that long ago is answered again
        instead of starting a pass: callers in a loop cost one pass per ``reuse_for``, not one after another.
        """
        verified = self._verified
        if reuse_for > 0 and verified is not None and 0 <= self._clock() - verified[0] < reuse_for:
            return verified[1]
        if self._verifying is None or self._verifying.done():
            self._verifying = asyncio.ensure_future(self._verify())
        # Shielded: one caller going away does not cancel the others' verification.
        return await asyncio.shield(self._verifying)

    async def _verify(self) -> LogReport:
        # Checkpoints first: a head read afterwards is at or past what any of them recorded.
        checkpoints, checkpointed = await self._verify_checkpoints()
        heads = {chain: (seq, digest) for chain, seq, digest in await self._repository.heads()}
        reports = [checkpoints]
        for chain in sorted(heads.keys() | checkpointed.keys()):
            if chain not in heads:
                seq = checkpointed[chain][0]
                reports.append(
                    ChainReport(
                        False,
                        0,
                        0,
                        1,
                        f"chain {chain}: missing (deleted?): the last checkpoint records its event {seq}",
                        chain,
                    )
                )
                continue
            reports.append(await self._verify_chain(chain, heads[chain], checkpointed.get(chain)))
        report = LogReport(tuple(reports))
        self._verified = (self._clock(), report)
        return report

    @contextlib.contextmanager
    def export_slot(self) -> Iterator[None]:
        """Hold one of ``max_exports`` places for an export; :class:`RateLimited` when all are taken.

        Each export is a pass over the log (an org's too: its events are spread through it), and the
        store serves them to any caller with ``a``: taken before the reply starts, so a refusal is a 429.
        """
        if self._exporting >= self._max_exports:
            raise RateLimited(
                f"{self._max_exports} audit exports are running on this store; try again when one has finished",
                retry_after=_EXPORT_RETRY,
            )
        self._exporting += 1
        try:
            yield
        finally:
            self._exporting -= 1

    async def export(self, org: int | None = None) -> AsyncIterator[str]:
        """The log as an export file's lines (:mod:`vault.audit.export`), each ending in ``\\n``.

        Every checkpoint, then every chain's head as of the start, then every event up to the
        heads in seq order (``org``: only that org's, with skip lines for the others' in between),
        then the end line.
        """
        after_id = 0
        while True:
            checkpoints = await self._repository.checkpoints(after_id=after_id, limit=_PAGE)
            for checkpoint in checkpoints:
                yield checkpoint_line(checkpoint)
            if len(checkpoints) < _PAGE:
                break
            after_id = checkpoints[-1]["id"]
        heads = await self._repository.heads()
        yield heads_line(heads, org)
        bounds = {chain: seq for chain, seq, _ in heads}
        reached = dict.fromkeys(bounds, 0)
        count = 0
        after = 0
        while True:
            rows = await self._repository.rows(after_seq=after, heads=bounds, limit=_PAGE, org=org)
            for row in rows:
                chain, position = row["chain"], row["chain_seq"]
                if position > reached[chain] + 1:
                    yield skip_line(chain, position - 1, row["prev_hash"])
                reached[chain] = position
                count += 1
                yield json.dumps(row_json(row), sort_keys=True, separators=(",", ":")) + "\n"
            if len(rows) < _PAGE:
                break
            after = rows[-1]["seq"]
        for chain, seq, digest in heads:
            if reached[chain] < seq:
                yield skip_line(chain, seq, digest)
        yield end_line(count)
