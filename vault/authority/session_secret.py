"""Session secrets: ``cvs_`` + 32 random bytes (base64url), stored only as SHA-256 digests.

A digest is enough at rest because the secret is 256 random bits: there is
nothing to brute-force, so a slow password hash would only cost latency. The
database finds a session by its digest through a unique index, so no secret
is ever compared in Python.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

from vault.errors import Unauthenticated

__all__ = ["SESSION_PREFIX", "new_session_secret", "session_digest"]

SESSION_PREFIX = "cvs_"
_SECRET_BYTES = 32
# Unpadded base64url of 32 bytes: 43 characters, the last one from a 16-letter subset.
_FORMAT = re.compile(r"cvs_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def new_session_secret(random: Callable[[int], bytes]) -> tuple[str, bytes]:
    """A fresh ``(secret, digest)``; only the digest is stored."""
    raw = random(_SECRET_BYTES)
    secret = SESSION_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return secret, hashlib.sha256(secret.encode()).digest()


def session_digest(secret: str) -> bytes:
    """The digest of a presented secret; a malformed one is :class:`Unauthenticated`."""
    if not _FORMAT.fullmatch(secret):
        raise Unauthenticated("invalid session; log in again with POST /v1/sessions")
    return hashlib.sha256(secret.encode()).digest()
