"""The store as its own macaroon authority: minting store tokens and verifying requests.

Every store token carries ``Organization{org, mask}`` and a third-party caveat
to the authority's org discharger (``<authority>/org``) whose ticket holds
``ConfineOrganization{org}`` and ``MaxValidity``. The ticket is sealed with
``KA = X25519(store private key, authority org public key)`` (the newest of each:
:class:`~vault.store.ticket_sealing.TicketSealing`), so only the authority can
discharge it, and the store can re-open its own tickets to trust the discharge's
attestations (who the caller is). No request calls the authority.

Key ids (``kid``) are the 8-byte big-endian id of the signing key's row in
``store.wrapped_keys``. Org root keys sign an org's tokens; one store-wide
enrolment key signs the enrolment challenges, which are good for nothing but
the ``enroll`` operation.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from vault.errors import InvalidToken, Unauthorized, VaultError
from vault.macaroon import (
    CONTROL,
    Access,
    Bundle,
    Caveat,
    Macaroon,
    Nonce,
    Verified,
    add_third_party,
    decode_caveat,
    decode_nonce,
    parse_bundle,
    verify,
)
from vault.macaroon.caveats import (
    ConfineOrganization,
    MaxValidity,
    Operations,
    Organization,
    ValidityWindow,
)
from vault.macaroon.crypto import DEFAULT_RANDOM
from vault.types import Clock, Random

from .authority_revocations import AuthorityRevocations
from .caller import Caller
from .interfaces import KeyDirectory, RevocationList
from .models import RootKey
from .ticket_sealing import TicketSealing

__all__ = ["CHALLENGE_TTL", "ENROLL_OPERATION", "DecodeCache", "StoreTokens", "key_id_from_kid", "kid_for"]

CHALLENGE_TTL = 300
VERIFIED_CACHE_SECONDS = 10.0
VERIFIED_CACHE_SIZE = 4096
ENROLL_OPERATION = "enroll"
_KID = struct.Struct(">Q")
_T = TypeVar("_T")


def kid_for(key_id: int) -> bytes:
    return _KID.pack(key_id)


def key_id_from_kid(kid: bytes) -> int:
    if len(kid) != _KID.size:
        raise InvalidToken()
    value: int = _KID.unpack(kid)[0]
    if value >= 1 << 63:  # key ids are bigint; no key has such an id
        raise InvalidToken()
    return value


class DecodeCache:
    """Decoded nonces and caveats by their exact bytes (a :class:`vault.macaroon.PartDecoder`).

    The same ones arrive again and again (every narrowed copy of a token repeats its parent's nonce and
    caveats), and they are immutable and a pure function of their bytes. Bounded in entries and entry size,
    so memory stays around a megabyte whatever arrives; the oldest entry goes first.
    """

    __slots__ = ("_caveats", "_max_bytes", "_max_entries", "_nonces")

    def __init__(self, *, max_entries: int = 4096, max_bytes: int = 256) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._nonces: dict[bytes, Nonce] = {}
        self._caveats: dict[bytes, Caveat] = {}

    def nonce(self, raw: bytes) -> Nonce:
        hit = self._nonces.get(raw)
        if hit is None:
            hit = decode_nonce(raw)
            self._remember(self._nonces, raw, hit)
        return hit

    def caveat(self, raw: bytes) -> Caveat:
        hit = self._caveats.get(raw)
        if hit is None:
            hit = decode_caveat(raw)
            self._remember(self._caveats, raw, hit)
        return hit

    def _remember(self, cache: dict[bytes, _T], raw: bytes, value: _T) -> None:
        if len(raw) <= self._max_bytes:
            if len(cache) >= self._max_entries:
                del cache[next(iter(cache))]
            cache[raw] = value


@dataclass(frozen=True, slots=True)
class _Verification:
    root: RootKey
    token_id: str
    verified: Verified
    verified_at: float  # monotonic seconds
    # When the discharges are valid (wall-clock seconds), so a cached entry is never used outside it.
    discharges_from: int
    discharges_until: int
    # The caller in the root key's org, built once (None for the enrolment key, which has no org).
    caller: Caller | None
    # TicketSealing.generation when verified: a ticket key retired since means verifying afresh.
    sealing_generation: int


class StoreTokens:
    """Mints store tokens and turns a request's bundle into a :class:`Caller`."""

    def __init__(
        self,
        *,
        location: str,
        org_location: str,
        sealing: TicketSealing,
        keys: KeyDirectory,
        revocations: RevocationList,
        org_discharge_ttl: int,
        authority_revocations: AuthorityRevocations | None,
        random: Random = DEFAULT_RANDOM,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.location = location
        self.org_location = org_location
        self._sealing = sealing
        self._trusted = {org_location: sealing.trusted}
        self._keys = keys
        self._revocations = revocations
        self._discharge_ttl = org_discharge_ttl
        # None only when the operator turned the feed off (revocation_feed = false).
        self._authority_revocations = authority_revocations
        self._random = random
        self._monotonic = monotonic
        self._cache: OrderedDict[str, _Verification] = OrderedDict()
        self._parts = DecodeCache()

    def _forget_stale(self, now: float) -> None:
        """Drop entries past :data:`VERIFIED_CACHE_SECONDS` (never used again) and beyond the size bound.

        Clients attenuate per call and per second, so most bundles are seen for a few seconds only: kept
        until 4096 of them were, they held some 40 MB per process for nothing (issue 25, item 6).
        """
        cache = self._cache
        while cache:
            oldest = next(iter(cache.values()))
            if len(cache) <= VERIFIED_CACHE_SIZE and now - oldest.verified_at <= VERIFIED_CACHE_SECONDS:
                return
            cache.popitem(last=False)

    @property
    def sealing(self) -> TicketSealing:
        return self._sealing

    def __repr__(self) -> str:
        return f"StoreTokens(location={self.location!r}, org_location={self.org_location!r})"

    # -- minting ---------------------------------------------------------------

    def mint(self, root: RootKey, org_id: int, mask: int, caveats: Sequence[Caveat] = ()) -> Macaroon:
        """A store token for ``org_id`` with ``mask`` and extra restrictions, plus the org 3P caveat."""
        token = Macaroon.mint(
            kid_for(root.key_id),
            self.location,
            root.key,
            [Organization(org_id, mask), *caveats],
            random=self._random,
        )
        public_key, shared_key = self._sealing.sealing
        return add_third_party(
            token,
            self.org_location,
            shared_key,
            public_key,
            [ConfineOrganization(org_id), MaxValidity(self._discharge_ttl)],
            random=self._random,
        )

    def challenge(self, enroll_key: RootKey, org_id: int, now: int) -> Macaroon:
        """An enrolment challenge: worthless without an org discharge carrying ``C``."""
        return self.mint(
            enroll_key,
            org_id,
            CONTROL,
            [Operations((ENROLL_OPERATION,)), ValidityWindow(now, now + CHALLENGE_TTL)],
        )

    # -- verifying ---------------------------------------------------------------

    def unverified_token_id(self, credentials: str) -> str | None:
        """The id of the store token in ``credentials``, unverified (for auditing a refusal), if it parses."""
        try:
            return parse_bundle(credentials, self._parts).permission_token(self.location).token_id
        except VaultError:
            return None

    async def claimed_org(self, credentials: str) -> int | None:
        """The org whose root key signed the store token in ``credentials``, unverified: it only picks the org
        to verify the request in (the Vault API's mounts). A bundle verified lately is not parsed again."""
        entry = self._cache.get(credentials)
        if entry is not None:
            return entry.root.org_id
        try:
            kid = parse_bundle(credentials, self._parts).permission_token(self.location).nonce.kid
            key_id = key_id_from_kid(kid)
        except VaultError:
            return None
        root = self._keys.cached(key_id) or await self._keys.load(key_id)
        return root.org_id if root is not None else None

    async def authenticate(self, credentials: str, access: Access) -> Caller:
        """Verify the store token and its org discharge, then check ``access`` against every caveat.

        ``credentials`` is the bundle as sent (comma-separated ``cv1_`` tokens).
        Raises :class:`InvalidToken` (bad bytes, signature, unknown key, revoked),
        :class:`MissingDischarge` (no valid, bound, unexpired org discharge; names
        the location to ask) or :class:`Unauthorized` (caveats refuse).

        Successful verifications are cached by the exact bundle text for a few
        seconds: the signatures and bindings of the same bytes cannot change, and
        everything that depends on time, revocation or the request (validity
        windows of the token and its discharge included) is checked again on
        every request by :meth:`Verified.check` below.
        """
        caller = await self.identify(credentials, access)
        caller.check(access)
        return caller

    async def identify(self, credentials: str, access: Access) -> Caller:
        """:meth:`authenticate` without the caveat check: signature, discharge, org, revocation.

        The caller must still check an access (``Caller.check`` or ``Caller.check_live``).
        """
        now = self._monotonic()
        entry = self._cache.get(credentials)
        if (
            entry is None
            or now - entry.verified_at > VERIFIED_CACHE_SECONDS
            or not entry.discharges_from <= access.now <= entry.discharges_until
            or entry.sealing_generation != self._sealing.generation
        ):
            # Verifying afresh also turns an expired discharge into 401 discharge_required.
            entry = await self._verify(parse_bundle(credentials, self._parts), access.now, now)
            self._cache.pop(credentials, None)
            self._cache[credentials] = entry  # last: the cache is in the order of verified_at
            self._forget_stale(now)
        root = entry.root
        if self._keys.cached(root.key_id) is None:
            # Its key was retired since this bundle was verified (`cvault keys retire-tokens`).
            self._cache.pop(credentials, None)
            raise InvalidToken()
        if root.org_id is None:
            # The enrolment key signs challenges only; refuse it anywhere else
            # even if a caveat were somehow missing.
            if access.operation != ENROLL_OPERATION:
                raise Unauthorized("an enrolment challenge is good only for enrolling")
        elif root.org_id != access.org_id:
            raise Unauthorized(f"token is for organization {root.org_id}, not {access.org_id}")
        if self._revocations.is_revoked(entry.token_id):
            raise InvalidToken("invalid token: this token was revoked")
        caller = entry.caller  # its org is access.org_id: checked above
        if caller is None:
            assert access.org_id is not None
            caller = Caller(access.org_id, entry.token_id, entry.verified)
        if self._authority_revocations is not None:
            # Checked on every request, cached verification or not: a revocation lands within the feed's delay.
            self._authority_revocations.check(caller, entry.discharges_from, access.now)
        return caller

    async def _verify(self, bundle: Bundle, now: int, monotonic_now: float) -> _Verification:
        token = bundle.permission_token(self.location)
        key_id = key_id_from_kid(token.nonce.kid)
        root = self._keys.cached(key_id) or await self._keys.load(key_id)
        tickets = token.third_party_tickets(self.org_location)
        # The first org caveat is the store's own (an attenuator can only add later ones).
        if root is None or not tickets or not self._sealing.opens(tickets[0].ticket):
            raise InvalidToken()
        verified = verify(token, root.key, bundle.discharges, now=now, trusted=self._trusted)
        windows = [c for d in verified.discharges for c in d.unverified_caveats if isinstance(c, ValidityWindow)]
        return _Verification(
            root,
            token.token_id,
            verified,
            monotonic_now,
            max((w.not_before for w in windows), default=now),
            min((w.not_after for w in windows), default=now),
            Caller(root.org_id, token.token_id, verified) if root.org_id is not None else None,
            self._sealing.generation,
        )
