"""Third-party caveats: tickets, and discharging them.

A first party adds a ``3P`` caveat for a third party at ``location``:

* a fresh 32-byte discharge key ``r``;
* ``verifier_key = seal(T_before, r)``: only someone who can recompute the tail
  before the caveat (the first party, holding the root key) can recover ``r``;
* ``ticket = 0x01 || first_party_public_key(32) || seal(KA, msgpack([r, caveats]))``
  where ``KA`` is the X25519 shared key of the two parties. The third party
  derives ``KA`` from its private key and the public key in the ticket; the
  first party derives the same ``KA`` from its private key and the third
  party's public key, so it can re-open its own tickets (and tell them from
  ones an attenuator added). Deriving ``KA`` is ``vault.crypto``'s job; this
  module takes it as bytes.

The third party answers with a discharge: a proof macaroon with ``kid = ticket``,
signed with ``r``, carrying its restrictions and attestations, bound to the
parent token, then finalized.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vault.errors import InvalidToken
from vault.types import Random

from . import caveat as cav
from . import wire
from .caveats import BindToParentToken, ThirdParty
from .crypto import DEFAULT_RANDOM, KEY_SIZE, EncryptionKey, SigningKey, seal, unseal
from .macaroon import Macaroon

TICKET_VERSION = 1
_PUBLIC_KEY_SIZE = 32


def add_third_party(
    token: Macaroon,
    location: str,
    shared_key: EncryptionKey,
    first_party_public_key: bytes,
    ticket_caveats: Iterable[cav.Caveat] = (),
    *,
    random: Random = DEFAULT_RANDOM,
) -> Macaroon:
    """Append a 3P caveat for ``location``; ``ticket_caveats`` are for the third party to enforce."""
    if len(shared_key) != KEY_SIZE or len(first_party_public_key) != _PUBLIC_KEY_SIZE:
        raise ValueError("shared key and public key must be 32 bytes")
    r = random(KEY_SIZE)
    sealed = seal(shared_key, wire.pack([r, cav.to_flat(ticket_caveats)]), random)
    ticket = bytes([TICKET_VERSION]) + first_party_public_key + sealed
    caveat = ThirdParty(location, seal(token.tail, r, random), ticket)
    return token.attenuate([caveat])


def ticket_sender(ticket: bytes) -> bytes:
    """The first party's public key named in a ticket (unauthenticated until the ticket opens)."""
    if len(ticket) < 1 + _PUBLIC_KEY_SIZE or ticket[0] != TICKET_VERSION:
        raise InvalidToken()
    return ticket[1 : 1 + _PUBLIC_KEY_SIZE]


@dataclass(frozen=True, slots=True)
class Ticket:
    discharge_key: SigningKey
    caveats: tuple[cav.Caveat, ...]


def open_ticket(ticket: bytes, shared_key: EncryptionKey) -> Ticket:
    """Decrypt a ticket with ``KA``; a ticket sealed for someone else or tampered is :class:`InvalidToken`."""
    ticket_sender(ticket)
    if len(ticket) > wire.MAX_TOKEN_BYTES:
        raise InvalidToken()
    value = wire.unpack_one(unseal(shared_key, ticket[1 + _PUBLIC_KEY_SIZE :]))
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidToken()
    r, flat = value[0], value[1]
    if not isinstance(r, bytes) or len(r) != KEY_SIZE:
        raise InvalidToken()
    return Ticket(SigningKey(r), tuple(cav.from_flat(flat)))


def start_discharge(
    ticket: bytes, shared_key: EncryptionKey, location: str, *, random: Random = DEFAULT_RANDOM
) -> tuple[Ticket, Macaroon]:
    """Third-party side: open the ticket and begin an (unfinalized) discharge for it.

    The caller checks ``Ticket.caveats`` against the request, adds its own
    restrictions, attestations and :func:`bind`, then calls ``finalize()``.
    """
    opened = open_ticket(ticket, shared_key)
    return opened, Macaroon.mint(ticket, location, opened.discharge_key, proof=True, random=random)


def bind(discharge: Macaroon, binding_id: bytes) -> Macaroon:
    """Bind an unfinalized discharge to the parent token identified by ``binding_id``.

    ``binding_id`` is ``parent.binding_id()``: a prefix of the SHA-256 of a tail
    along the parent's chain. The discharge then works with that token and with
    any token attenuated from it, never with a less attenuated one.
    """
    if len(binding_id) < 16 or len(binding_id) > 32:
        raise ValueError("a binding id is 16 to 32 bytes of the parent's tail digest")
    return discharge.attenuate([BindToParentToken(binding_id)])
