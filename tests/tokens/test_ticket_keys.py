"""X25519 ticket key pairs."""

from __future__ import annotations

import pytest

from vault.crypto.ticket_keys import TicketKeyPair
from vault.errors import BadRequest


def test_both_sides_derive_the_same_key() -> None:
    first, third = TicketKeyPair.generate(), TicketKeyPair.generate()
    shared = first.shared_key(third.public_key)
    assert len(shared) == 32
    assert shared == third.shared_key(first.public_key)
    assert shared != TicketKeyPair.generate().shared_key(third.public_key)


def test_private_key_survives_storage() -> None:
    pair = TicketKeyPair.generate()
    restored = TicketKeyPair.from_private_key_bytes(pair.private_key_bytes)
    assert restored.public_key == pair.public_key


def test_repr_shows_only_the_public_key() -> None:
    pair = TicketKeyPair.generate()
    assert pair.public_key.hex() in repr(pair)
    assert pair.private_key_bytes.hex() not in repr(pair)


def test_bad_peer_key_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        TicketKeyPair.generate().shared_key(b"short")
