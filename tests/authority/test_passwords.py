"""argon2id password hashes (minimum cost: fast tests, the algorithm is the same)."""

from __future__ import annotations

from vault.crypto.passwords import MINIMUM, hash_password, verify_password


def test_hash_and_verify() -> None:
    digest = hash_password("correct horse", MINIMUM)
    assert digest.startswith("$argon2id$")
    assert "correct horse" not in digest
    assert verify_password(digest, "correct horse")
    assert not verify_password(digest, "correct hors")


def test_salted() -> None:
    assert hash_password("pw", MINIMUM) != hash_password("pw", MINIMUM)


def test_malformed_hash_does_not_verify() -> None:
    assert not verify_password("$argon2id$nonsense", "pw")
    assert not verify_password("not a hash at all", "pw")
