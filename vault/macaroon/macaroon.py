"""The macaroon itself: nonce, location, caveats, tail; decoding, encoding, attenuation.

Wire form (``superfly/macaroon``): the msgpack array ``[nonce, location, caveats, tail]``
with ``nonce = [kid, rnd, proof]`` (2-field v0 nonces are accepted when decoding)
and ``caveats`` a flat array ``[type0, body0, type1, body1, ...]``.

A decoded macaroon keeps the exact bytes it was read from: the nonce's bytes and
each caveat's ``type || body`` bytes. Signatures are computed over those, and
re-encoding writes them back unchanged. ``unverified_caveats`` is named for what
it is: nothing in it means anything until :func:`vault.macaroon.verify.verify`
has checked the tail.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vault.errors import BadRequest, InvalidToken
from vault.types import Random

from . import caveat as cav
from . import wire
from .caveats import ThirdParty
from .crypto import BINDING_ID_SIZE, DEFAULT_RANDOM, SigningKey, digest, finalize, sign

NONCE_RND_SIZE = 16
_KID_NAMESPACE = uuid.UUID("968fc2c6-a94f-4988-a544-2ad72b02f222")
_PAIR_HEADER = b"\x92"  # a one-caveat CaveatSet is the 2-element array [type, body]


@dataclass(frozen=True, slots=True)
class Nonce:
    kid: bytes
    rnd: bytes
    proof: bool = False
    raw: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def new(cls, kid: bytes, *, proof: bool, random: Random = DEFAULT_RANDOM) -> Nonce:
        rnd = random(NONCE_RND_SIZE)
        return cls(kid, rnd, proof, wire.pack([kid, rnd, proof]))

    @classmethod
    def from_wire(cls, value: Any, raw: bytes) -> Nonce:
        if not isinstance(value, list) or len(value) not in (2, 3):
            raise InvalidToken()
        kid, rnd = value[0], value[1]
        proof = value[2] if len(value) == 3 else False
        if not isinstance(kid, bytes) or not isinstance(rnd, bytes) or not isinstance(proof, bool):
            raise InvalidToken()
        return cls(kid, rnd, proof, raw)

    def uuid(self) -> uuid.UUID:
        """The token id: Go's ``uuid.NewSHA1(uuid.NewSHA1(ns, kid), rnd)``."""
        return _uuid5(_uuid5(_KID_NAMESPACE, self.kid), self.rnd)


def _uuid5(namespace: uuid.UUID, name: bytes) -> uuid.UUID:
    # uuid.uuid5 takes only str names before Python 3.12; this is the same
    # SHA-1 construction over raw bytes.
    return uuid.UUID(bytes=_sha1(namespace.bytes + name)[:16], version=5)


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


@dataclass(frozen=True, slots=True)
class Macaroon:
    """An immutable macaroon. ``finalized`` is false only for a proof still being built."""

    nonce: Nonce
    location: str
    unverified_caveats: tuple[cav.Caveat, ...]
    # The exact signed bytes of each caveat: msgpack ``[type, body]`` with the
    # type and body bytes as on the wire (the token stores them without the
    # 2-element array header, which every implementation writes as 0x92).
    caveat_bytes: tuple[bytes, ...] = field(repr=False)
    tail: bytes = field(repr=False)
    finalized: bool = True

    # -- construction -----------------------------------------------------

    @classmethod
    def mint(
        cls,
        kid: bytes,
        location: str,
        key: SigningKey,
        caveats: Iterable[cav.Caveat] = (),
        *,
        proof: bool = False,
        random: Random = DEFAULT_RANDOM,
    ) -> Macaroon:
        """A new token signed with ``key``. A proof stays open for caveats until :meth:`finalize`."""
        nonce = Nonce.new(kid, proof=proof, random=random)
        m = cls(nonce, location, (), (), sign(key, nonce.raw), finalized=not proof)
        return m._append(list(caveats)) if caveats else m

    def attenuate(self, caveats: Iterable[cav.Caveat]) -> Macaroon:
        """Append caveats without the key. Refuses finalized proofs; drops exact duplicates."""
        if self.nonce.proof and self.finalized:
            raise BadRequest("a discharge (finalized proof) cannot be attenuated")
        return self._append(list(caveats))

    def _append(self, caveats: list[cav.Caveat]) -> Macaroon:
        seen = set(self.caveat_bytes)
        locations = {c.location for c in self.unverified_caveats if isinstance(c, ThirdParty)}
        new_caveats = list(self.unverified_caveats)
        new_bytes = list(self.caveat_bytes)
        tail = self.tail
        for c in caveats:
            if c.ATTESTATION and not self.nonce.proof:
                raise BadRequest(f"{c.NAME} is an attestation; only discharges may carry it")
            if isinstance(c, ThirdParty):
                if c.location in locations:
                    raise BadRequest(f"token already has a third-party caveat for {c.location}")
                locations.add(c.location)
            packed = c.packed()
            if packed in seen:
                continue
            seen.add(packed)
            new_caveats.append(c)
            new_bytes.append(packed)
            tail = sign(tail, packed)
        return Macaroon(self.nonce, self.location, tuple(new_caveats), tuple(new_bytes), tail, self.finalized)

    def finalize(self) -> Macaroon:
        """Close a proof: no caveat can be added after this."""
        if self.finalized:
            return self
        return Macaroon(
            self.nonce,
            self.location,
            self.unverified_caveats,
            self.caveat_bytes,
            finalize(self.tail),
            True,
        )

    # -- properties ---------------------------------------------------------

    @property
    def is_proof(self) -> bool:
        return self.nonce.proof

    @property
    def token_id(self) -> str:
        return str(self.nonce.uuid())

    def binding_id(self) -> bytes:
        """What a discharge's ``BindToParentToken`` names to bind itself to this token as it is now."""
        return digest(self.tail)[:BINDING_ID_SIZE]

    def third_party_tickets(self, location: str | None = None) -> list[ThirdParty]:
        return [
            c
            for c in self.unverified_caveats
            if isinstance(c, ThirdParty) and (location is None or c.location == location)
        ]

    # -- wire -------------------------------------------------------------------

    def encode(self) -> bytes:
        if not self.finalized:
            raise BadRequest("finalize a proof before encoding it")
        return b"".join(
            (
                b"\x94",
                self.nonce.raw,
                wire.pack(self.location),
                wire.array_header(2 * len(self.caveat_bytes)),
                *(c[1:] for c in self.caveat_bytes),
                wire.pack(self.tail),
            )
        )


class PartDecoder(Protocol):
    """How :func:`decode` turns a nonce's and a caveat's bytes into values.

    The core's own (:data:`PARTS`) decodes every time and keeps nothing. A caller that sees the same tokens again
    and again can pass one that memoizes by the exact bytes, owning its memory (the store's token service does:
    :class:`vault.store.tokens.DecodeCache`); nonces and caveats are immutable and a pure function of their bytes.
    """

    def nonce(self, raw: bytes) -> Nonce: ...

    def caveat(self, raw: bytes) -> cav.Caveat: ...


def decode_nonce(raw: bytes) -> Nonce:
    """A nonce from its msgpack bytes (kept in ``raw``: the signature is over them)."""
    return Nonce.from_wire(wire.unpack_one(raw), raw)


def decode_caveat(raw: bytes) -> cav.Caveat:
    """One caveat from the bytes of its one-caveat CaveatSet ``[type, body]``."""
    pair = wire.unpack_one(raw)
    if not isinstance(pair, list) or len(pair) != 2:
        raise InvalidToken()
    return cav.from_wire(pair[0], pair[1])


class _Plain:
    """Decodes every part afresh; holds no state."""

    __slots__ = ()

    def nonce(self, raw: bytes) -> Nonce:
        return decode_nonce(raw)

    def caveat(self, raw: bytes) -> cav.Caveat:
        return decode_caveat(raw)


PARTS: PartDecoder = _Plain()


def decode(data: bytes, parts: PartDecoder = PARTS) -> Macaroon:
    """Parse one macaroon, keeping every signed byte as received. Any defect is :class:`InvalidToken`.

    ``parts`` decodes the nonce and each caveat (:class:`PartDecoder`; a memo of them, if the caller keeps one).
    """
    if not data or len(data) > wire.MAX_TOKEN_BYTES:
        raise InvalidToken()
    up = wire.unpacker(data)
    try:
        if up.read_array_header() != 4:
            raise InvalidToken()
        start = up.tell()
        up.skip()
        nonce = parts.nonce(data[start : up.tell()])
        location = up.unpack()
        if not isinstance(location, str):
            raise InvalidToken()
        n = up.read_array_header()
        if n % 2 or n // 2 > wire.MAX_CAVEATS:
            raise InvalidToken()
        caveats: list[cav.Caveat] = []
        raws: list[bytes] = []
        for _ in range(n // 2):
            start = up.tell()
            up.skip()
            up.skip()
            raw = _PAIR_HEADER + data[start : up.tell()]
            raws.append(raw)
            caveats.append(parts.caveat(raw))
        tail = up.unpack()
        if not isinstance(tail, bytes) or len(tail) != 32 or up.tell() != len(data):
            raise InvalidToken()
    except InvalidToken:
        raise
    except Exception as exc:  # msgpack's errors (OutOfData, ValueError, ...) all mean bad bytes
        raise InvalidToken() from exc
    return Macaroon(nonce, location, tuple(caveats), tuple(raws), tail, True)
