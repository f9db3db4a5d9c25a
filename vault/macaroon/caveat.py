"""The caveat base class, the registry, and what a caveat check returns.

NOTE on wire compatibility: a caveat's type number and body layout are forever.
Fields may only be appended; a number is never reused for another meaning. Types
shared with ``superfly/macaroon`` keep Fly's numbers and bodies; cvault's own
types live in the user-defined range (>= 2**48), see ``caveats.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from vault.errors import InvalidToken

from . import wire
from .access import Access

CAV_MIN_USER_DEFINED = 1 << 48
CAV_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a caveat refuses an access. ``unspecified``: the access does not name the resource."""

    reason: str
    unspecified: bool = False


class Caveat:
    """A typed restriction (or, for attestations, a statement) carried by a token."""

    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    ATTESTATION: ClassVar[bool] = False

    def body(self) -> Any:
        """The msgpack-able body, as it is signed."""
        raise NotImplementedError

    @classmethod
    def from_body(cls, body: Any) -> Caveat:
        """Build from a decoded body; raise ``ValueError``/``TypeError``/``KeyError`` on a bad shape."""
        raise NotImplementedError

    def to_json(self) -> Any:
        return self.body()

    @classmethod
    def from_json(cls, body: Any) -> Caveat:
        return cls.from_body(body)

    def prohibits(self, access: Access) -> Refusal | None:
        """``None`` if this caveat allows ``access``, else why not."""
        raise NotImplementedError

    def packed(self) -> bytes:
        """Canonical msgpack of ``[type, body]``: the bytes a token signs for this caveat."""
        return wire.pack([self.TYPE, self.body()])

    def describe(self) -> dict[str, Any]:
        return {"type": self.NAME, "body": self.to_json()}


class UnknownCaveat(Caveat):
    """A caveat type this build does not know. Kept byte-exact; never authorizes."""

    NAME = "Unknown"

    def __init__(self, type_id: int, body: Any) -> None:
        self.type_id = type_id
        self._body = body

    def body(self) -> Any:
        return self._body

    def packed(self) -> bytes:
        return wire.pack([self.type_id, self._body])

    def to_json(self) -> Any:
        return _jsonable(self._body)

    def describe(self) -> dict[str, Any]:
        return {"type": f"Unknown({self.type_id})", "body": self.to_json()}

    def prohibits(self, access: Access) -> Refusal | None:
        return Refusal(f"caveat type {self.type_id} is unknown to this service, so it cannot be satisfied")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnknownCaveat) and self.packed() == other.packed()

    def __hash__(self) -> int:
        return hash(self.packed())


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes_hex": value.hex()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


_BY_TYPE: dict[int, type[Caveat]] = {}
_BY_NAME: dict[str, type[Caveat]] = {}


def register(cls: type[Caveat]) -> type[Caveat]:
    """Class decorator adding a caveat type to the registry (types and names are unique)."""
    if cls.TYPE in _BY_TYPE or cls.NAME in _BY_NAME:
        raise ValueError(f"duplicate caveat registration: {cls.TYPE} {cls.NAME}")
    _BY_TYPE[cls.TYPE] = cls
    _BY_NAME[cls.NAME] = cls
    return cls


def from_wire(type_id: Any, body: Any) -> Caveat:
    """Decode one caveat; a known type with a malformed body is an invalid token."""
    if isinstance(type_id, bool) or not isinstance(type_id, int) or not 0 <= type_id <= CAV_MAX:
        raise InvalidToken()
    cls = _BY_TYPE.get(type_id)
    if cls is None:
        return UnknownCaveat(type_id, body)
    try:
        return cls.from_body(body)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise InvalidToken() from exc


def from_flat(items: Any) -> list[Caveat]:
    """Decode a flat ``[type0, body0, type1, body1, ...]`` array (nested caveat sets)."""
    if not isinstance(items, list) or len(items) % 2 or len(items) // 2 > wire.MAX_CAVEATS:
        raise InvalidToken()
    return [from_wire(items[i], items[i + 1]) for i in range(0, len(items), 2)]


def to_flat(caveats: Iterable[Caveat]) -> list[Any]:
    out: list[Any] = []
    for c in caveats:
        out.extend((c.type_id if isinstance(c, UnknownCaveat) else c.TYPE, c.body()))
    return out


def from_json(items: Any) -> list[Caveat]:
    """Parse the human form ``[{"type": "<Name>", "body": ...}]`` (as ``fly tokens attenuate`` takes it)."""
    if not isinstance(items, list):
        raise ValueError('caveats must be a JSON list like [{"type": "Organization", "body": {...}}]')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"type", "body"}:
            raise ValueError(f'caveat #{i}: expected an object with exactly "type" and "body"')
        cls = _BY_NAME.get(item["type"]) if isinstance(item["type"], str) else None
        if cls is None:
            known = ", ".join(sorted(_BY_NAME))
            raise ValueError(f"caveat #{i}: unknown type {item['type']!r} (known: {known})")
        try:
            out.append(cls.from_json(item["body"]))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"caveat #{i} ({cls.NAME}): bad body: {exc}") from None
    return out


def registered() -> dict[str, type[Caveat]]:
    return dict(_BY_NAME)
