"""The store's records, as its services and repositories exchange them. Never a plaintext value."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from vault.errors import NotFound
from vault.macaroon import SigningKey

__all__ = [
    "IdempotencyClaim",
    "KVConfig",
    "MetadataUpdate",
    "OrgRecord",
    "RootKey",
    "SecretMetadata",
    "SecretSummary",
    "StoredVersion",
    "TokenRecord",
    "VaultInfo",
    "VersionInfo",
    "WriteOutcome",
    "WriteRules",
]


@dataclass(frozen=True, slots=True)
class RootKey:
    """A store signing key: an org's root key, or (``org_id is None``) the store's enrolment key."""

    key_id: int
    org_id: int | None
    key: SigningKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: int
    slug: str
    root_key_id: int


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    org_id: int
    kind: str  # "root" (enrolment) or "minted"
    mask: str
    vaults: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    parent: str | None = None
    actor: str | None = None
    expires_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    root_key_id: int | None = None  # the key that signed it, so retiring a kid can count what it kills


@dataclass(frozen=True, slots=True)
class VaultInfo:
    name: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SecretSummary:
    name: str
    current_version: int | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    state: str  # active, deleted, destroyed
    stage: str | None  # current, pending, previous
    created_at: dt.datetime
    created_by_token: str | None
    deleted_at: dt.datetime | None = None  # when it was soft-deleted (kept if destroyed later)


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    name: str
    current_version: int | None
    max_versions: int
    created_at: dt.datetime
    updated_at: dt.datetime
    versions: tuple[VersionInfo, ...]
    # Kept for the Vault API (docs/vault-compat.md); the native API does not use them.
    cas_required: bool = False
    delete_version_after: int = 0  # seconds; 0: never
    custom_metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class MetadataUpdate:
    """A Vault metadata write: each field that is not ``None`` replaces the stored one."""

    max_versions: int | None = None
    cas_required: bool | None = None
    delete_version_after: int | None = None
    custom_metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class KVConfig:
    """A vault's Vault mount configuration (``<mount>/config``)."""

    max_versions: int = 0  # for secrets created through the Vault API; 0: the store's default
    cas_required: bool = False
    delete_version_after: int = 0  # seconds; 0: never


class SecretLookup(NamedTuple):
    """One secret version to read: the current one (``version`` and ``stage`` None), a version, or a stage (both:
    that version if it holds that stage)."""

    org_id: int
    vault: str
    name: str
    version: int | None
    stage: str | None

    def not_found(self) -> NotFound:
        """The error for a lookup that found no version."""
        if self.version and self.stage:
            which = f"version {self.version} as the {self.stage} version of "
        else:
            which = (
                f"version {self.version} of "
                if self.version
                else (f"the {self.stage} version of " if self.stage else "")
            )
        return NotFound(f"{which}secret {self.name!r} not found in vault {self.vault!r}")


class StoredVersion(NamedTuple):
    """One version as read from the database, with its wrapped data key (never unwrapped here).

    A named tuple: one is built for every secret read.
    """

    name: str
    version: int
    state: str
    stage: str | None
    created_at: dt.datetime
    ciphertext: bytes | None
    data_key_id: int | None
    kek_version: int | None
    wrapped_key: bytes | None

    def __repr__(self) -> str:
        return (
            f"StoredVersion(name={self.name!r}, version={self.version}, state={self.state!r}, stage={self.stage!r}, "
            f"data_key_id={self.data_key_id}, kek_version={self.kek_version})"
        )


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    version: int
    stage: str
    created: bool  # the write created the secret
    trimmed: tuple[int, ...] = ()  # old versions removed to respect max_versions
    replayed: bool = False  # the first outcome of a repeated Idempotency-Key; nothing was written


@dataclass(frozen=True, slots=True)
class WriteRules:
    """What a Vault API write must respect beyond the store's own rules."""

    cas_required: bool  # the secret's or its vault's cas_required
    new_max_versions: int | None  # the vault's max_versions for a secret that does not exist yet


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A write's ``Idempotency-Key``: ``scope`` is the caller's token id, ``request_hash`` an HMAC of the request."""

    scope: str
    key: str
    request_hash: bytes = field(repr=False)
    ttl: int  # seconds the first outcome is remembered
