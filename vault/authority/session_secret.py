"""Session secrets: ``cvs_`` + 32 random bytes (base64url), stored only as SHA-256 digests.

A digest is enough at rest because the secret is 256 random bits: there is
nothing to brute-force, so a slow password hash would only cost latency. The
database finds a session by its digest through a unique index, so no secret
is ever compared in Python.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable

from vault.errors import Unauthenticated

__all__ = ["SESSION_PREFIX", "new_session_secret", "session_digest"]

SESSION_PREFIX = "cvs_"
_SECRET_BYTES = 32
_ENCODED_LEN = 43  # unpadded base64url of 32 bytes


def new_session_secret(random: Callable[[int], bytes]) -> tuple[str, bytes]:
    """A fresh ``(secret, digest)``; only the digest is stored."""
    raw = random(_SECRET_BYTES)
    secret = SESSION_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return secret, hashlib.sha256(secret.encode()).digest()


def session_digest(secret: str) -> bytes:
    """The digest of a presented secret; a malformed one is :class:`Unauthenticated`."""
    body = secret[len(SESSION_PREFIX) :]
    if not secret.startswith(SESSION_PREFIX) or len(body) != _ENCODED_LEN:
        raise Unauthenticated("invalid session; log in again with POST /v1/sessions")
    try:
        base64.urlsafe_b64decode(body + "=")
    except (binascii.Error, ValueError):
        raise Unauthenticated("invalid session; log in again with POST /v1/sessions") from None
    return hashlib.sha256(secret.encode()).digest()
