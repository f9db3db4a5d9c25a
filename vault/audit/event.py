"""Audit events and the hash chain that makes them tamper-evident.

An :class:`AuditEvent` is what a service reports ("who did what to which
secret, and was it allowed"); an :class:`AuditRecord` is that event once the
log has placed it in the chain: its sequence number, its time, the hash of the
record before it and its own hash::

    hash = SHA-256(prev_hash || canonical_bytes(record))

The first record's ``prev_hash`` is 32 zero bytes (:data:`GENESIS_HASH`).

Canonical bytes are the compact JSON (sorted keys, ``","`` and ``":"``
separators, ASCII only) of every field of the record except the two hashes,
plus ``"v": 1``, the format version. ``at`` is written as integer
microseconds since the Unix epoch (UTC): PostgreSQL keeps ``timestamptz`` to the
microsecond, so the value read back is exactly the value hashed, whatever the
server's time zone. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "OUTCOMES",
    "AuditEvent",
    "AuditRecord",
    "canonical_bytes",
    "chain",
    "chain_hash",
    "microseconds",
]

FORMAT_VERSION = 1
GENESIS_HASH = bytes(32)
OUTCOMES = ("ok", "denied", "error")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Bounds that keep every event storable and its JSON round trip exact.
_MAX_TEXT = 4096
_MAX_DETAIL_DEPTH = 8
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


_EMPTY_DETAIL: Mapping[str, Any] = MappingProxyType({})


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


class _EventFields(NamedTuple):
    service: str
    action: str
    outcome: str
    org: int | None
    vault: str | None
    secret: str | None
    version: int | None
    token_id: str | None
    lineage: tuple[str, ...]
    actor: str | None
    client_addr: str | None
    request_id: str | None
    detail: Mapping[str, Any]


_OPTIONAL_TEXT = ("vault", "secret", "token_id", "actor", "client_addr", "request_id")


def _plain_fields(
    service: object,
    action: object,
    optional: tuple[object, ...],
    lineage: tuple[object, ...],
    org: object,
    version: object,
) -> bool:
    """True when every field certainly passes the checks: short ASCII text without NUL, 64-bit ints.

    The common case, decided with a few calls over all the text at once (every request
    builds an event); anything else gets the field-by-field checks and their messages.
    """
    if not (org is None or (type(org) is int and _INT_MIN <= org <= _INT_MAX)):
        return False
    if not (version is None or (type(version) is int and _INT_MIN <= version <= _INT_MAX)):
        return False
    try:
        # join refuses anything that is not text (None in the lineage included).
        joined = "".join([service, action, *[t for t in optional if t is not None], *lineage])  # type: ignore[list-item]
    except TypeError:
        return False
    # Short in all means short in each; a longer event takes the field-by-field path.
    return bool(service) and bool(action) and len(joined) <= _MAX_TEXT and "\x00" not in joined and joined.isascii()


class AuditEvent(_EventFields):
    """Something a service did or refused, as it will appear in the audit log.

    Never put a secret value, a key or a whole token in any field: ``token_id``
    is the token's UUID, ``detail`` small facts such as the reasons of a denial.
    Invalid fields raise :class:`ValueError` at construction, where the bug is.
    Immutable: a named tuple (every request records one, and a frozen dataclass
    costs several times more to build); ``detail`` is frozen into a read-only copy.
    """

    __slots__ = ()

    def __new__(
        cls,
        service: str,
        action: str,
        outcome: str,
        org: int | None = None,
        vault: str | None = None,
        secret: str | None = None,
        version: int | None = None,
        token_id: str | None = None,
        lineage: Iterable[str] = (),
        actor: str | None = None,
        client_addr: str | None = None,
        request_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        optional = (vault, secret, token_id, actor, client_addr, request_id)
        if type(lineage) is not tuple:
            lineage = tuple(lineage)
        if not _plain_fields(service, action, optional, lineage, org, version):
            # Something is off: find it field by field, to say which one.
            for name, required in (("service", service), ("action", action)):
                if not isinstance(required, str) or not required:
                    raise ValueError(f"audit {name} must be a non-empty string")
                _check_text(required, name)
            for name, value in zip(_OPTIONAL_TEXT, optional, strict=True):
                if value is not None:
                    if not isinstance(value, str):
                        raise ValueError(f"audit {name} must be a string")
                    _check_text(value, name)
            for name, number in (("org", org), ("version", version)):
                if number is not None and (
                    isinstance(number, bool) or not isinstance(number, int) or not _INT_MIN <= number <= _INT_MAX
                ):
                    raise ValueError(f"audit {name} must be a 64-bit integer")
            for item in lineage:
                if not isinstance(item, str):
                    raise ValueError("audit lineage must be a sequence of token ids")
                _check_text(item, "lineage entry")
        # tuple.__new__ itself: the named tuple's generated __new__ would add a call per event.
        return tuple.__new__(
            cls,
            (
                service,
                action,
                outcome,
                org,
                vault,
                secret,
                version,
                token_id,
                lineage,
                actor,
                client_addr,
                request_id,
                _frozen_detail(detail),
            ),
        )

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
            "detail": _plain(self.detail),
        }


def microseconds(at: datetime) -> int:
    """``at`` as integer microseconds since the epoch; exact, no float rounding."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return (at - _EPOCH) // _ONE_MICROSECOND


def _from_microseconds(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_json_text = encode_basestring_ascii  # what json.dumps(..., ensure_ascii=True) writes for a str


def _json_detail(detail: Mapping[str, Any]) -> str:
    if not detail:
        return "{}"
    return json.dumps(_plain(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_bytes(seq: int, at: datetime, event: AuditEvent) -> bytes:
    """The bytes a record's hash covers (everything except the hashes).

    Exactly ``json.dumps({**event.fields(), "seq": seq, "at": microseconds(at), "v": 1},
    sort_keys=True, separators=(",", ":"), ensure_ascii=True)``, written field by field
    in sorted key order because this runs for every event the store logs.
    """
    return _canonical(seq, microseconds(at), event)


def _canonical(seq: int, micros: int, e: AuditEvent) -> bytes:
    # One unpacking rather than a field access per key: every event logged passes here.
    service, action, outcome, org, vault, secret, version, token_id, lineage, actor, client_addr, request_id, detail = e
    null = "null"
    return (
        f'{{"action":{_json_text(action)},'
        f'"actor":{null if actor is None else _json_text(actor)},'
        f'"at":{micros},'
        f'"client_addr":{null if client_addr is None else _json_text(client_addr)},'
        f'"detail":{_json_detail(detail)},'
        f'"lineage":[{",".join(map(_json_text, lineage))}],'
        f'"org":{null if org is None else int(org)},'
        f'"outcome":{_json_text(outcome)},'
        f'"request_id":{null if request_id is None else _json_text(request_id)},'
        f'"secret":{null if secret is None else _json_text(secret)},'
        f'"seq":{int(seq)},'
        f'"service":{_json_text(service)},'
        f'"token_id":{null if token_id is None else _json_text(token_id)},'
        f'"v":{FORMAT_VERSION},'
        f'"vault":{null if vault is None else _json_text(vault)},'
        f'"version":{null if version is None else int(version)}}}'
    ).encode("ascii")


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


class _RecordFields(NamedTuple):
    seq: int
    at: datetime
    event: AuditEvent
    prev_hash: bytes
    hash: bytes
    canonical: bytes


class AuditRecord(_RecordFields):
    """An event at its place in the chain.

    ``canonical`` is :func:`canonical_bytes` of the record, computed when not given
    (:func:`chain` gives the bytes it hashed, and the log stores exactly those).
    """

    __slots__ = ()

    def __new__(
        cls, seq: int, at: datetime, event: AuditEvent, prev_hash: bytes, hash: bytes, canonical: bytes | None = None
    ) -> AuditRecord:
        if canonical is None:
            canonical = canonical_bytes(seq, at, event)
        return super().__new__(cls, seq, at, event, prev_hash, hash, canonical)

    def __repr__(self) -> str:
        return f"AuditRecord(seq={self.seq}, at={self.at!r}, event={self.event!r}, hash={self.hash.hex()})"

    def expected_hash(self) -> bytes:
        """What ``hash`` must be if nothing in this record was changed."""
        return chain_hash(self.prev_hash, self.canonical)

    def to_json(self) -> dict[str, Any]:
        """The record as exported and served: ``at`` in ISO 8601 UTC, hashes in hex."""
        body: dict[str, Any] = {"seq": self.seq, "at": self.at.astimezone(UTC).isoformat()}
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
            seq = body["seq"]
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise ValueError("seq must be an integer")
            return cls(seq, at, event, bytes.fromhex(body["prev_hash"]), bytes.fromhex(body["hash"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an audit record: {type(exc).__name__} {exc}") from None


def chain(items: Iterable[tuple[datetime, AuditEvent]], last_seq: int, last_hash: bytes) -> Iterator[AuditRecord]:
    """Place events after the record ``(last_seq, last_hash)`` (``0, GENESIS_HASH`` for an empty log)."""
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
        canonical = _canonical(seq, micros, event)
        digest = chain_hash(prev, canonical)
        # tuple.__new__ itself: AuditRecord's own __new__ only fills in the canonical bytes,
        # which are at hand; every event logged passes here.
        yield tuple.__new__(AuditRecord, (seq, at, event, prev, digest, canonical))
        prev = digest
