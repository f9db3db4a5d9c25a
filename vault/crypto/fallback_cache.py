"""The ``cvault run --fallback`` file: secrets sealed under a key derived from the workload's credentials.

Format (version 1)::

    0x01 || salt (16 bytes) || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)

The key is HKDF-SHA256 over the credential bytes the caller passes (the store
token and the authority token: the file opens only for someone holding both,
which is what reading the store itself needs), with a fresh salt per file. The
associated data binds the file to its ``context`` (the vault and the options
that chose the secrets), so a cache written for one vault is not used for another.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import DecryptionError

from .associated_data import encode_associated_data

__all__ = ["open_fallback", "seal_fallback"]

FORMAT_VERSION = 1
_SALT_SIZE = 16
_NONCE_SIZE = 12
_TAG_SIZE = 16
_LABEL = "cvault/run-fallback/v1"


def _key(secret: bytes, salt: bytes) -> bytes:
    if len(secret) < 32:
        raise ValueError("the key material must hold at least 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_LABEL.encode()).derive(secret)


def seal_fallback(secret: bytes, plaintext: bytes, context: str) -> bytes:
    salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
    sealed = AESGCM(_key(secret, salt)).encrypt(nonce, plaintext, encode_associated_data(_LABEL, context))
    return bytes([FORMAT_VERSION]) + salt + nonce + sealed


def open_fallback(secret: bytes, sealed: bytes, context: str) -> bytes:
    """Raises :class:`DecryptionError` for other credentials, another context, or altered bytes."""
    head = 1 + _SALT_SIZE + _NONCE_SIZE
    if len(sealed) < head + _TAG_SIZE or sealed[0] != FORMAT_VERSION:
        raise DecryptionError("the fallback file is not a cvault fallback cache (or it is damaged)")
    salt, nonce = sealed[1 : 1 + _SALT_SIZE], sealed[1 + _SALT_SIZE : head]
    try:
        return AESGCM(_key(secret, salt)).decrypt(nonce, sealed[head:], encode_associated_data(_LABEL, context))
    except InvalidTag:
        raise DecryptionError(
            "the fallback file does not open with these credentials and options (or it was altered)"
        ) from None
