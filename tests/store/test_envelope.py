"""Envelope encryption of secret values: round trip, binding, tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto.associated_data import encode_associated_data
from vault.crypto.envelope import SecretBinding, generate_data_key, open_value, seal_value
from vault.errors import DecryptionError

BINDING = SecretBinding(org_id="org-1", vault="prod", name="db/password", version=3, data_key_id=42)


@given(plaintext=st.binary(max_size=4096), org=st.text(), name=st.text(), version=st.integers(1, 2**31))
def test_round_trip(plaintext: bytes, org: str, name: str, version: int) -> None:
    key = generate_data_key()
    binding = SecretBinding(org, "v", name, version, 7)
    sealed = seal_value(key, plaintext, binding)
    assert sealed[0] == 1
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert open_value(key, sealed, binding) == plaintext


def test_two_seals_differ() -> None:
    key = generate_data_key()
    assert seal_value(key, b"x", BINDING) != seal_value(key, b"x", BINDING)


@pytest.mark.parametrize(
    "moved",
    [
        {"org_id": "org-2"},
        {"vault": "staging"},
        {"name": "db/password2"},
        {"version": 4},
        {"data_key_id": 43},
    ],
    ids=lambda change: next(iter(change)),
)
def test_move_integrity(moved: dict[str, object]) -> None:
    """Vault's MoveIntegrity, ours: a ciphertext copied to another row does not open there."""
    key = generate_data_key()
    sealed = seal_value(key, b"s3cret", BINDING)
    with pytest.raises(DecryptionError, match="moved or tampered"):
        open_value(key, sealed, BINDING._replace(**moved))  # type: ignore[arg-type]


def test_every_flipped_bit_fails() -> None:
    key = generate_data_key()
    sealed = seal_value(key, b"s3cret", BINDING)
    for bit in range(len(sealed) * 8):
        tampered = bytearray(sealed)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionError):
            open_value(key, bytes(tampered), BINDING)


@pytest.mark.parametrize("sealed", [b"", b"\x01", b"\x01" + bytes(27), b"\x02" + bytes(40)])
def test_truncated_or_unknown_format_fails(sealed: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_value(generate_data_key(), sealed, BINDING)


def test_wrong_data_key_fails_without_leaking_it() -> None:
    sealed = seal_value(generate_data_key(), b"s3cret", BINDING)
    wrong = generate_data_key()
    with pytest.raises(DecryptionError) as info:
        open_value(wrong, sealed, BINDING)
    assert wrong.hex() not in str(info.value) and "s3cret" not in str(info.value)


def test_associated_data_is_unambiguous() -> None:
    assert encode_associated_data("l", "ab", "c") != encode_associated_data("l", "a", "bc")
    assert encode_associated_data("l", "1") != encode_associated_data("l", 1)
    with pytest.raises(TypeError):
        encode_associated_data("l", True)


def test_associated_data_is_pinned() -> None:
    """The encoding is part of the stored format: changing it makes every stored secret unreadable."""
    assert BINDING.associated_data().hex() == (
        "7300000016637661756c742f7365637265742d76616c75652f7631"
        "73000000056f72672d31"
        "730000000470726f64"
        "730000000b64622f70617373776f7264"
        "690000000133"
        "69000000023432"
    )


def test_cached_associated_data_keeps_types_apart() -> None:
    """The binding's encoding is cached; a bool version must still be refused after the int one was cached."""
    assert BINDING._replace(version=1).associated_data() == BINDING._replace(version=1).associated_data()
    with pytest.raises(TypeError):
        BINDING._replace(version=True).associated_data()
    assert BINDING._replace(org_id="1").associated_data() != BINDING._replace(org_id=1).associated_data()  # type: ignore[arg-type]
