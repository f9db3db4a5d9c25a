"""Which X25519 keys the store seals its org tickets with, and which of its own tickets it recognises.

The store seals every new ticket with ``KA`` of its newest ticket pair and the authority's
newest org public key. It starts from the org key it is configured with
(``CVAULT_AUTHORITY_ORG_PUBLIC_KEY``) and learns the authority's later ones from
``<authority>/.well-known/cvault/keys`` (:mod:`vault.web.store.authority_keys` polls it):
a published list is taken only if it carries an endorsement (a MAC under ``KA`` of this
store's pair and the key, over the list and the nonce the store sent for that read) from an
org key the store already trusts, so whoever answers that URL can neither slip in a key of
their own nor replay an older list to bring back a retired one; trust passes from key to
key as the authority rotates. The store re-opens its own tickets (to trust a discharge's
attestations) with ``KA`` of any unretired pair of its own and any org key it trusts; a
token whose own ticket it cannot re-open is refused (:meth:`opens`), so retiring either key
ends the tokens sealed with it, rather than leaving them in use with discharges whose
attestations (and with them the revocation feed's checks) the store could no longer trust.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from vault.crypto.ticket_keys import TicketKeyRing, endorses, key_list_payload
from vault.errors import InvalidToken
from vault.macaroon import EncryptionKey, open_ticket

__all__ = ["TicketSealing"]

log = logging.getLogger("cvault.store.keys")


class TicketSealing:
    def __init__(self, *, org_location: str, ring: TicketKeyRing, authority_key: bytes) -> None:
        self._org_location = org_location
        self._ring = ring
        # Newest first; the configured key has no id until a published list names it.
        self._authority: list[tuple[int | None, bytes]] = [(None, authority_key)]
        # Ids of org keys a list taken earlier named and a later one no longer did: retired, never trusted again.
        self._dropped: set[int] = set()
        self.trusted: list[EncryptionKey] = []
        """``KA`` of every (own pair, trusted org key): updated in place, so a verifier can hold the list."""
        self._sealing = (b"", EncryptionKey(b""))
        self.generation = 0
        """Incremented whenever the trusted keys change: verifications cached before are checked afresh."""
        self._derive()

    def __repr__(self) -> str:
        return f"TicketSealing(store_key={self._ring.newest_id}, authority_key={self.authority_key_id})"

    @property
    def sealing(self) -> tuple[bytes, EncryptionKey]:
        """(the store's newest public key, ``KA`` with the authority's newest org key): what seals new tickets."""
        return self._sealing

    @property
    def first_party(self) -> bytes:
        """The store's newest public key: the one the authority endorses its key list for."""
        return self._ring.newest.public_key

    @property
    def authority_key_id(self) -> int | None:
        """The id of the authority org key new tickets are sealed to (None: the configured one, not yet listed)."""
        return self._authority[0][0]

    @property
    def own_keys(self) -> list[tuple[int, bytes]]:
        """(id, public key) of the store's unretired ticket pairs, newest first."""
        return [(key_id, pair.public_key) for key_id, pair in self._ring.items()]

    @property
    def authority_keys(self) -> list[tuple[int | None, bytes]]:
        return list(self._authority)

    def opens(self, ticket: bytes) -> bool:
        """True if ``ticket`` was sealed with keys the store still trusts (an unretired pair, a trusted org key)."""
        for shared_key in self.trusted:
            try:
                open_ticket(ticket, shared_key)
            except InvalidToken:
                continue
            return True
        return False

    def install_ring(self, ring: TicketKeyRing) -> None:
        # A reload builds new pair objects every time: compare ids and public keys, not objects.
        if [(key_id, pair.public_key) for key_id, pair in ring.items()] != self.own_keys:
            self._ring = ring
            self._derive()

    def accept(self, keys: Sequence[tuple[int, bytes]], endorsements: Mapping[int, bytes], *, nonce: bytes) -> bool:
        """Take the authority's published org keys (newest first) if a trusted one endorses the list for us.

        ``nonce`` is the one this read sent: only endorsements covering it count, so a reply
        recorded earlier (which may still list a key retired since) is refused. Nor is a list
        taken that is older than one taken before (from an authority node that has not yet
        seen the newest change): key ids only grow, so one whose newest key is older than the
        newest trusted, or that names a key an earlier list dropped, would undo a rotation or
        bring a retired key back.
        """
        if not keys:
            return False
        listed = {key_id for key_id, _ in keys}
        newest_trusted = max((key_id for key_id, _ in self._authority if key_id is not None), default=None)
        if listed & self._dropped or (newest_trusted is not None and max(listed) < newest_trusted):
            return False
        payload = key_list_payload(self._org_location, keys, nonce)
        published = dict(keys)
        trusted = {public for _, public in self._authority}
        own = self._ring.newest
        for key_id, tag in endorsements.items():
            public = published.get(key_id)
            if public is not None and public in trusted and endorses(own.shared_key(public), payload, tag):
                new: list[tuple[int | None, bytes]] = list(keys)
                self._dropped.update(k for k, _ in self._authority if k is not None and k not in listed)
                if new != self._authority:
                    if new[0][1] != self._authority[0][1]:
                        log.info("authority org key %016x now seals new tickets", new[0][0])
                    self._authority = new
                    self._derive()
                return True
        return False

    def _derive(self) -> None:
        newest = self._ring.newest
        self._sealing = (newest.public_key, EncryptionKey(newest.shared_key(self._authority[0][1])))
        self.generation += 1
        self.trusted[:] = [
            EncryptionKey(pair.shared_key(public)) for _, pair in self._ring.items() for _, public in self._authority
        ]
