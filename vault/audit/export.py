"""The export file: what a JSON-lines export holds besides its events, and how a file is verified offline.

An export is one JSON object per line (docs/audit.md, "Export"), in this order:

1. ``{"kind": "checkpoint", "id", "body", "prev_hash", "hash"}`` for every checkpoint, in id order;
2. one ``{"kind": "heads", "v": 1, "org": <org or null>, "heads": [[chain, chain_seq, hash], ...]}``:
   every chain's head as of the start of the export, read after the checkpoints;
3. the events (the served shape, no ``kind``) in seq order, each chain up to its head; an org's
   export (``org`` set) holds only that org's events, and a
   ``{"kind": "skip", "chain", "chain_seq", "hash"}`` line stands for the other orgs' events of a
   chain up to ``chain_seq`` (whose hash is ``hash``) wherever they come between the org's own;
4. ``{"kind": "end", "events": <how many event lines>}``.

:func:`verify_lines` refuses a file that lacks the heads or the end line (empty, truncated,
or written before the heads were exported), whose chains do not reach the heads it claims, or
whose checkpoints' chain is broken. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .chain import ChainReport, ChainVerifier, CheckpointVerifier, LogReport
from .event import AuditRecord

__all__ = ["EXPORT_FORMAT", "checkpoint_line", "end_line", "heads_line", "skip_line", "verify_lines"]

EXPORT_FORMAT = 1


def _line(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def checkpoint_line(row: Mapping[str, Any]) -> str:
    return _line(
        {
            "kind": "checkpoint",
            "id": row["id"],
            "body": row["body"],
            "prev_hash": row["prev_hash"].hex(),
            "hash": row["hash"].hex(),
        }
    )


def heads_line(heads: Sequence[tuple[int, int, bytes]], org: int | None) -> str:
    return _line(
        {
            "kind": "heads",
            "v": EXPORT_FORMAT,
            "org": org,
            "heads": [[chain, seq, digest.hex()] for chain, seq, digest in heads],
        }
    )


def skip_line(chain: int, chain_seq: int, digest: bytes) -> str:
    return _line({"kind": "skip", "chain": chain, "chain_seq": chain_seq, "hash": digest.hex()})


def end_line(events: int) -> str:
    return _line({"kind": "end", "events": events})


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def _hash(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("a hash must be hex text")
    digest = bytes.fromhex(text)
    if len(digest) != 32:
        raise ValueError("a hash must be 32 bytes")
    return digest


class _FileVerifier:
    """One pass over an export's lines; :meth:`report` says whether it is whole and intact."""

    def __init__(self) -> None:
        self.checkpoints = CheckpointVerifier()
        self.heads: dict[int, tuple[int, bytes]] | None = None
        self.org: int | None = None
        self.chains: dict[int, ChainVerifier] = {}
        self.events = 0
        self.ended: int | None = None
        self.problem: ChainReport | None = None

    def _chain(self, chain: int) -> ChainVerifier:
        verifier = self.chains.get(chain)
        if verifier is None:
            verifier = self.chains[chain] = ChainVerifier(chain=chain, checkpoint=self.checkpoints.heads.get(chain))
        return verifier

    def feed(self, body: Mapping[str, Any]) -> None:
        """Take one line; :class:`ValueError` for a line out of place or malformed."""
        if self.ended is not None:
            raise ValueError("a line after the end line")
        kind = body.get("kind")
        if kind == "checkpoint":
            if self.heads is not None:
                raise ValueError("a checkpoint after the heads line")
            row = {"id": _int(body, "id"), "body": body.get("body"), "prev_hash": _hash(body.get("prev_hash"))}
            if not isinstance(row["body"], str):
                raise ValueError("a checkpoint's body must be text")
            row["hash"] = _hash(body.get("hash"))
            self.checkpoints.feed(row)
            return
        if kind == "heads":
            if self.heads is not None:
                raise ValueError("a second heads line")
            if body.get("v") != 1:
                raise ValueError(f"export format {body.get('v')!r}: this cvault reads format 1")
            org = body.get("org")
            if org is not None and (isinstance(org, bool) or not isinstance(org, int)):
                raise ValueError("org must be an integer or null")
            heads = body.get("heads")
            if not isinstance(heads, list):
                raise ValueError("heads must be a list")
            self.heads = {}
            for entry in heads:
                if not (isinstance(entry, list) and len(entry) == 3):
                    raise ValueError("each head is [chain, chain_seq, hash]")
                chain, seq, digest = entry
                self.heads[_int({"chain": chain}, "chain")] = (_int({"chain_seq": seq}, "chain_seq"), _hash(digest))
            self.org = org
            return
        if self.heads is None:
            raise ValueError("an event before the heads line (not a cvault export, or one from before format 1)")
        if kind == "skip":
            if self.org is None:
                raise ValueError("a skip line in a whole log's export, which must hold every event")
            self._chain(_int(body, "chain")).skip(_int(body, "chain_seq"), _hash(body.get("hash")))
            return
        if kind == "end":
            self.ended = _int(body, "events")
            return
        if kind is not None:
            raise ValueError(f"unknown line kind {kind!r}")
        record = AuditRecord.from_json(body)
        if self.org is not None and record.event.org != self.org:
            raise ValueError(f"an event of org {record.event.org} in org {self.org}'s export")
        self.events += 1
        self._chain(record.chain).feed(record)

    def report(self) -> LogReport:
        checkpoints = self.checkpoints.finish()
        if self.problem is not None:
            return LogReport((checkpoints, self.problem))
        if self.heads is None:
            return _broken("no heads line: the file is empty, truncated before its events, or not a cvault export")
        if self.ended is None:
            return _broken(f"no end line after {self.events} event(s): the export is truncated")
        if self.ended != self.events:
            return _broken(f"the end line counts {self.ended} event(s), the file holds {self.events}")
        reports = [checkpoints]
        for chain in sorted(self.heads.keys() | self.chains.keys() | self.checkpoints.heads.keys()):
            if chain not in self.heads:
                reason = "its events are in the file" if chain in self.chains else "the last checkpoint records it"
                reports.append(
                    ChainReport(False, 0, 0, 1, f"chain {chain}: not in the heads line, but {reason}", chain)
                )
                continue
            reports.append(self._chain(chain).finish(self.heads[chain]))
        return LogReport(tuple(reports))


def _broken(message: str) -> LogReport:
    return LogReport((ChainReport(False, 0, 0, None, message, -1),))


def verify_lines(lines: Iterable[str]) -> LogReport:
    """Verify an exported file: whole (heads and end line), each chain from its event 1 to its head; blank
    lines are ignored."""
    verifier = _FileVerifier()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            verifier.feed(body)
        except (ValueError, RecursionError) as exc:
            # Which chain the line was in is unknown: the file is broken from here on.
            verifier.problem = ChainReport(False, 0, 0, None, f"line {number}: {exc}", -1)
            break
    return verifier.report()
