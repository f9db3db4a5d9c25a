"""Pure parts of the authority: rate limiter, session secrets, roles, slugs, org ids, key cache."""

from __future__ import annotations

import os

import pytest

from vault.authority.accounts import check_email, new_org_id
from vault.authority.rate_limit import FailureLimiter
from vault.authority.roles import Role, check_slug, parse_role
from vault.authority.session_secret import new_session_secret, session_digest
from vault.authority.ticket_keys import SharedKeyCache
from vault.crypto.ticket_keys import TicketKeyPair, TicketKeyRing
from vault.errors import BadRequest, InvalidToken, RateLimited, Unauthenticated
from vault.macaroon import mask_to_string


def test_limiter_refuses_after_burst_and_refills() -> None:
    limiter = FailureLimiter(burst=3, refill_seconds=10)
    keys = ["email:a", "addr:1"]
    for _ in range(3):
        limiter.check(keys, 0)
        limiter.failed(keys, 0)
    with pytest.raises(RateLimited) as caught:
        limiter.check(keys, 1)
    assert caught.value.retry_after == 9
    limiter.check(keys, 10)  # one failure came back
    limiter.succeeded(["email:a"])  # clears the user's bucket, not the address's
    limiter.failed(keys, 10)
    with pytest.raises(RateLimited):
        limiter.check(["addr:1"], 10.5)
    limiter.check(["email:a"], 10.5)


def test_limiter_table_is_bounded() -> None:
    limiter = FailureLimiter(burst=1, max_keys=10)
    for i in range(100):
        limiter.failed([f"k{i}"], 0)
    assert len(limiter._buckets) == 10


def test_session_secrets() -> None:
    secret, digest = new_session_secret(os.urandom)
    assert secret.startswith("cvs_") and len(secret) == 47
    assert session_digest(secret) == digest
    for bad in ("cvs_", "cvs_" + "!" * 43, "cv1_" + "A" * 43, secret + "A"):
        with pytest.raises(Unauthenticated):
            session_digest(bad)


def test_roles_and_slugs() -> None:
    assert mask_to_string(Role.OWNER.mask) == "rwcdCa"
    assert mask_to_string(Role.OPERATOR.mask) == "rwcd"
    assert mask_to_string(Role.READER.mask) == "r"
    assert mask_to_string(Role.AUDITOR.mask) == "a"
    assert parse_role("reader") is Role.READER
    for bad in ("king", 1, None, "Owner"):
        with pytest.raises(BadRequest):
            parse_role(bad)
    assert check_slug("a1-b") == "a1-b"
    for bad in ("a", "-a", "A1", "a_b", "a" * 64, 5):
        with pytest.raises(BadRequest):
            check_slug(bad)
    assert check_email(" Me@Example.COM ") == "me@example.com"
    for bad in ("me", "me@host", "@x.com", "a b@x.com", 5):
        with pytest.raises(BadRequest):
            check_email(bad)


def test_org_ids_fit_bigint() -> None:
    assert new_org_id(lambda n: b"\xff" * n) == 2**63 - 1
    assert new_org_id(lambda n: b"\x00" * n) == 1


def test_shared_key_cache_is_bounded_and_agrees_with_peer() -> None:
    mine = TicketKeyPair.generate()
    cache = SharedKeyCache(TicketKeyRing({1: mine}), size=2)
    peers = [TicketKeyPair.generate() for _ in range(3)]
    for peer in peers:
        assert cache.shared_key(peer.public_key) == peer.shared_key(mine.public_key)
    assert len(cache._keys) == 2
    assert mine.public_key.hex() in repr(cache)


def test_key_list_endorsements_for_made_up_stores_leave_the_cache_alone() -> None:
    """``/.well-known/cvault/keys?first_party=`` is public: what it asks for must not evict a discharge's keys."""
    mine, store = TicketKeyPair.generate(), TicketKeyPair.generate()
    cache = SharedKeyCache(TicketKeyRing({1: mine}), size=4)
    used = cache.shared_key(store.public_key)
    for _ in range(10):
        cache.endorsements("https://authority.example/org", TicketKeyPair.generate().public_key, bytes(16))
    assert list(cache._keys) == [(mine.public_key, store.public_key)] and cache.shared_key(store.public_key) is used


def test_only_a_derivation_that_opened_a_ticket_is_cached() -> None:
    """Tickets naming made-up senders (anyone can send one) leave the cache to the senders that are real."""
    old, mine, store = TicketKeyPair.generate(), TicketKeyPair.generate(), TicketKeyPair.generate()
    cache = SharedKeyCache(TicketKeyRing({1: old, 2: mine}), size=4)

    def refuse(key: object) -> None:
        raise InvalidToken("does not open")

    for _ in range(10):
        with pytest.raises(InvalidToken):
            cache.first_that_opens(TicketKeyPair.generate().public_key, refuse)
    assert not cache._keys
    # Sealed to the older pair: the newest is tried first, and only the one that opened is kept.
    sealed_to_old = store.shared_key(old.public_key)
    assert cache.first_that_opens(store.public_key, lambda key: key if key == sealed_to_old else refuse(key))
    assert list(cache._keys) == [(old.public_key, store.public_key)]


def test_shared_key_cache_opens_with_every_unretired_pair_and_seals_with_the_newest() -> None:
    old, new, peer = TicketKeyPair.generate(), TicketKeyPair.generate(), TicketKeyPair.generate()
    cache = SharedKeyCache(TicketKeyRing({1: old}))
    before = cache.shared_key(peer.public_key)
    cache.install(TicketKeyRing({1: old, 2: new}))
    assert cache.public_key == new.public_key
    assert cache.published() == [(2, new.public_key), (1, old.public_key)]
    assert cache.shared_keys(peer.public_key) == [peer.shared_key(new.public_key), before]
    cache.install(TicketKeyRing({2: new}))
    assert cache.shared_keys(peer.public_key) == [peer.shared_key(new.public_key)]
    assert all(pair[0] == new.public_key for pair in cache._keys)  # the retired pair's derivations are dropped
