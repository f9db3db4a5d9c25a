"""The master key, key-encryption keys (KEKs) by version, and key wrapping.

Three layers::

    master key (CVAULT_MASTER_KEY, never stored)
      └── KEK version n     (random, stored wrapped under the master key)
            └── wrapped key (data keys, root keys, private keys; stored wrapped under a KEK)

Wrapping is AES-256-GCM rather than AES-KW (RFC 3394) because GCM authenticates
associated data: a wrapped key is bound to its scope (the PostgreSQL schema),
purpose, row id and KEK version, so a wrapped key copied to another row, or a
KEK row copied between schemas, fails to unwrap. Nonces are random; with one
wrap per stored key, a KEK stays far below GCM's 2**32-message bound, and
rotation starts a new KEK anyway. Wrapped format, as for values::

    0x01 || nonce (12 bytes) || ciphertext (32 bytes) || tag (16 bytes)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionError

from .associated_data import encode_associated_data

__all__ = [
    "KEY_SIZE",
    "Keyring",
    "MasterKey",
    "MasterKeys",
    "WrappedKey",
    "generate_key",
    "master_keys",
    "unwrap_kek",
    "wrap_kek",
]

KEY_SIZE = 32
FORMAT_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
WRAPPED_SIZE = 1 + NONCE_SIZE + KEY_SIZE + TAG_SIZE
_KEK_LABEL = "cvault/kek/v1"
_KEY_LABEL = "cvault/wrapped-key/v1"


def generate_key() -> bytes:
    """32 random bytes: a KEK, a data key or a root key."""
    return os.urandom(KEY_SIZE)


def _seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return bytes([FORMAT_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def _open(key: bytes, sealed: bytes, associated_data: bytes, what: str) -> bytes:
    if len(sealed) != WRAPPED_SIZE or sealed[0] != FORMAT_VERSION:
        raise DecryptionError(f"{what} is not in a known wrapped-key format")
    nonce, body = sealed[1 : 1 + NONCE_SIZE], sealed[1 + NONCE_SIZE :]
    try:
        return AESGCM(key).decrypt(nonce, body, associated_data)
    except InvalidTag:
        raise DecryptionError(f"{what} failed to unwrap (wrong key, moved or tampered row)") from None


@dataclass(frozen=True)
class MasterKey:
    """The root of the key hierarchy; comes from configuration, never from the database."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_SIZE:
            raise ValueError("master key must be 32 bytes")


@dataclass(frozen=True)
class MasterKeys:
    """The master key, plus the one being rotated away from during a transition window.

    New KEKs are wrapped under ``current`` only; ``previous`` keys only open KEKs a
    master-key rotation has not re-wrapped yet (docs/keys.md).
    """

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()

    def unwrap_kek(self, scope: str, version: int, wrapped: bytes) -> bytes:
        """Unwrap with the current key, else a previous one; :class:`DecryptionError` if none opens it."""
        for master in (self.current, *self.previous):
            try:
                return unwrap_kek(master, scope, version, wrapped)
            except DecryptionError:
                continue
        raise DecryptionError(f"KEK version {version} opens with none of the configured master keys")


def master_keys(keys: MasterKey | MasterKeys) -> MasterKeys:
    """Callers may pass one :class:`MasterKey` where :class:`MasterKeys` are expected."""
    return keys if isinstance(keys, MasterKeys) else MasterKeys(keys)


def wrap_kek(master: MasterKey, scope: str, version: int, kek: bytes) -> bytes:
    """Wrap KEK ``version`` of ``scope`` under the master key."""
    _check_key(kek)
    return _seal(master.key, kek, encode_associated_data(_KEK_LABEL, scope, version))


def unwrap_kek(master: MasterKey, scope: str, version: int, wrapped: bytes) -> bytes:
    """Unwrap a KEK; a wrong master key raises :class:`DecryptionError`."""
    return _open(master.key, wrapped, encode_associated_data(_KEK_LABEL, scope, version), f"KEK version {version}")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError("keys are 32 bytes")


class WrappedKey(NamedTuple):
    """A key as stored: which KEK version wrapped it, and the wrapped bytes."""

    kek_version: int
    wrapped: bytes


class Keyring:
    """Unwrapped KEKs of one scope by version; wraps with the active one.

    Immutable: :meth:`with_kek` returns a new keyring, so a reader holding the old
    one is never surprised mid-operation.
    """

    __slots__ = ("_keks", "active_version", "scope")

    def __init__(self, scope: str, keks: Mapping[int, bytes], active_version: int) -> None:
        if active_version not in keks:
            raise ValueError("the active KEK version must be in the keyring")
        for kek in keks.values():
            _check_key(kek)
        self.scope = scope
        self._keks = dict(keks)
        self.active_version = active_version

    def __repr__(self) -> str:
        return f"Keyring(scope={self.scope!r}, versions={self.versions}, active={self.active_version})"

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keks))

    def has_version(self, version: int) -> bool:
        return version in self._keks

    def with_kek(self, version: int, kek: bytes, *, active: bool) -> Keyring:
        keks = {**self._keks, version: kek}
        return Keyring(self.scope, keks, version if active else self.active_version)

    def _associated_data(self, purpose: str, key_id: int, kek_version: int) -> bytes:
        return encode_associated_data(_KEY_LABEL, self.scope, purpose, key_id, kek_version)

    def wrap_key(self, purpose: str, key_id: int, key: bytes) -> WrappedKey:
        """Wrap ``key`` (stored in row ``key_id`` for ``purpose``) under the active KEK."""
        _check_key(key)
        version = self.active_version
        wrapped = _seal(self._keks[version], key, self._associated_data(purpose, key_id, version))
        return WrappedKey(version, wrapped)

    def unwrap_key(self, purpose: str, key_id: int, wrapped: WrappedKey) -> bytes:
        """Unwrap a stored key; raises :class:`DecryptionError` on any mismatch."""
        kek = self._keks.get(wrapped.kek_version)
        if kek is None:
            raise DecryptionError(
                f"KEK version {wrapped.kek_version} of {self.scope} is not loaded; was it retired too early?"
            )
        return _open(
            kek,
            wrapped.wrapped,
            self._associated_data(purpose, key_id, wrapped.kek_version),
            f"key {key_id} ({purpose})",
        )
