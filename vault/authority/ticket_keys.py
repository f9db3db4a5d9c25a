"""The authority's three X25519 key pairs and the ticket keys derived from them.

* ``login``: the login discharger's pair; ``<authority>/login`` tickets are sealed to it.
* ``org``: the org discharger's pair; store tickets for ``<authority>/org`` are sealed to it.
* ``issuer``: the authority as *first party* of the login caveat it puts in every
  permission token. ``KA = issuer_sk x login_pk`` seals those tickets, and is also
  how the authority recognises its own login tickets when it trusts the
  ``UserID`` attestation of a login discharge.

A discharger derives ``KA = own_sk x sender_pk`` from the public key a ticket
names; derivations are cached per sender (bounded LRU) because every store
(or every first party) sends the same public key over and over.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from vault.macaroon import EncryptionKey

__all__ = ["KeyPair", "SharedKeyCache", "TicketKeys"]


class KeyPair(Protocol):
    """What the authority needs of :class:`vault.crypto.ticket_keys.TicketKeyPair`."""

    @property
    def public_key(self) -> bytes: ...

    def shared_key(self, peer_public: bytes) -> bytes: ...


class SharedKeyCache:
    """``KA`` for each sender public key, derived once per sender (bounded LRU)."""

    def __init__(self, pair: KeyPair, *, size: int = 1024) -> None:
        self._pair = pair
        self._size = size
        self._keys: OrderedDict[bytes, EncryptionKey] = OrderedDict()

    def __repr__(self) -> str:
        return f"SharedKeyCache(public_key={self._pair.public_key.hex()}, cached={len(self._keys)})"

    @property
    def public_key(self) -> bytes:
        return self._pair.public_key

    def shared_key(self, sender_public: bytes) -> EncryptionKey:
        key = self._keys.get(sender_public)
        if key is None:
            key = EncryptionKey(self._pair.shared_key(sender_public))
            self._keys[sender_public] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(sender_public)
        return key


class TicketKeys:
    def __init__(self, *, login: KeyPair, org: KeyPair, issuer: KeyPair, cache_size: int = 1024) -> None:
        self.login = SharedKeyCache(login, size=cache_size)
        self.org = SharedKeyCache(org, size=cache_size)
        self.issuer_public_key = issuer.public_key
        self.issuer_login_key = EncryptionKey(issuer.shared_key(login.public_key))
        """``KA`` between the authority as first party and its own login discharger."""

    def __repr__(self) -> str:
        return f"TicketKeys(login={self.login!r}, org={self.org!r})"
