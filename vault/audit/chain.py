"""Recomputing the hash chains: finds each chain's first record that was edited, deleted or relinked.

:class:`ChainVerifier` is fed one chain's records in ``chain_seq`` order (from
the database or from an exported file) and stops at the first broken link.
Three checks per record, in this order, so the sentence names the most likely cause:

1. ``chain_seq`` follows the previous record's (a gap means records were deleted);
2. ``prev_hash`` equals the previous record's ``hash`` (records were reordered,
   or an edited record's hash was recomputed to hide the edit);
3. ``hash`` equals ``SHA-256(prev_hash || canonical bytes)`` (the record's
   contents were edited).

Deleting the newest records leaves a valid but shorter chain; the chain's head
row (last chain_seq and hash, updated in the same transaction as every insert)
catches that: :meth:`ChainVerifier.finish` compares the end of the chain with it.
A head rewound with the tail, or a chain deleted whole, is caught by the last
checkpoint (:class:`CheckpointVerifier`), which recorded every chain's head.
:class:`LogReport` gathers the chains' reports.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .event import GENESIS_HASH, AuditRecord, chain_hash

__all__ = ["CHECKPOINT_FORMAT", "ChainReport", "ChainVerifier", "CheckpointVerifier", "LogReport", "checkpoint_body"]

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification.

    ``checked`` counts the records found intact before the first break;
    ``broken_seq`` is the chain_seq the problem is reported at (None when ``ok``),
    ``message`` a sentence for the operator. ``chain`` is the chain's id
    (-1 for the checkpoints' own chain).
    """

    ok: bool
    checked: int
    last_seq: int
    broken_seq: int | None = None
    message: str = ""
    chain: int = 0


@dataclass(frozen=True, slots=True)
class LogReport:
    """Every chain's report (and the checkpoints'); ``ok`` only if all are."""

    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.chains)

    @property
    def checked(self) -> int:
        return sum(report.checked for report in self.chains if report.chain >= 0)

    @property
    def broken(self) -> tuple[ChainReport, ...]:
        return tuple(report for report in self.chains if not report.ok)

    @property
    def broken_seq(self) -> int | None:
        """The first broken chain's broken link."""
        broken = self.broken
        return broken[0].broken_seq if broken else None

    def to_json(self) -> dict[str, Any]:
        """The report as the store's ``/audit/verify`` serves it and ``cvault audit verify --json`` prints it."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "message": self.message,
            "chains": [
                {
                    "chain": c.chain,
                    "ok": c.ok,
                    "checked": c.checked,
                    "last_seq": c.last_seq,
                    "broken_seq": c.broken_seq,
                    "message": c.message,
                }
                for c in self.chains
            ],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> LogReport:
        """Parse :meth:`to_json` (a store's reply); :class:`ValueError` if it is not one."""
        try:
            chains = tuple(
                ChainReport(
                    ok=bool(c["ok"]),
                    checked=int(c["checked"]),
                    last_seq=int(c.get("last_seq", 0)),
                    broken_seq=None if c.get("broken_seq") is None else int(c["broken_seq"]),
                    message=str(c["message"]),
                    chain=int(c["chain"]),
                )
                for c in body["chains"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a verification report ({type(exc).__name__})") from None
        report = cls(chains)
        if report.ok != body.get("ok"):
            raise ValueError("not a verification report (its chains and its verdict disagree)")
        return report

    @property
    def message(self) -> str:
        if self.ok:
            count = sum(1 for report in self.chains if report.chain >= 0)
            events = "event" if self.checked == 1 else "events"
            chains = "chain" if count == 1 else "chains"
            return f"{self.checked} {events} in {count} {chains} verified; every chain is intact"
        return "; ".join(report.message for report in self.broken)


class ChainVerifier:
    def __init__(
        self,
        *,
        chain: int = 0,
        start_seq: int = 0,
        start_hash: bytes = GENESIS_HASH,
        checkpoint: tuple[int, bytes] | None = None,
    ) -> None:
        """Verify chain ``chain`` that continues after record ``start_seq`` whose hash is ``start_hash``.

        ``checkpoint`` is the (chain_seq, hash) the last checkpoint recorded for this chain: the
        chain must reach it, with that hash there.
        """
        self._chain = chain
        self._prefix = f"chain {chain}: "
        self._last_seq = start_seq
        self._last_hash = start_hash
        self._checkpoint = checkpoint
        self._checked = 0
        self._broken: ChainReport | None = None
        self.skipped = 0
        """How many runs of other orgs' events :meth:`skip` passed over."""

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
            self._broken = ChainReport(False, self._checked, self._last_seq, seq, self._prefix + message, self._chain)
        return self._broken

    def _fail(self, seq: int, message: str) -> bool:
        self.fail(seq, message)
        return False

    def feed(self, record: AuditRecord) -> bool:
        """Check the next record; False once the chain is broken (later records are ignored)."""
        if self._broken is not None:
            return False
        expected = self._last_seq + 1
        position = record.chain_seq
        # Format 2 records are numbered twice: their place in the chain, and the log's seq (for finding the row).
        where = f"event {position}" + (f" (seq {record.seq})" if record.seq and record.seq != position else "")
        if record.chain != self._chain:
            return self._fail(position, f"{where} claims chain {record.chain}")
        if position != expected:
            if position > expected:
                gap = f"event {expected}" if position == expected + 1 else f"events {expected}-{position - 1}"
                return self._fail(
                    expected,
                    f"{gap} missing (deleted?): seq jumps from {self._last_seq} to {position}",
                )
            return self._fail(position, f"{where} out of order: it follows event {self._last_seq}")
        if not hmac.compare_digest(record.prev_hash, self._last_hash):
            before = f"event {self._last_seq}" if self._last_seq else "the genesis hash"
            return self._fail(position, f"{where}: prev_hash does not match {before}")
        if not hmac.compare_digest(record.hash, record.expected_hash()):
            return self._fail(position, f"{where}: hash does not match its contents (edited?)")
        checkpoint = self._checkpoint
        if checkpoint is not None and position == checkpoint[0] and not hmac.compare_digest(record.hash, checkpoint[1]):
            return self._fail(position, f"{where}: hash does not match the hash the last checkpoint recorded")
        self._last_seq = position
        self._last_hash = record.hash
        self._checked += 1
        return True

    def skip(self, position: int, digest: bytes) -> bool:
        """Accept, unseen, the chain's events up to ``position`` whose last hash is ``digest``.

        An org's export (docs/audit.md, "Export") leaves out the other orgs' events between its
        own; their hashes cannot be recomputed here, but the next event's ``prev_hash`` must be
        ``digest``, and a head or checkpoint that falls on ``position`` must record it.
        """
        if self._broken is not None:
            return False
        if position <= self._last_seq:
            return self._fail(position, f"a skip to event {position} goes back from event {self._last_seq}")
        checkpoint = self._checkpoint
        if checkpoint is not None and position == checkpoint[0] and not hmac.compare_digest(digest, checkpoint[1]):
            return self._fail(position, f"event {position}: hash does not match the hash the last checkpoint recorded")
        self._last_seq = position
        self._last_hash = digest
        self.skipped += 1
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
        if self._checkpoint is not None and self._checkpoint[0] > self._last_seq:
            seq = self._checkpoint[0]
            gap = f"event {seq}" if seq == self._last_seq + 1 else f"events {self._last_seq + 1}-{seq}"
            return self.fail(
                self._last_seq + 1,
                f"{gap} missing (deleted?): the last checkpoint records event {seq} "
                f"but the chain ends at event {self._last_seq}",
            )
        noun = "event" if self._checked == 1 else "events"
        others = f", {self._last_seq - self._checked} of other orgs passed over by their hashes" if self.skipped else ""
        return ChainReport(
            True,
            self._checked,
            self._last_seq,
            None,
            f"{self._prefix}{self._checked} {noun} verified{others}; the chain is intact",
            self._chain,
        )


def checkpoint_body(checkpoint_id: int, heads: Sequence[tuple[int, int, bytes]]) -> str:
    """A checkpoint's canonical JSON: what its hash covers, stored as it was hashed (its time is not covered)."""
    body = {
        "heads": [[chain, seq, digest.hex()] for chain, seq, digest in heads],
        "id": checkpoint_id,
        "v": CHECKPOINT_FORMAT,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


class CheckpointVerifier:
    """The checkpoints' own hash chain, fed in id order; keeps the heads the last intact one recorded."""

    def __init__(self) -> None:
        self._last_id = 0
        self._last_hash = GENESIS_HASH
        self._broken: ChainReport | None = None
        self.heads: dict[int, tuple[int, bytes]] = {}

    def _fail(self, number: int, message: str) -> bool:
        if self._broken is None:
            self._broken = ChainReport(False, self._last_id, self._last_id, number, f"checkpoints: {message}", -1)
        return False

    def feed(self, row: Mapping[str, Any]) -> bool:
        if self._broken is not None:
            return False
        number = row["id"]
        expected = self._last_id + 1
        if number != expected:
            return self._fail(expected, f"checkpoint {expected} missing (deleted?): ids jump to {number}")
        if not hmac.compare_digest(row["prev_hash"], self._last_hash):
            return self._fail(number, f"checkpoint {number}: prev_hash does not match checkpoint {number - 1}")
        if not hmac.compare_digest(row["hash"], chain_hash(row["prev_hash"], row["body"].encode("utf-8"))):
            return self._fail(number, f"checkpoint {number}: hash does not match its contents (edited?)")
        try:
            body = json.loads(row["body"])
            if body["id"] != number:
                raise ValueError("its id is not the row's")
            heads = {int(c): (int(s), bytes.fromhex(h)) for c, s, h in body["heads"]}
        except (ValueError, KeyError, TypeError) as exc:
            return self._fail(number, f"checkpoint {number}: not a checkpoint ({type(exc).__name__})")
        self._last_id = number
        self._last_hash = row["hash"]
        self.heads = heads
        return True

    def finish(self) -> ChainReport:
        if self._broken is not None:
            return self._broken
        noun = "checkpoint" if self._last_id == 1 else "checkpoints"
        return ChainReport(True, self._last_id, self._last_id, None, f"{self._last_id} {noun} verified", -1)
