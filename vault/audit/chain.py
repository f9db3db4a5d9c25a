"""Recomputing the hash chain: finds the first record that was edited, deleted or relinked.

:class:`ChainVerifier` is fed records in ``seq`` order (from the database or
from an exported file) and stops at the first broken link. Three checks per
record, in this order, so the sentence names the most likely cause:

1. ``seq`` follows the previous record's (a gap means records were deleted);
2. ``prev_hash`` equals the previous record's ``hash`` (records were reordered,
   or an edited record's hash was recomputed to hide the edit);
3. ``hash`` equals ``SHA-256(prev_hash || canonical bytes)`` (the record's
   contents were edited).

Deleting the newest records leaves a valid but shorter chain; the log's head
row (last seq and hash, updated in the same transaction as every insert)
catches that: :meth:`ChainVerifier.finish` compares the end of the chain with it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .event import GENESIS_HASH, AuditRecord

__all__ = ["ChainReport", "ChainVerifier"]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification.

    ``checked`` counts the records found intact before the first break;
    ``broken_seq`` is the seq the problem is reported at (None when ``ok``),
    ``message`` a sentence for the operator.
    """

    ok: bool
    checked: int
    last_seq: int
    broken_seq: int | None = None
    message: str = ""


class ChainVerifier:
    def __init__(self, *, start_seq: int = 0, start_hash: bytes = GENESIS_HASH) -> None:
        """Verify a chain that continues after record ``start_seq`` whose hash is ``start_hash``."""
        self._last_seq = start_seq
        self._last_hash = start_hash
        self._checked = 0
        self._broken: ChainReport | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    @property
    def last_seq(self) -> int:
        """The seq of the last record found intact."""
        return self._last_seq

    def fail(self, seq: int, message: str) -> ChainReport:
        """Record a break found outside :meth:`feed` (a record that cannot even be read)."""
        if self._broken is None:
            self._broken = ChainReport(False, self._checked, self._last_seq, seq, message)
        return self._broken

    def _fail(self, seq: int, message: str) -> bool:
        self.fail(seq, message)
        return False

    def feed(self, record: AuditRecord) -> bool:
        """Check the next record; False once the chain is broken (later records are ignored)."""
        if self._broken is not None:
            return False
        expected = self._last_seq + 1
        if record.seq != expected:
            if record.seq > expected:
                gap = f"event {expected}" if record.seq == expected + 1 else f"events {expected}-{record.seq - 1}"
                return self._fail(
                    expected,
                    f"{gap} missing (deleted?): seq jumps from {self._last_seq} to {record.seq}",
                )
            return self._fail(record.seq, f"event {record.seq} out of order: it follows event {self._last_seq}")
        if not hmac.compare_digest(record.prev_hash, self._last_hash):
            before = f"event {self._last_seq}" if self._last_seq else "the genesis hash"
            return self._fail(record.seq, f"event {record.seq}: prev_hash does not match {before}")
        if not hmac.compare_digest(record.hash, record.expected_hash()):
            return self._fail(record.seq, f"event {record.seq}: hash does not match its contents (edited?)")
        self._last_seq = record.seq
        self._last_hash = record.hash
        self._checked += 1
        return True

    def finish(self, head: tuple[int, bytes] | None = None) -> ChainReport:
        """The report; ``head`` is the log's recorded (last seq, last hash), if known."""
        if self._broken is not None:
            return self._broken
        if head is not None:
            head_seq, head_hash = head
            if head_seq > self._last_seq:
                gap = (
                    f"event {head_seq}" if head_seq == self._last_seq + 1 else f"events {self._last_seq + 1}-{head_seq}"
                )
                return self.fail(
                    self._last_seq + 1,
                    f"{gap} missing (deleted?): the log's head records event {head_seq} "
                    f"but the chain ends at event {self._last_seq}",
                )
            if head_seq == self._last_seq and not hmac.compare_digest(head_hash, self._last_hash):
                return self.fail(head_seq, f"event {head_seq}: hash does not match the hash the log's head recorded")
        noun = "event" if self._checked == 1 else "events"
        return ChainReport(
            True, self._checked, self._last_seq, None, f"{self._checked} {noun} verified; the chain is intact"
        )
