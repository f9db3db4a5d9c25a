"""argon2id password hashes (libsodium via PyNaCl)."""

from __future__ import annotations

from dataclasses import dataclass

from nacl import pwhash
from nacl.exceptions import InvalidkeyError

__all__ = ["INTERACTIVE", "MINIMUM", "MODERATE", "PasswordCost", "hash_password", "verify_password"]


@dataclass(frozen=True)
class PasswordCost:
    """argon2id work factors; the hash records them, so changing them later is safe."""

    opslimit: int
    memlimit: int


INTERACTIVE = PasswordCost(pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE)
MODERATE = PasswordCost(pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE)
# For tests only: fast, and far too weak for real passwords.
MINIMUM = PasswordCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)


def hash_password(password: str, cost: PasswordCost = INTERACTIVE) -> str:
    """A self-describing ``$argon2id$...`` string with a random salt."""
    digest: bytes = pwhash.argon2id.str(password.encode("utf-8"), opslimit=cost.opslimit, memlimit=cost.memlimit)
    return digest.decode("ascii")


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password or a malformed hash.

    A bool rather than an exception because "wrong password" is an expected
    answer, and the caller (the authority) owns the user-facing error.
    """
    try:
        return bool(pwhash.argon2id.verify(password_hash.encode("ascii"), password.encode("utf-8")))
    except (InvalidkeyError, UnicodeEncodeError, ValueError):
        return False
