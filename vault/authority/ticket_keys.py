"""The authority's three X25519 key rings and the ticket keys derived from them.

* ``login``: the login discharger's pairs; ``<authority>/login`` tickets are sealed to one.
* ``org``: the org discharger's pairs; store tickets for ``<authority>/org`` are sealed to one.
* ``issuer``: the authority as *first party* of the login caveat it puts in every
  permission token. ``KA = issuer_sk x login_pk`` (the newest of each) seals those
  tickets, and is also how the authority recognises its own login tickets when it
  trusts the ``UserID`` attestation of a login discharge.

Each ring holds every unretired pair of its purpose (``cvault keys rotate-tickets``
adds one; docs/keys.md). A ticket names its sender's public key but not which of
the discharger's keys it was sealed to, so a discharger derives
``KA = own_sk x sender_pk`` for each unretired pair, newest first, and keeps the
first that opens the ticket: at most ``MAX_TICKET_KEYS`` tries. Derivations are cached
per (pair, sender) (bounded LRU) because every store sends the same public key over
and over; only one that opened a ticket is kept, since anyone may send a ticket naming
any sender, and made-up senders must not evict the keys real stores use.
:meth:`TicketKeys.install` swaps the rings in when keys change, so the objects handed
out at start stay current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

from vault.crypto.ticket_keys import endorsement, key_list_payload
from vault.errors import InvalidToken
from vault.macaroon import EncryptionKey

T = TypeVar("T")

__all__ = ["KeyPair", "KeyRing", "SharedKeyCache", "TicketKeys"]


class KeyPair(Protocol):
    """What the authority needs of :class:`vault.crypto.ticket_keys.TicketKeyPair`."""

    @property
    def public_key(self) -> bytes: ...

    def shared_key(self, peer_public: bytes) -> bytes: ...


class KeyRing(Protocol):
    """What the authority needs of :class:`vault.crypto.ticket_keys.TicketKeyRing`."""

    @property
    def newest(self) -> KeyPair: ...

    def items(self) -> tuple[tuple[int, KeyPair], ...]: ...


class SharedKeyCache:
    """``KA`` for each (unretired pair, sender public key), derived once per pair and sender (bounded LRU)."""

    def __init__(self, ring: KeyRing, *, size: int = 1024) -> None:
        self._ring = ring
        self._size = size
        self._keys: OrderedDict[tuple[bytes, bytes], EncryptionKey] = OrderedDict()

    def __repr__(self) -> str:
        return f"SharedKeyCache(public_key={self.public_key.hex()}, cached={len(self._keys)})"

    @property
    def public_key(self) -> bytes:
        """The newest pair's: what new tickets are sealed to."""
        return self._ring.newest.public_key

    def published(self) -> list[tuple[int, bytes]]:
        """(key id, public key) of every unretired pair, newest first."""
        return [(key_id, pair.public_key) for key_id, pair in self._ring.items()]

    def endorsements(self, location: str, first_party: bytes, nonce: bytes | None = None) -> list[tuple[int, bytes]]:
        """(key id, MAC) of :meth:`published` by each unretired pair, for the holder of ``first_party``.

        A store takes a newly published key only if a key it already trusts vouches for the
        list (:class:`vault.store.ticket_sealing.TicketSealing`), and only for the ``nonce`` it
        sent with this read (see :func:`~vault.crypto.ticket_keys.key_list_payload`).
        """
        payload = key_list_payload(location, self.published(), nonce)
        # Derived afresh, not through the cache: anyone may ask for any first_party, and a flood of
        # made-up ones would otherwise evict the derivations org discharges use.
        return [(key_id, endorsement(pair.shared_key(first_party), payload)) for key_id, pair in self._ring.items()]

    def install(self, ring: KeyRing) -> None:
        self._ring = ring
        live = {pair.public_key for _, pair in ring.items()}
        for cached in [k for k in self._keys if k[0] not in live]:
            del self._keys[cached]

    def shared_key(self, sender_public: bytes) -> EncryptionKey:
        """``KA`` of the newest pair and ``sender_public``."""
        return self._derive(self._ring.newest, sender_public)

    def shared_keys(self, sender_public: bytes) -> list[EncryptionKey]:
        """``KA`` of every unretired pair and ``sender_public``, newest pair first."""
        return [self._derive(pair, sender_public) for _, pair in self._ring.items()]

    def first_that_opens(self, sender_public: bytes, attempt: Callable[[EncryptionKey], T]) -> T:
        """``attempt(KA)`` for each unretired pair, newest first, until one does not raise :class:`InvalidToken`.

        Only the ``KA`` that worked enters the cache; raises the last ``InvalidToken`` when none does.
        """
        failure = InvalidToken("no key opens it")
        for _, pair in self._ring.items():
            slot = (pair.public_key, sender_public)
            cached = self._keys.get(slot)
            key = cached if cached is not None else EncryptionKey(pair.shared_key(sender_public))
            try:
                result = attempt(key)
            except InvalidToken as exc:
                failure = exc
                continue
            if cached is None:
                self._remember(slot, key)
            else:
                self._keys.move_to_end(slot)
            return result
        raise failure

    def _remember(self, slot: tuple[bytes, bytes], key: EncryptionKey) -> None:
        self._keys[slot] = key
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def _derive(self, pair: KeyPair, sender_public: bytes) -> EncryptionKey:
        slot = (pair.public_key, sender_public)
        key = self._keys.get(slot)
        if key is None:
            key = EncryptionKey(pair.shared_key(sender_public))
            self._remember(slot, key)
        else:
            self._keys.move_to_end(slot)
        return key


class TicketKeys:
    def __init__(self, *, login: KeyRing, org: KeyRing, issuer: KeyRing, cache_size: int = 1024) -> None:
        self.login = SharedKeyCache(login, size=cache_size)
        self.org = SharedKeyCache(org, size=cache_size)
        self.issuer = SharedKeyCache(issuer, size=cache_size)
        self.issuer_login_keys: list[EncryptionKey] = []
        """``KA`` of every (issuer pair, login pair): the login tickets the authority recognises as its own."""
        self._derive()

    def __repr__(self) -> str:
        return f"TicketKeys(login={self.login!r}, org={self.org!r})"

    def install(self, *, login: KeyRing, org: KeyRing, issuer: KeyRing) -> None:
        self.login.install(login)
        self.org.install(org)
        self.issuer.install(issuer)
        self._derive()

    def _derive(self) -> None:
        login_public = [public for _, public in self.login.published()]
        # The newest combination first: it seals new tickets and opens most of those presented.
        self.issuer_login_keys[:] = [self.issuer.shared_key(p) for p in login_public] + [
            ka for p in login_public for ka in self.issuer.shared_keys(p)[1:]
        ]

    @property
    def issuer_public_key(self) -> bytes:
        return self.issuer.public_key

    @property
    def issuer_login_key(self) -> EncryptionKey:
        """``KA`` between the newest issuer pair and the newest login pair: seals new login tickets."""
        return self.issuer_login_keys[0]
