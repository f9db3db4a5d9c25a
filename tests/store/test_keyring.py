"""KEKs, key wrapping, and the wrapped_keys repository against a real database."""

from __future__ import annotations

import base64

import pytest

from vault.config import load_config, require_master_key
from vault.crypto.keyring import Keyring, MasterKey, WrappedKey, generate_key, unwrap_kek, wrap_kek
from vault.errors import ConfigError, DecryptionError, NotFound
from vault.storage.keys import PgKeyRepository, load_keyring
from vault.storage.pool import Pool


def _keyring(scope: str = "store") -> Keyring:
    return Keyring(scope, {1: generate_key()}, 1)


# --- pure wrapping


def test_wrap_round_trip() -> None:
    keyring, key = _keyring(), generate_key()
    wrapped = keyring.wrap_key("data-key", 5, key)
    assert wrapped.kek_version == 1 and len(wrapped.wrapped) == 61
    assert keyring.unwrap_key("data-key", 5, wrapped) == key


@pytest.mark.parametrize(("purpose", "key_id"), [("root-key", 5), ("data-key", 6)])
def test_wrapped_key_moved_to_another_row_fails(purpose: str, key_id: int) -> None:
    keyring = _keyring()
    wrapped = keyring.wrap_key("data-key", 5, generate_key())
    with pytest.raises(DecryptionError):
        keyring.unwrap_key(purpose, key_id, wrapped)


def test_wrapped_key_claiming_another_kek_version_fails() -> None:
    kek = generate_key()
    keyring = Keyring("store", {1: kek, 2: kek}, 1)
    wrapped = keyring.wrap_key("data-key", 5, generate_key())
    with pytest.raises(DecryptionError):
        keyring.unwrap_key("data-key", 5, WrappedKey(2, wrapped.wrapped))


def test_wrapped_key_moved_to_another_schema_fails() -> None:
    kek = generate_key()
    store, authority = Keyring("store", {1: kek}, 1), Keyring("authority", {1: kek}, 1)
    with pytest.raises(DecryptionError):
        authority.unwrap_key("data-key", 5, store.wrap_key("data-key", 5, generate_key()))


def test_flipped_bit_in_wrapped_key_fails() -> None:
    keyring = _keyring()
    wrapped = keyring.wrap_key("data-key", 5, generate_key())
    for bit in range(len(wrapped.wrapped) * 8):
        tampered = bytearray(wrapped.wrapped)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionError):
            keyring.unwrap_key("data-key", 5, WrappedKey(1, bytes(tampered)))


def test_unknown_kek_version_fails_clearly() -> None:
    with pytest.raises(DecryptionError, match="KEK version 9 of store is not loaded"):
        _keyring().unwrap_key("data-key", 5, WrappedKey(9, bytes(61)))


def test_kek_under_master_key() -> None:
    master, kek = MasterKey(generate_key()), generate_key()
    wrapped = wrap_kek(master, "store", 1, kek)
    assert unwrap_kek(master, "store", 1, wrapped) == kek
    for args in (("authority", 1), ("store", 2)):
        with pytest.raises(DecryptionError):
            unwrap_kek(master, *args, wrapped)
    with pytest.raises(DecryptionError):
        unwrap_kek(MasterKey(generate_key()), "store", 1, wrapped)


def test_key_material_stays_out_of_reprs() -> None:
    master, kek = MasterKey(generate_key()), generate_key()
    keyring = Keyring("store", {1: kek}, 1)
    for text in (repr(master), repr(keyring)):
        assert master.key.hex() not in text and repr(master.key) not in text
        assert kek.hex() not in text and repr(kek) not in text


# --- keyring and repository on the database


async def test_first_load_creates_kek_version_1(pool: Pool, master_key: MasterKey) -> None:
    keyring = await load_keyring(pool, "store", master_key)
    assert keyring.versions == (1,) and keyring.active_version == 1
    again = await load_keyring(pool, "store", master_key)
    assert again.versions == (1,)
    assert await pool.fetchval("SELECT count(*) FROM store.kek_versions") == 1


async def test_wrong_master_key_fails_at_start_naming_the_variable(pool: Pool, master_key: MasterKey) -> None:
    await load_keyring(pool, "store", master_key)
    wrong = load_config({"CVAULT_MASTER_KEY": base64.b64encode(generate_key()).decode()})
    with pytest.raises(ConfigError, match="CVAULT_MASTER_KEY") as info:
        await PgKeyRepository.open(pool, "store", MasterKey(require_master_key(wrong)))
    assert "schema store" in info.value.message


async def test_add_and_get(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    key_id, key = await keys.generate("data-key")
    assert await keys.get(key_id, "data-key") == key
    # A second process (empty cache) reads and unwraps the row.
    other = await PgKeyRepository.open(pool, "store", master_key)
    assert await other.get(key_id, "data-key") == key
    stored = await pool.fetchval("SELECT wrapped FROM store.wrapped_keys WHERE id = $1", key_id)
    assert key not in stored


async def test_wrong_purpose_is_refused_cached_or_not(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "authority", master_key)
    key_id, _ = await keys.generate("root-key")
    fresh = await PgKeyRepository.open(pool, "authority", master_key, cache_size=0)
    for repository in (keys, fresh):
        with pytest.raises(DecryptionError):
            await repository.get(key_id, "ticket-key")


async def test_wrapped_key_copied_to_another_row_fails(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key, cache_size=0)
    first, _ = await keys.generate("data-key")
    second, _ = await keys.generate("data-key")
    await pool.execute(
        "UPDATE store.wrapped_keys SET wrapped = (SELECT wrapped FROM store.wrapped_keys WHERE id = $1) WHERE id = $2",
        first,
        second,
    )
    await keys.get(first, "data-key")
    with pytest.raises(DecryptionError, match="moved or tampered"):
        await keys.get(second, "data-key")


async def test_missing_key_is_not_found(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)
    with pytest.raises(NotFound):
        await keys.get(123456, "data-key")


async def test_add_inside_a_rolled_back_transaction_leaves_nothing(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key)

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with pool.acquire() as conn, conn.transaction():
            await keys.generate("data-key", conn=conn)
            raise Rollback
    assert await pool.fetchval("SELECT count(*) FROM store.wrapped_keys") == 0


async def test_retire_and_active_ids(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "authority", master_key)
    old, old_key = await keys.generate("root-key")
    new, _ = await keys.generate("root-key")
    await keys.generate("ticket-key")
    assert await keys.active_ids("root-key") == [old, new]
    await keys.retire(old)
    assert await keys.active_ids("root-key") == [new]
    # Retired root keys still verify tokens minted under them.
    assert await keys.get(old, "root-key") == old_key


async def test_cache_is_bounded(pool: Pool, master_key: MasterKey) -> None:
    keys = await PgKeyRepository.open(pool, "store", master_key, cache_size=2)
    ids = [(await keys.generate("data-key"))[0] for _ in range(3)]
    assert "cached=2" in repr(keys)
    await keys.get(ids[0], "data-key")
