"""The store's ticket sealing keys: trust passes from org key to org key only through endorsements."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from vault.authority.ticket_keys import SharedKeyCache
from vault.crypto.ticket_keys import TicketKeyPair, TicketKeyRing
from vault.macaroon import Macaroon, add_third_party
from vault.store.ticket_sealing import TicketSealing
from vault.web.store.authority_keys import AuthorityKeyFollower, KeyListError

ORG = "https://authority.example/org"
NONCE = bytes(range(16))


def _published(
    authority: SharedKeyCache, first_party: bytes, nonce: bytes = NONCE
) -> tuple[list[tuple[int, bytes]], dict[int, bytes]]:
    return authority.published(), dict(authority.endorsements(ORG, first_party, nonce))


def test_a_list_is_taken_only_on_the_word_of_a_trusted_key() -> None:
    store = TicketKeyPair.generate()
    a1, a2, a3 = (TicketKeyPair.generate() for _ in range(3))
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a1.public_key)
    assert sealing.authority_key_id is None

    authority = SharedKeyCache(TicketKeyRing({10: a1, 11: a2}))
    assert sealing.accept(*_published(authority, store.public_key), nonce=NONCE)
    assert sealing.authority_key_id == 11
    assert sealing.sealing == (store.public_key, store.shared_key(a2.public_key))

    # An impostor's list, endorsed by its own key only: refused, nothing changes.
    impostor = SharedKeyCache(TicketKeyRing({12: a3}))
    before = sealing.generation
    assert not sealing.accept(*_published(impostor, store.public_key), nonce=NONCE)
    assert sealing.authority_key_id == 11 and sealing.generation == before
    # Endorsed for another store: refused too.
    assert not sealing.accept(*_published(authority, TicketKeyPair.generate().public_key), nonce=NONCE)

    # The real authority rotates again and retires a1: a2 vouches for the new list.
    authority.install(TicketKeyRing({11: a2, 12: a3}))
    assert sealing.accept(*_published(authority, store.public_key), nonce=NONCE)
    assert [key_id for key_id, _ in sealing.authority_keys] == [12, 11]
    assert sealing.generation > before


def test_own_tickets_open_until_their_keys_are_retired() -> None:
    old, new, a1 = TicketKeyPair.generate(), TicketKeyPair.generate(), TicketKeyPair.generate()
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: old}), authority_key=a1.public_key)

    def ticket() -> bytes:
        public, shared = sealing.sealing
        token = add_third_party(Macaroon.mint(b"kid", "store", bytes(32)), ORG, shared, public)
        return token.third_party_tickets(ORG)[0].ticket

    first = ticket()
    generation = sealing.generation
    sealing.install_ring(TicketKeyRing({1: TicketKeyPair.from_private_key_bytes(old.private_key_bytes)}))
    assert sealing.generation == generation  # a reload with the same keys invalidates nothing
    sealing.install_ring(TicketKeyRing({1: old, 2: new}))
    second = ticket()
    assert sealing.opens(first) and sealing.opens(second)
    sealing.install_ring(TicketKeyRing({2: new}))
    assert not sealing.opens(first) and sealing.opens(second)


def test_a_recorded_list_does_not_bring_back_a_retired_key() -> None:
    """A reply is endorsed for the nonce of the read that asked: replayed to a later read it is refused."""
    store = TicketKeyPair.generate()
    a1, a2 = TicketKeyPair.generate(), TicketKeyPair.generate()
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a1.public_key)
    authority = SharedKeyCache(TicketKeyRing({10: a1, 11: a2}))
    first = os.urandom(16)
    recorded = _published(authority, store.public_key, first)
    assert sealing.accept(*recorded, nonce=first)

    # a1 is retired (stolen, say); the store's next read takes the list without it.
    authority.install(TicketKeyRing({11: a2}))
    second = os.urandom(16)
    assert sealing.accept(*_published(authority, store.public_key, second), nonce=second)
    assert [key_id for key_id, _ in sealing.authority_keys] == [11]
    trusted = list(sealing.trusted)

    # Whoever answers the URL replays the reply recorded when a1 was still listed: refused.
    assert not sealing.accept(*recorded, nonce=os.urandom(16))
    assert [key_id for key_id, _ in sealing.authority_keys] == [11] and sealing.trusted == trusted
    # So is a list endorsed the old way, for no nonce at all (what the authority gives older stores).
    legacy = authority.published(), dict(authority.endorsements(ORG, store.public_key))
    assert not sealing.accept(*legacy, nonce=os.urandom(16))

    # A store that restarted remembers no dropped key: there the nonce alone refuses the replay.
    restarted = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a2.public_key)
    assert not restarted.accept(*recorded, nonce=os.urandom(16))
    assert restarted.authority_key_id is None
    fresh = os.urandom(16)
    assert restarted.accept(*_published(authority, store.public_key, fresh), nonce=fresh)
    assert [key_id for key_id, _ in restarted.authority_keys] == [11]


def test_a_list_older_than_one_taken_is_refused() -> None:
    """A node that has not seen the newest rotation or retirement yet cannot undo it at the store."""
    store = TicketKeyPair.generate()
    a1, a2, a3 = (TicketKeyPair.generate() for _ in range(3))
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a1.public_key)
    current = SharedKeyCache(TicketKeyRing({11: a2, 10: a1}))
    assert sealing.accept(*_published(current, store.public_key), nonce=NONCE)
    lagging = SharedKeyCache(TicketKeyRing({11: a2, 10: a1}))  # still lists a1 after the retirement below
    current.install(TicketKeyRing({11: a2}))
    assert sealing.accept(*_published(current, store.public_key), nonce=NONCE)
    assert not sealing.accept(*_published(lagging, store.public_key), nonce=NONCE)  # fresh, endorsed, stale
    assert [key_id for key_id, _ in sealing.authority_keys] == [11]

    current.install(TicketKeyRing({12: a3, 11: a2}))
    assert sealing.accept(*_published(current, store.public_key), nonce=NONCE)
    behind = SharedKeyCache(TicketKeyRing({11: a2}))  # has not seen a3 yet
    assert not sealing.accept(*_published(behind, store.public_key), nonce=NONCE)
    assert sealing.authority_key_id == 12


@pytest.fixture
async def key_feed() -> AsyncIterator[Callable[[Callable[[web.Request], Any]], Awaitable[str]]]:
    """Serves ``/.well-known/cvault/keys`` over real HTTP with a reply computed from each request."""
    runners: list[web.AppRunner] = []

    async def serve(reply: Callable[[web.Request], Any]) -> str:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(reply(request))

        app = web.Application()
        app.router.add_get("/.well-known/cvault/keys", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/.well-known/cvault/keys"

    yield serve
    for runner in runners:
        await runner.cleanup()


def _reply(authority: SharedKeyCache, first_party: bytes, nonce: bytes | None) -> dict[str, Any]:
    """The org part of the authority's reply (vault.web.authority.handlers.public_keys)."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {
        "org": {
            "keys": [{"id": f"{k:016x}", "public_key": b64(p)} for k, p in authority.published()],
            "endorsements": [
                {"id": f"{k:016x}", "mac": b64(tag)} for k, tag in authority.endorsements(ORG, first_party, nonce)
            ],
        }
    }


async def test_the_follower_takes_only_a_list_endorsed_for_its_own_read(key_feed: Any) -> None:
    store = TicketKeyPair.generate()
    a1, a2 = TicketKeyPair.generate(), TicketKeyPair.generate()
    authority = SharedKeyCache(TicketKeyRing({10: a1, 11: a2}))
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a1.public_key)
    seen: list[str] = []

    def live(request: web.Request) -> dict[str, Any]:
        nonce = request.query["nonce"]
        seen.append(nonce)
        return _reply(authority, store.public_key, bytes.fromhex(nonce))

    follower = AuthorityKeyFollower(url=await key_feed(live), sealing=sealing, interval=3600, ssl_context=False)
    await follower.start(required=False)
    try:
        assert await follower.refresh() and await follower.refresh()
        assert sealing.authority_key_id == 11
        assert len(seen) >= 2 and len(set(seen)) == len(seen)  # a fresh nonce for every read (and the start's)
        recorded = _reply(authority, store.public_key, bytes.fromhex(seen[-1]))
    finally:
        await follower.close()

    # Retired at the authority, then a replay of the reply recorded above to the store's next read.
    authority.install(TicketKeyRing({11: a2}))
    sealing.accept(*_published(authority, store.public_key), nonce=NONCE)
    assert [key_id for key_id, _ in sealing.authority_keys] == [11]
    replaying = AuthorityKeyFollower(
        url=await key_feed(lambda request: recorded), sealing=sealing, interval=3600, ssl_context=False
    )
    await replaying.start(required=False)
    try:
        with pytest.raises(KeyListError, match="nonce"):
            await replaying.refresh()
    finally:
        await replaying.close()
    assert [key_id for key_id, _ in sealing.authority_keys] == [11]
    # And an authority that ignores the nonce (one from before) is refused the same way, not trusted.
    old = AuthorityKeyFollower(
        url=await key_feed(lambda request: _reply(authority, store.public_key, None)),
        sealing=sealing,
        interval=3600,
        ssl_context=False,
    )
    await old.start(required=False)
    try:
        with pytest.raises(KeyListError):
            await old.refresh()
    finally:
        await old.close()
