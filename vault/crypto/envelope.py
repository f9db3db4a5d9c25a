"""Envelope encryption of secret values under a per-version data key.

Stored format (version 1)::

    0x01 || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)

The associated data is the canonical encoding of :class:`SecretBinding`, so a
ciphertext copied to another org, vault, secret, version, or re-pointed at
another data key, fails to open. The version byte lets a later format coexist
with stored version-1 values.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionError

from .associated_data import encode_associated_data

__all__ = [
    "DATA_KEY_SIZE",
    "FORMAT_VERSION",
    "DataKey",
    "SecretBinding",
    "generate_data_key",
    "open_value",
    "seal_value",
]

FORMAT_VERSION = 1
DATA_KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_LABEL = "cvault/secret-value/v1"


class SecretBinding(NamedTuple):
    """Where a sealed value belongs; all of it is authenticated, none of it secret."""

    org_id: str
    vault: str
    name: str
    version: int
    data_key_id: int

    def associated_data(self) -> bytes:
        return _associated_data(self.org_id, self.vault, self.name, self.version, self.data_key_id)


@functools.lru_cache(maxsize=4096, typed=True)  # typed: True must not hit the entry of 1
def _associated_data(org_id: str, vault: str, name: str, version: int, data_key_id: int) -> bytes:
    # A pure function of public fields, and the same secret versions are read again and again.
    return encode_associated_data(_LABEL, org_id, vault, name, version, data_key_id)


def generate_data_key() -> bytes:
    """A fresh 256-bit data key; one per secret version."""
    return os.urandom(DATA_KEY_SIZE)


class DataKey:
    """One unwrapped data key, ready to seal and open values (its AEAD is built once)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != DATA_KEY_SIZE:
            raise ValueError("data key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "DataKey(...)"

    def seal(self, plaintext: bytes, binding: SecretBinding) -> bytes:
        """Encrypt ``plaintext`` for the row described by ``binding``."""
        nonce = os.urandom(NONCE_SIZE)
        return bytes([FORMAT_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, binding.associated_data())

    def open(self, sealed: bytes, binding: SecretBinding) -> bytes:
        """Decrypt a value sealed by :meth:`seal`; raises :class:`DecryptionError`."""
        if len(sealed) < 1 + NONCE_SIZE + TAG_SIZE or sealed[0] != FORMAT_VERSION:
            raise DecryptionError()
        try:
            return self._aead.decrypt(sealed[1 : 1 + NONCE_SIZE], sealed[1 + NONCE_SIZE :], binding.associated_data())
        except InvalidTag:
            raise DecryptionError() from None


def seal_value(data_key: bytes, plaintext: bytes, binding: SecretBinding) -> bytes:
    """Encrypt ``plaintext`` for the row described by ``binding``."""
    return DataKey(data_key).seal(plaintext, binding)


def open_value(data_key: bytes, sealed: bytes, binding: SecretBinding) -> bytes:
    """Decrypt a value sealed by :func:`seal_value`; raises :class:`DecryptionError`."""
    return DataKey(data_key).open(sealed, binding)
