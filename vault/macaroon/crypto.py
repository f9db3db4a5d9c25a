"""The primitives the token format is made of: HMAC-SHA256 and ChaCha20-Poly1305.

These are part of the wire format (a Go or Elixir implementation must compute
the same bytes), which is why they live in the token core rather than in
``vault.crypto``; see ``docs/decisions.md``. Nothing here touches key storage.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import NewType

from vault.errors import InvalidToken
from vault.types import Random

KEY_SIZE = 32
SEAL_NONCE_SIZE = 12
BINDING_ID_SIZE = 16
_FINALIZE_KEY = b"proof-signature-finalization"


DEFAULT_RANDOM: Random = os.urandom

# Two kinds of key go into the token format, and swapping them is a silent security bug (a ticket sealed to a
# public key, a chain signed with a sealing key), so they are distinct types, as in superfly/macaroon; mypy
# refuses one where the other, or plain bytes, is expected.
SigningKey = NewType("SigningKey", bytes)
"""An HMAC-SHA256 key a token's chain starts from: a root key, or a discharge's key ``r``."""

EncryptionKey = NewType("EncryptionKey", bytes)
"""A ChaCha20-Poly1305 key that seals and opens tickets: ``KA``, the X25519 shared key of the two parties."""


def sign(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def sign_chain(key: bytes, messages: Iterable[bytes]) -> list[bytes]:
    """``[HMAC(key, m0), HMAC(that, m1), ...]``: every tail of an HMAC chain."""
    tails = []
    t = key
    for m in messages:
        t = hmac.digest(t, m, "sha256")
        tails.append(t)
    return tails


def finalize(tail: bytes) -> bytes:
    """Seal a proof's tail so nobody can append caveats to it."""
    return hmac.digest(_FINALIZE_KEY, tail, "sha256")


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# `cryptography` is imported by seal/unseal only: holding, attenuating and binding a
# token (all a client does) is HMAC and SHA-256, and the import is a good part of a
# `cvault` command's start-up.


def seal(key: bytes, plaintext: bytes, random: Random = DEFAULT_RANDOM) -> bytes:
    """ChaCha20-Poly1305 with a random 12-byte nonce prepended."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    nonce = random(SEAL_NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, None)


def unseal(key: bytes, sealed: bytes) -> bytes:
    """Open what :func:`seal` made; any failure is :class:`InvalidToken`."""
    if len(key) != KEY_SIZE or len(sealed) < SEAL_NONCE_SIZE + 16:
        raise InvalidToken()
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:SEAL_NONCE_SIZE], sealed[SEAL_NONCE_SIZE:], None)
    except InvalidTag as exc:
        raise InvalidToken() from exc
