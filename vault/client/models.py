"""What the store's calls return: frozen, typed values built from its JSON replies (docs/api.md).

A reply that lacks a field or has one of the wrong type is a
:class:`~vault.errors.BadReply` (``bad_reply``), raised where the reply is read, never a
``KeyError`` later. Values of secrets are left out of every ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from vault.errors import BadReply

__all__ = [
    "BatchRead",
    "CurrentVersions",
    "MintedToken",
    "Promoted",
    "Secret",
    "SecretMetadata",
    "SecretPage",
    "SecretSummary",
    "SecretValue",
    "Vault",
    "Version",
    "Written",
    "to_json",
]

T = TypeVar("T")


def _bad_reply(what: str) -> BadReply:
    return BadReply(f"the reply is not a valid {what}; is the service's URL right and the service up to date?")


def _parse(what: str, build: Callable[[Mapping[str, Any]], T], data: object) -> T:
    if not isinstance(data, Mapping):
        raise _bad_reply(what)
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _bad_reply(what) from None


def _opt_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError
    return value


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def to_json(value: object) -> Any:
    """A model as plain JSON data (what ``--json`` prints); other values unchanged."""
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Secret:
    """One version of a secret, with its value."""

    name: str
    version: int
    value: str = field(repr=False)
    stage: str | None = None
    created_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Secret:
        return _parse(
            "secret",
            lambda d: cls(
                _str(d["name"]),
                _int(d["version"]),
                _str(d["value"]),
                _opt_str(d.get("stage")),
                _opt_str(d.get("created_at")),
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class Written:
    """The version a write created."""

    name: str
    version: int
    stage: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Written:
        return _parse("write reply", lambda d: cls(_str(d["name"]), _int(d["version"]), _opt_str(d.get("stage"))), data)


@dataclass(frozen=True, slots=True)
class SecretSummary:
    """A secret in a listing: its name and current version, never its value."""

    name: str
    current_version: int | None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> SecretSummary:
        return _parse(
            "secret listing",
            lambda d: cls(_str(d["name"]), _opt_int(d.get("current_version")), _opt_str(d.get("updated_at"))),
            data,
        )


@dataclass(frozen=True, slots=True)
class SecretPage:
    secrets: tuple[SecretSummary, ...]
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: object) -> SecretPage:
        return _parse(
            "secret listing",
            lambda d: cls(
                tuple(SecretSummary.from_json(s) for s in d["secrets"]), _opt_str(d.get("next_cursor")) or None
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class Version:
    """One version in a secret's metadata: ``state`` active/deleted/destroyed, ``stage`` current/pending/previous."""

    version: int
    state: str
    stage: str | None = None
    created_at: str | None = None
    created_by_token: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Version:
        return _parse(
            "version",
            lambda d: cls(
                _int(d["version"]),
                _str(d["state"]),
                _opt_str(d.get("stage")),
                _opt_str(d.get("created_at")),
                _opt_str(d.get("created_by_token")),
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    name: str
    current_version: int | None
    versions: tuple[Version, ...]
    max_versions: int | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> SecretMetadata:
        return _parse(
            "secret metadata",
            lambda d: cls(
                _str(d["name"]),
                _opt_int(d.get("current_version")),
                tuple(Version.from_json(v) for v in d.get("versions") or ()),
                _opt_int(d.get("max_versions")),
                _opt_str(d.get("created_at")),
                _opt_str(d.get("updated_at")),
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class SecretValue:
    version: int
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BatchRead:
    """A batch read: the current version of each secret found, and the names asked for that were not."""

    secrets: Mapping[str, SecretValue]
    missing: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        return {name: item.value for name, item in self.secrets.items()}

    def versions(self) -> dict[str, int]:
        return {name: item.version for name, item in self.secrets.items()}

    @classmethod
    def from_json(cls, data: object) -> BatchRead:
        return _parse(
            "batch read",
            lambda d: cls(
                {_str(n): SecretValue(_int(i["version"]), _str(i["value"])) for n, i in d["secrets"].items()},
                tuple(_str(m) for m in d.get("missing") or ()),
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class CurrentVersions:
    """The current versions of many secrets, without their values (``POST .../versions``)."""

    versions: Mapping[str, int]
    missing: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> CurrentVersions:
        return _parse(
            "versions reply",
            lambda d: cls(
                {_str(n): _int(v) for n, v in d["versions"].items()}, tuple(_str(m) for m in d.get("missing") or ())
            ),
            data,
        )


@dataclass(frozen=True, slots=True)
class Promoted:
    name: str
    current: int
    previous: int | None

    @classmethod
    def from_json(cls, data: object) -> Promoted:
        return _parse(
            "promote reply", lambda d: cls(_str(d["name"]), _int(d["current"]), _opt_int(d.get("previous"))), data
        )


@dataclass(frozen=True, slots=True)
class Vault:
    name: str
    created_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Vault:
        return _parse("vault", lambda d: cls(_str(d["name"]), _opt_str(d.get("created_at"))), data)

    @classmethod
    def list_from_json(cls, data: object) -> list[Vault]:
        return _parse("vault listing", lambda d: [cls.from_json(v) for v in d["vaults"]], data)


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A store token just made (enrolment or minting): the token itself and its id."""

    token: str = field(repr=False)
    id: str

    @classmethod
    def from_json(cls, data: object) -> MintedToken:
        return _parse("token reply", lambda d: cls(_str(d["token"]), _str(d["id"])), data)
