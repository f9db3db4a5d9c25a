"""The store's ticket sealing keys: trust passes from org key to org key only through endorsements."""

from __future__ import annotations

from vault.authority.ticket_keys import SharedKeyCache
from vault.crypto.ticket_keys import TicketKeyPair, TicketKeyRing
from vault.macaroon import Macaroon, add_third_party
from vault.store.ticket_sealing import TicketSealing

ORG = "https://authority.example/org"


def _published(authority: SharedKeyCache, first_party: bytes) -> tuple[list[tuple[int, bytes]], dict[int, bytes]]:
    return authority.published(), dict(authority.endorsements(ORG, first_party))


def test_a_list_is_taken_only_on_the_word_of_a_trusted_key() -> None:
    store = TicketKeyPair.generate()
    a1, a2, a3 = (TicketKeyPair.generate() for _ in range(3))
    sealing = TicketSealing(org_location=ORG, ring=TicketKeyRing({1: store}), authority_key=a1.public_key)
    assert sealing.authority_key_id is None

    authority = SharedKeyCache(TicketKeyRing({10: a1, 11: a2}))
    assert sealing.accept(*_published(authority, store.public_key))
    assert sealing.authority_key_id == 11
    assert sealing.sealing == (store.public_key, store.shared_key(a2.public_key))

    # An impostor's list, endorsed by its own key only: refused, nothing changes.
    impostor = SharedKeyCache(TicketKeyRing({12: a3}))
    before = sealing.generation
    assert not sealing.accept(*_published(impostor, store.public_key))
    assert sealing.authority_key_id == 11 and sealing.generation == before
    # Endorsed for another store: refused too.
    assert not sealing.accept(*_published(authority, TicketKeyPair.generate().public_key))

    # The real authority rotates again and retires a1: a2 vouches for the new list.
    authority.install(TicketKeyRing({11: a2, 12: a3}))
    assert sealing.accept(*_published(authority, store.public_key))
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
