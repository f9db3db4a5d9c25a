"""Audit events and the hash chain that makes them tamper-evident.

An :class:`AuditEvent` is what a service reports ("who did what to which
secret, and was it allowed"); an :class:`AuditRecord` is that event once the
log has placed it in the chain: its sequence number, its time, the hash of the
record before it and its own hash::

    hash = SHA-256(prev_hash || canonical_bytes(record))

The first record's ``prev_hash`` is 32 zero bytes (:data:`GENESIS_HASH`).

There is one chain per writer (docs/audit.md, "Chains"): a record's place is its
``chain`` and its ``chain_seq`` there; ``seq`` is only the log's global order, for
paging, handed out by the database when the row is inserted.

Canonical bytes are the compact JSON (sorted keys, ``","`` and ``":"``
separators, ASCII only) of every field of the record except the two hashes and,
in format 2, ``seq``, plus ``"v"``, the format version. Format 1 (records written
before chains existed, all in chain 0, where ``chain_seq`` is ``seq``) holds
``seq``; format 2 holds ``chain`` and ``chain_seq`` instead. ``at`` is written as integer
microseconds since the Unix epoch (UTC): PostgreSQL keeps ``timestamptz`` to the
microsecond, so the value read back is exactly the value hashed, whatever the
server's time zone. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "LEGACY_FORMAT",
    "OUTCOMES",
    "AuditEvent",
    "AuditRecord",
    "canonical_bytes",
    "chain",
    "chain_hash",
    "microseconds",
    "placed_at",
]

FORMAT_VERSION = 2  # what new records are written in
LEGACY_FORMAT = 1  # the single chain's records, before there was one chain per writer; they still verify
GENESIS_HASH = bytes(32)
OUTCOMES = ("ok", "denied", "error")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Bounds that keep every event storable and its JSON round trip exact.
_MAX_TEXT = 4096
_MAX_DETAIL_DEPTH = 8
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


_EMPTY_DETAIL: Mapping[str, Any] = MappingProxyType({})

# The one encoder of canonical JSON (and of the detail column): sorted keys, compact, ASCII only.
# Built once, as json.dumps would build one per call. No circularity check: what it encodes is
# fields()'s fresh copy, acyclic by construction, and every event logged passes here.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, check_circular=False)


def _check_text(value: str, what: str) -> None:
    if len(value) > _MAX_TEXT:
        raise ValueError(f"audit {what} is longer than {_MAX_TEXT} characters")
    if "\x00" in value:
        raise ValueError(f"audit {what} contains a NUL character")
    if not value.isascii():  # only non-ASCII text can hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"audit {what} is not valid Unicode") from None


def _check_detail(value: Any, depth: int = 0) -> None:
    """Only JSON values whose round trip through ``jsonb`` is exact.

    Floats are refused: ``jsonb`` stores them as ``numeric`` and may print them
    back differently (``1e100``), which would break the hash of an honest record.
    """
    if depth > _MAX_DETAIL_DEPTH:
        raise ValueError("audit detail nests too deeply")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError("audit detail integers must fit in 64 bits")
        return
    if isinstance(value, str):
        _check_text(value, "detail value")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_detail(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("audit detail keys must be strings")
            _check_text(key, "detail key")
            _check_detail(item, depth + 1)
        return
    raise ValueError(
        f"audit detail values must be JSON strings, integers, booleans, lists or objects, not {type(value).__name__}"
    )


def _frozen_detail(detail: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # Most events have none (checked by type first: an ABC isinstance is slow).
    if detail is None or detail is _EMPTY_DETAIL or (type(detail) is dict and not detail):
        return _EMPTY_DETAIL
    if not isinstance(detail, Mapping):
        raise ValueError("audit detail must be a mapping")
    if not detail:
        return _EMPTY_DETAIL
    _check_detail(detail)
    # A caller mutating its dict afterwards must not change what gets hashed.
    return MappingProxyType(_plain(detail))


def _plain(value: Any) -> Any:
    """A detached, JSON-shaped copy (tuples become lists, mappings dicts)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


_OPTIONAL_TEXT = ("vault", "secret", "token_id", "actor", "client_addr", "request_id")


def _check_int(value: object, what: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not _INT_MIN <= value <= _INT_MAX
    ):
        raise ValueError(f"audit {what} must be a 64-bit integer")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something a service did or refused, as it will appear in the audit log.

    Never put a secret value, a key or a whole token in any field: ``token_id``
    is the token's UUID, ``detail`` small facts such as the reasons of a denial.
    Invalid fields raise :class:`ValueError` at construction, where the bug is.
    Immutable: ``lineage`` is kept as a tuple, ``detail`` frozen into a read-only copy.
    """

    service: str
    action: str
    outcome: str
    org: int | None = None
    vault: str | None = None
    secret: str | None = None
    version: int | None = None
    token_id: str | None = None
    lineage: tuple[str, ...] = ()
    actor: str | None = None
    client_addr: str | None = None
    request_id: str | None = None
    # A factory because a mapping proxy counts as a mutable default; it returns the one shared empty proxy.
    detail: Mapping[str, Any] = field(default_factory=lambda: _EMPTY_DETAIL)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        for name in ("service", "action"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"audit {name} must be a non-empty string")
            _check_text(value, name)
        for name in _OPTIONAL_TEXT:
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, str):
                    raise ValueError(f"audit {name} must be a string")
                _check_text(value, name)
        _check_int(self.org, "org")
        _check_int(self.version, "version")
        lineage = self.lineage
        if type(lineage) is not tuple:
            # A caller's list (or generator) becomes the tuple the event keeps: frozen, hence
            # object.__setattr__, while the event is still being built.
            lineage = tuple(lineage)
            object.__setattr__(self, "lineage", lineage)
        for item in lineage:
            if not isinstance(item, str):
                raise ValueError("audit lineage must be a sequence of token ids")
            _check_text(item, "lineage entry")
        if self.detail is not _EMPTY_DETAIL:
            object.__setattr__(self, "detail", _frozen_detail(self.detail))

    def fields(self) -> dict[str, Any]:
        """The event's fields as plain JSON values."""
        return {
            "service": self.service,
            "action": self.action,
            "outcome": self.outcome,
            "org": self.org,
            "vault": self.vault,
            "secret": self.secret,
            "version": self.version,
            "token_id": self.token_id,
            "lineage": list(self.lineage),
            "actor": self.actor,
            "client_addr": self.client_addr,
            "request_id": self.request_id,
            "detail": _plain(self.detail) if self.detail else {},
        }

    def detail_json(self) -> str:
        """``detail`` as the JSON text the canonical bytes hold (for the ``jsonb`` column)."""
        return _ENCODER.encode(_plain(self.detail)) if self.detail else "{}"


def microseconds(at: datetime) -> int:
    """``at`` as integer microseconds since the epoch; exact, no float rounding."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return (at - _EPOCH) // _ONE_MICROSECOND


def _from_microseconds(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def canonical_bytes(
    seq: int, at: datetime, event: AuditEvent, *, chain: int = 0, chain_seq: int = 0, format: int = LEGACY_FORMAT
) -> bytes:
    """The bytes a record's hash covers (everything except the hashes, and in format 2 ``seq``)."""
    if format == LEGACY_FORMAT:
        return _canonical(seq, microseconds(at), event)
    if format == FORMAT_VERSION:
        return _canonical_v2(chain, chain_seq, microseconds(at), event)
    raise ValueError(f"unknown audit record format {format!r}")


def _canonical(seq: int, micros: int, event: AuditEvent) -> bytes:
    body = event.fields()
    body["seq"] = seq
    body["at"] = micros
    body["v"] = LEGACY_FORMAT
    return _ENCODER.encode(body).encode("ascii")


def _canonical_v2(chain: int, chain_seq: int, micros: int, event: AuditEvent) -> bytes:
    body = event.fields()
    body["chain"] = chain
    body["chain_seq"] = chain_seq
    body["at"] = micros
    body["v"] = FORMAT_VERSION
    return _ENCODER.encode(body).encode("ascii")


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


@dataclass(frozen=True, slots=True, repr=False)
class AuditRecord:
    """An event at its place in its chain.

    ``canonical`` is :func:`canonical_bytes` of the record, computed when not given
    (:func:`chain` gives the bytes it hashed, and the log stores exactly those).
    A format 1 record is in chain 0 at ``chain_seq == seq``. A format 2 record placed
    by :func:`chain` has ``seq`` 0 until it is stored (the database numbers it).
    """

    seq: int
    at: datetime
    event: AuditEvent
    prev_hash: bytes
    hash: bytes
    canonical: bytes = b""
    chain: int = 0
    chain_seq: int = 0
    format: int = LEGACY_FORMAT

    def __post_init__(self) -> None:
        if self.format == LEGACY_FORMAT and not self.chain_seq:
            object.__setattr__(self, "chain_seq", self.seq)
        if not self.canonical:  # never empty once computed: the JSON has at least its braces
            object.__setattr__(
                self,
                "canonical",
                canonical_bytes(
                    self.seq, self.at, self.event, chain=self.chain, chain_seq=self.chain_seq, format=self.format
                ),
            )

    def __repr__(self) -> str:
        return (
            f"AuditRecord(seq={self.seq}, chain={self.chain}, chain_seq={self.chain_seq}, at={self.at!r}, "
            f"event={self.event!r}, hash={self.hash.hex()})"
        )

    def expected_hash(self) -> bytes:
        """What ``hash`` must be if nothing in this record was changed."""
        return chain_hash(self.prev_hash, self.canonical)

    def to_json(self) -> dict[str, Any]:
        """The record as exported and served: ``at`` in ISO 8601 UTC, hashes in hex."""
        body: dict[str, Any] = {
            "seq": self.seq,
            "chain": self.chain,
            "chain_seq": self.chain_seq,
            "v": self.format,
            "at": self.at.astimezone(UTC).isoformat(),
        }
        body.update(self.event.fields())
        body["prev_hash"] = self.prev_hash.hex()
        body["hash"] = self.hash.hex()
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AuditRecord:
        """Parse :meth:`to_json` output (an exported line); raises :class:`ValueError`."""
        try:
            at = datetime.fromisoformat(body["at"])
            # Through microseconds so the value is exactly what was hashed.
            at = _from_microseconds(microseconds(at))
            event = AuditEvent(
                service=body["service"],
                action=body["action"],
                outcome=body["outcome"],
                org=body.get("org"),
                vault=body.get("vault"),
                secret=body.get("secret"),
                version=body.get("version"),
                token_id=body.get("token_id"),
                lineage=tuple(body.get("lineage") or ()),
                actor=body.get("actor"),
                client_addr=body.get("client_addr"),
                request_id=body.get("request_id"),
                detail=body.get("detail") or {},
            )
            numbers = {}
            # Lines exported before chains existed have neither chain, chain_seq nor v: format 1, chain 0.
            for name, default in (("seq", None), ("chain", 0), ("chain_seq", 0), ("v", LEGACY_FORMAT)):
                value = body.get(name, default)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be an integer")
                numbers[name] = value
            return cls(
                numbers["seq"],
                at,
                event,
                bytes.fromhex(body["prev_hash"]),
                bytes.fromhex(body["hash"]),
                chain=numbers["chain"],
                chain_seq=numbers["chain_seq"],
                format=numbers["v"],
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an audit record: {type(exc).__name__} {exc}") from None


def chain(
    items: Iterable[tuple[datetime, AuditEvent]], chain_id: int, last_seq: int, last_hash: bytes
) -> Iterator[AuditRecord]:
    """Place events in chain ``chain_id`` after its record ``(last_seq, last_hash)``.

    ``0, GENESIS_HASH`` for a new chain; ``last_seq`` counts in the chain (chain_seq).
    """
    seq, prev = last_seq, last_hash
    last_at: datetime | None = None
    micros, stored_at = 0, _EPOCH
    for at, event in items:
        seq += 1
        if at is not last_at:  # the events of one submission share their time
            last_at = at
            micros = microseconds(at)
            # Round to what the database stores, so the hash covers the stored value (a UTC
            # datetime already is that value: its resolution is the microsecond).
            stored_at = at if at.tzinfo is UTC else _from_microseconds(micros)
        at = stored_at
        canonical = _canonical_v2(chain_id, seq, micros, event)
        digest = chain_hash(prev, canonical)
        yield AuditRecord(0, at, event, prev, digest, canonical, chain_id, seq, FORMAT_VERSION)
        prev = digest


def placed_at(at: datetime, events: Iterable[AuditEvent]) -> Callable[[int, int, bytes], list[AuditRecord]]:
    """What an appender calls with its chain and that chain's head, under its lock.

    It returns ``events``, all at ``at``, chained after that head.
    """
    items = [(at, event) for event in events]
    return lambda chain_id, last_seq, last_hash: list(chain(items, chain_id, last_seq, last_hash))
