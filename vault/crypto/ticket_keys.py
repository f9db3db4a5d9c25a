"""X25519 key pairs that seal and open third-party caveat tickets."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

from vault.errors import BadRequest

__all__ = [
    "LIST_NONCE_SIZE",
    "MAX_TICKET_KEYS",
    "PUBLIC_KEY_SIZE",
    "TicketKeyPair",
    "TicketKeyRing",
    "endorsement",
    "endorses",
    "key_list_payload",
]

PUBLIC_KEY_SIZE = 32
MAX_TICKET_KEYS = 4
"""Unretired pairs per purpose at most: a ticket names no key of the third party, so it tries each (bounded)."""
_ENDORSE = b"cvault key list endorsement v1"
LIST_NONCE_SIZE = 16
"""Bytes of the nonce a store sends with each read of the key list, which that reply's endorsements cover."""
_FRESH_LIST = "cvault key list v2"


class TicketKeyPair:
    """A first- or third-party X25519 key pair.

    The private half is only reachable through :attr:`private_key_bytes`, a
    name meant to make a reviewer look twice; it exists so the pair can be
    stored wrapped (see :mod:`vault.crypto.keyring`).
    """

    __slots__ = ("_private",)

    def __init__(self, private: PrivateKey) -> None:
        self._private = private

    def __repr__(self) -> str:
        return f"TicketKeyPair(public_key={self.public_key.hex()})"

    @classmethod
    def generate(cls) -> TicketKeyPair:
        return cls(PrivateKey.generate())

    @classmethod
    def from_private_key_bytes(cls, private: bytes) -> TicketKeyPair:
        return cls(PrivateKey(private))

    @property
    def private_key_bytes(self) -> bytes:
        return bytes(self._private)

    @property
    def public_key(self) -> bytes:
        return bytes(self._private.public_key)

    def shared_key(self, peer_public: bytes) -> bytes:
        """The 32-byte key both sides derive (``crypto_box_beforenm``)."""
        if len(peer_public) != PUBLIC_KEY_SIZE:
            raise BadRequest("a public key is 32 bytes")
        try:
            return bytes(Box(self._private, PublicKey(peer_public)).shared_key())
        except CryptoError:
            # A point of small order gives an all-zero shared secret, which libsodium refuses;
            # the peer key comes from the network (a ticket's sender), so this is bad input.
            raise BadRequest("the public key is not a usable X25519 key (a point of small order)") from None


class TicketKeyRing:
    """The unretired pairs of one purpose by key id (their row ids); the newest seals, every one opens."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Mapping[int, TicketKeyPair]) -> None:
        if not pairs:
            raise ValueError("a ticket key ring needs at least one pair")
        self._pairs = tuple(sorted(pairs.items(), reverse=True))

    def __repr__(self) -> str:
        return f"TicketKeyRing(ids={[key_id for key_id, _ in self._pairs]})"

    @property
    def newest_id(self) -> int:
        return self._pairs[0][0]

    @property
    def newest(self) -> TicketKeyPair:
        return self._pairs[0][1]

    def items(self) -> tuple[tuple[int, TicketKeyPair], ...]:
        """Newest first."""
        return self._pairs


def endorsement(shared_key: bytes, payload: bytes) -> bytes:
    """A MAC of ``payload`` under a key derived from ``KA``: only the two holders of ``KA`` can make it.

    The authority endorses the list of its public keys this way for one store (``KA`` of the
    store's pair and one of its own), so a store takes a new key only from a list a key it
    already trusts vouches for. The derivation keeps this MAC apart from the tickets ``KA`` seals.
    """
    mac_key = hmac.new(shared_key, _ENDORSE, hashlib.sha256).digest()
    return hmac.new(mac_key, payload, hashlib.sha256).digest()


def endorses(shared_key: bytes, payload: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(endorsement(shared_key, payload), tag)


def key_list_payload(location: str, keys: Sequence[tuple[int, bytes]], nonce: bytes | None = None) -> bytes:
    """What an endorsement covers: the third party's location and its (key id, public key) list, newest first.

    With ``nonce`` (the asking store's, fresh for each read) it covers that one reply: a reply
    recorded earlier does not verify for another nonce, so nobody who answers the URL can replay a
    list that still named a key since retired and make the store trust that key again. Without it
    (format 1, for stores from before nonces) any earlier reply verifies.
    """
    listed = [f"{key_id:016x} {public.hex()}" for key_id, public in keys]
    if nonce is None:
        return "\n".join([location, *listed]).encode()
    if len(nonce) != LIST_NONCE_SIZE:
        raise ValueError(f"a key list nonce is {LIST_NONCE_SIZE} bytes")
    # The first line keeps the two formats apart: a format 1 payload starts with a URL.
    return "\n".join([_FRESH_LIST, location, nonce.hex(), *listed]).encode()
