"""The cache of unwrapped data keys: a hit is exactly what unwrapping again would give."""

from __future__ import annotations

import pytest

from vault.crypto.data_key_cache import DataKeyCache
from vault.crypto.envelope import DataKey, SecretBinding, generate_data_key
from vault.crypto.keyring import Keyring, WrappedKey, generate_key
from vault.errors import DecryptionError

PURPOSE = "store-dek"
BINDING = SecretBinding("1", "prod", "db/url", 1, 7)


def _keyring() -> Keyring:
    return Keyring("store", {1: generate_key()}, 1)


def test_hit_opens_what_the_key_sealed() -> None:
    keyring, cache = _keyring(), DataKeyCache(PURPOSE)
    key = generate_data_key()
    wrapped = keyring.wrap_key(PURPOSE, 7, key)
    sealed = DataKey(key).seal(b"s3cret", BINDING)
    first = cache.unwrap(keyring, 7, wrapped)
    assert cache.unwrap(keyring, 7, WrappedKey(wrapped.kek_version, bytes(wrapped.wrapped))) is first
    assert first.open(sealed, BINDING) == b"s3cret"
    assert len(cache) == 1


def test_other_row_or_tampered_bytes_are_unwrapped_afresh_and_fail() -> None:
    keyring, cache = _keyring(), DataKeyCache(PURPOSE)
    wrapped = keyring.wrap_key(PURPOSE, 7, generate_data_key())
    cache.unwrap(keyring, 7, wrapped)
    with pytest.raises(DecryptionError):
        cache.unwrap(keyring, 8, wrapped)  # the same wrapped key copied to another row
    tampered = bytearray(wrapped.wrapped)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        cache.unwrap(keyring, 7, WrappedKey(wrapped.kek_version, bytes(tampered)))


def test_a_kek_gone_from_the_keyring_opens_nothing_even_cached() -> None:
    old = _keyring()
    cache = DataKeyCache(PURPOSE)
    wrapped = old.wrap_key(PURPOSE, 7, generate_data_key())
    cache.unwrap(old, 7, wrapped)
    retired = Keyring("store", {2: generate_key()}, 2)
    with pytest.raises(DecryptionError, match="not loaded"):
        cache.unwrap(retired, 7, wrapped)


def test_bounded_and_clearable() -> None:
    keyring, cache = _keyring(), DataKeyCache(PURPOSE, max_size=3)
    wrapped = [keyring.wrap_key(PURPOSE, i, generate_data_key()) for i in range(5)]
    for i, w in enumerate(wrapped):
        cache.unwrap(keyring, i, w)
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        DataKeyCache(PURPOSE, max_size=0)


def test_data_key_never_shows_its_bytes() -> None:
    key = generate_data_key()
    assert key.hex() not in repr(DataKey(key)) and repr(DataKey(key)) == "DataKey(...)"
    with pytest.raises(ValueError):
        DataKey(b"short")
