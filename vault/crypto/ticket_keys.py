"""X25519 key pairs that seal and open third-party caveat tickets."""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

from vault.errors import BadRequest

__all__ = ["PUBLIC_KEY_SIZE", "TicketKeyPair"]

PUBLIC_KEY_SIZE = 32


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
