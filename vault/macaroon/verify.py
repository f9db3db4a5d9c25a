"""Verifying a token with its discharges, and checking an access against the result.

:func:`verify` answers "are these bytes genuine, and is every third-party caveat
discharged by a valid, bound, unexpired discharge?" It returns a
:class:`Verified` holding the restrictions (the token's caveats plus those its
discharges add) and the attestations the verifier can trust.
:meth:`Verified.check` then answers "does this access pass every restriction?"
and refuses with every reason at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from vault.errors import InvalidToken, MissingDischarge, Unauthorized, VaultError

from . import caveat as cav
from .access import Access
from .caveats import BindToParentToken, Organization, ThirdParty, ValidityWindow
from .crypto import BINDING_ID_SIZE, EncryptionKey, SigningKey, digest, equal, finalize, sign_chain, unseal
from .macaroon import Macaroon
from .third_party import open_ticket

C = TypeVar("C", bound=cav.Caveat)

TrustedThirdParties = Mapping[str, Sequence[EncryptionKey]]
"""Location -> the shared keys (``KA``) with which this verifier can open its own tickets there."""


def chain(token: Macaroon, key: SigningKey) -> list[bytes]:
    """Every tail along the token's HMAC chain: ``T0``, then one per caveat."""
    return sign_chain(key, (token.nonce.raw, *token.caveat_bytes))


def check_signature(token: Macaroon, key: SigningKey) -> list[bytes]:
    """Recompute the chain (finalizing proofs) and compare with the tail; return the tails."""
    tails = chain(token, key)
    last = finalize(tails[-1]) if token.is_proof else tails[-1]
    if not equal(last, token.tail):
        raise InvalidToken()
    return tails


def check_all(caveats: Iterable[cav.Caveat], access: Access, *, label: str = "") -> None:
    """Raise :class:`Unauthorized` listing every caveat that refuses ``access`` (``label`` prefixes each)."""
    reasons = []
    for c in caveats:
        refusal = c.prohibits(access)
        if refusal is not None:
            reasons.append(f"{label}{c.NAME}: {refusal.reason}")
    if reasons:
        raise Unauthorized(reasons)


def recover_discharge_key(tail_before: bytes, caveat: ThirdParty) -> SigningKey:
    return SigningKey(unseal(tail_before, caveat.verifier_key))


@dataclass(frozen=True, slots=True)
class Verified:
    token: Macaroon
    discharges: tuple[Macaroon, ...]
    restrictions: tuple[cav.Caveat, ...]
    attestations: tuple[cav.Caveat, ...]

    def check(self, access: Access) -> None:
        """Raise :class:`Unauthorized` with every refusing caveat's reason, or return."""
        check_all(self.restrictions, access)

    def find(self, kind: type[C]) -> list[C]:
        return [c for c in self.restrictions if isinstance(c, kind)]

    def attested(self, kind: type[C]) -> list[C]:
        return [c for c in self.attestations if isinstance(c, kind)]

    def expiry(self) -> int | None:
        windows = self.find(ValidityWindow)
        return min(w.not_after for w in windows) if windows else None


def verify(
    token: Macaroon,
    key: SigningKey,
    discharges: Sequence[Macaroon] = (),
    *,
    now: int,
    trusted: TrustedThirdParties | None = None,
    location: str | None = None,
) -> Verified:
    """Verify ``token`` (signed with ``key``) and the discharges for its 3P caveats.

    ``location``, when given, must be the token's location (services pass their own).
    Raises :class:`InvalidToken` for bad signatures or structure and
    :class:`MissingDischarge` naming the location when a third-party caveat has
    no valid, bound, unexpired discharge. Discharges must be finalized proofs,
    must carry a ``ValidityWindow`` and at least one ``BindToParentToken``
    matching this token's chain, and may not carry 3P caveats of their own.
    """
    # The location is not covered by the signature (as in Go); a service names its own
    # location so a token addressed elsewhere, or with altered location bytes, fails here.
    if token.is_proof or (location is not None and token.location != location):
        raise InvalidToken()
    tails = check_signature(token, key)

    restrictions: list[cav.Caveat] = []
    pending: list[tuple[int, ThirdParty]] = []
    has_org = False
    for i, c in enumerate(token.unverified_caveats):
        # Exact type checks: these classes are final, and this loop runs for every request.
        kind = type(c)
        if kind is ThirdParty:
            pending.append((i, c))  # type: ignore[arg-type]
        elif kind is Organization:
            has_org = True
            restrictions.append(c)
        elif kind is BindToParentToken or c.ATTESTATION:
            raise InvalidToken()
        else:
            restrictions.append(c)
    if not has_org:
        raise Unauthorized("token names no organization, so it authorizes nothing")

    attestations: list[cav.Caveat] = []
    used: list[Macaroon] = []
    if pending:
        binding_ids = [digest(t) for t in tails]
        for i, third in pending:
            r = recover_discharge_key(tails[i], third)
            candidates = [d for d in discharges if d.nonce.kid == third.ticket]
            if not candidates:
                raise MissingDischarge(third.location)
            first_error: VaultError | None = None
            for d in candidates:
                try:
                    rest, att = _verify_discharge(d, r, third.location, binding_ids, now, trusted or {})
                except VaultError as exc:
                    first_error = first_error or exc
                    continue
                restrictions.extend(rest)
                attestations.extend(att)
                used.append(d)
                break
            else:
                assert first_error is not None
                raise first_error
    return Verified(token, tuple(used), tuple(restrictions), tuple(attestations))


def _verify_discharge(
    d: Macaroon,
    r: SigningKey,
    location: str,
    binding_ids: list[bytes],
    now: int,
    trusted: TrustedThirdParties,
) -> tuple[list[cav.Caveat], list[cav.Caveat]]:
    if not d.is_proof or not d.finalized:
        raise MissingDischarge(location, f"discharge for {location} is not a finalized proof")
    if d.location != location:
        raise InvalidToken()
    check_signature(d, r)
    rest: list[cav.Caveat] = []
    att: list[cav.Caveat] = []
    bound = False
    for c in d.unverified_caveats:
        if isinstance(c, ThirdParty):
            raise MissingDischarge(
                location, f"discharge for {location} carries its own third-party caveat (not allowed)"
            )
        if isinstance(c, BindToParentToken):
            bid = c.binding_id
            if len(bid) < BINDING_ID_SIZE or not any(full.startswith(bid) for full in binding_ids):
                raise MissingDischarge(location, f"discharge for {location} is bound to a different token")
            bound = True
        elif c.ATTESTATION:
            att.append(c)
        else:
            rest.append(c)
    if not bound:
        raise MissingDischarge(location, f"discharge for {location} is not bound to this token")
    windows = [c for c in rest if isinstance(c, ValidityWindow)]
    if not windows:
        raise MissingDischarge(location, f"discharge for {location} has no validity window")
    for w in windows:
        refusal = w.prohibits(Access(now=now))
        if refusal is not None:
            raise MissingDischarge(location, f"discharge for {location}: {refusal.reason}")
    if att and not _issued_by_trusted(d.nonce.kid, r, trusted.get(location, ())):
        att = []
    return rest, att


def _issued_by_trusted(ticket: bytes, r: SigningKey, shared_keys: Sequence[EncryptionKey]) -> bool:
    """True if we can open the ticket ourselves and it names the same discharge key."""
    for ka in shared_keys:
        try:
            opened = open_ticket(ticket, ka)
        except InvalidToken:
            continue
        return equal(opened.discharge_key, r)
    return False
