"""PostgreSQL's SCRAM-SHA-256 password verifier (RFC 5802/7677, as ``pg_authid.rolpassword`` stores it).

The rotator sends ``ALTER ROLE ... PASSWORD '<verifier>'`` rather than the password itself, as ``psql``'s
``\\password`` does: the new password never reaches the server in clear, so it cannot appear in its statement log
or ``pg_stat_activity``. PostgreSQL recognises the ``SCRAM-SHA-256$`` form and stores it as given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from vault.types import Random

__all__ = ["ITERATIONS", "scram_sha256_verifier"]

ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram_sha256_verifier(password: str, random: Random, *, iterations: int = ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` with a fresh 16-byte salt.

    The password is used as UTF-8 without SASLprep: cvault's generated passwords are ASCII letters and digits,
    for which SASLprep changes nothing.
    """
    salt = random(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"
