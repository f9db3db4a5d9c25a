"""``<authority>/org`` for workloads: a platform-signed JWT in place of an authority token.

The ticket is opened as for a token (:mod:`.dischargers`); then the JWT is verified
against the org's trusted issuer (:mod:`.workload_jwt`, keys from :mod:`.jwks`),
matched against the org's workload bindings of that issuer (audience and claim
rules, :mod:`.workload_rules`), counted against the replay bound, and the discharge
carries the binding's mask and scope and a :class:`WorkloadIdentity` attestation.
It never outlives the JWT. Every issue and refusal is audited (``discharge.workload``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from typing import Any

from vault.errors import InvalidToken, Unauthorized, VaultError
from vault.macaroon import CONTROL, Access, Caveat, Macaroon
from vault.macaroon.caveats import Organization, Secrets, ValidityWindow, Vaults
from vault.macaroon.cvault_caveats import WorkloadIdentity
from vault.types import Clock, RequestContext

from .audit import Auditor
from .dischargers import _check_ticket, _finish, _lifetime, _open, _ticket_org
from .interfaces import RevocationList, WorkloadRepository
from .jwks import JwksCache
from .ticket_keys import SharedKeyCache
from .workload_jwt import JwtLimits, has_audience, parse_unverified, replay_digest, verify_jwt
from .workload_records import WorkloadBinding, WorkloadIssuer
from .workload_rules import mismatched_claims, workload_label

__all__ = ["IssuerBindings", "WorkloadDischarger"]

_Found = tuple[WorkloadIssuer | None, list[WorkloadBinding]]


class IssuerBindings:
    """An org's issuer and its bindings by ``iss``, read from the database at most once per ``ttl`` seconds.

    Safe to cache for a second because removal does not rely on it: unbinding and removing an
    issuer put the binding ids on the revocation list, which the discharger checks on every
    request (this node at once, others within milliseconds). What the cache delays is only a new
    issuer or binding on another node (at most ``ttl``); this node's own changes clear it.
    """

    def __init__(
        self, repository: WorkloadRepository, *, ttl: float = 1.0, size: int = 1024, monotonic: Clock = time.monotonic
    ) -> None:
        self._repo = repository
        self._ttl = ttl
        self._size = size
        self._monotonic = monotonic
        self._entries: OrderedDict[tuple[int, str], tuple[float, _Found]] = OrderedDict()

    async def get(self, org: int, issuer: str) -> _Found:
        key, now = (org, issuer), self._monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        found = await self._repo.issuer_bindings(org, issuer)
        self._entries[key] = (now, found)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return found

    @property
    def repository(self) -> WorkloadRepository:
        return self._repo

    def clear(self) -> None:
        self._entries.clear()


def _scope(binding: WorkloadBinding, mask: int) -> list[Caveat]:
    caveats: list[Caveat] = []
    if binding.vaults:
        caveats.append(Vaults(tuple(sorted((v, mask) for v in set(binding.vaults)))))
    if binding.secrets:
        caveats.append(Secrets(tuple(sorted((s, mask) for s in set(binding.secrets)))))
    return caveats


def _granted(org: int, binding: WorkloadBinding) -> int:
    """What ``binding`` grants now: only while its binder still manages the org's workloads, within their role."""
    role = binding.binder_role
    if role is None or not role.mask & CONTROL:
        # As an authority token stops with its user's membership: demoted or removed, their bindings stop too.
        raise Unauthorized(
            f"workload binding {binding.name!r} was made by someone who is no longer an owner of organization "
            f"{org}; an owner must bind it again"
        )
    return binding.mask & role.mask


def _why_not(binding: WorkloadBinding, claims: dict[str, Any]) -> str | None:
    if not has_audience(claims, binding.audience):
        return f"its audience is not {binding.audience!r}"
    failed = mismatched_claims(binding.claims, claims)
    if failed:
        return f"claims {', '.join(repr(n) for n in failed)} do not match the binding's rules"
    return None


class WorkloadDischarger:
    def __init__(
        self,
        *,
        location: str,
        keys: SharedKeyCache,
        bindings: IssuerBindings,
        revocations: RevocationList,
        jwks: JwksCache,
        limits: JwtLimits,
        max_uses: int,
        clock: Clock,
        audit: Auditor,
    ) -> None:
        self.location = location
        self._keys = keys
        self._bindings = bindings
        self._revocations = revocations
        self._jwks = jwks
        self._limits = limits
        self._max_uses = max_uses
        self._clock = clock
        self._audit = audit

    async def discharge(
        self, ticket: bytes, binding_id: bytes, token: str, binding_name: str | None, ctx: RequestContext[None]
    ) -> Macaroon:
        now = int(self._clock())
        org: int | None = None
        seen: dict[str, Any] = {}
        try:
            opened, d = _open(ticket, self._keys, self.location)
            org = _ticket_org(opened)
            unverified = parse_unverified(token)
            seen["issuer"] = unverified.issuer
            issuer, bindings = await self._bindings.get(org, unverified.issuer)
            if issuer is None:
                raise Unauthorized(f"organization {org} trusts no workload issuer {unverified.issuer[:200]!r}")
            key = await self._jwks.key(issuer, unverified.kid, unverified.algorithm)
            claims = verify_jwt(unverified, key, algorithms=issuer.algorithms, now=now, limits=self._limits)
            seen["subject"] = claims["sub"][:200]
            binding = _match(org, bindings, claims, binding_name)
            seen["binding"] = binding.id
            if self._revocations.is_revoked(binding.id):
                raise Unauthorized(f"workload binding {binding.name!r} was removed")
            mask = _granted(org, binding)
            expires_at = int(claims["exp"])
            expiry = min(now + _lifetime(opened, binding.ttl), expires_at)
            if expiry <= now:
                raise InvalidToken("invalid workload JWT: it expires now")
            _check_ticket(opened, Access(now, org_id=org, discharge_expiry=expiry))
            digest = replay_digest(issuer.id, claims, token)
            uses = await self._bindings.repository.count_use(
                digest, dt.datetime.fromtimestamp(expires_at, dt.UTC), self._max_uses
            )
            if uses is None:
                raise InvalidToken(
                    f"invalid workload JWT: it was already used for {self._max_uses} discharges; present a fresh one"
                )
            label = workload_label(issuer.issuer, claims)
            caveats: list[Caveat] = [
                ValidityWindow(now, expiry),
                Organization(org, mask),
                *_scope(binding, mask),
                WorkloadIdentity(issuer.issuer, claims["sub"], binding.id, label),
            ]
            discharge = _finish(d, caveats, binding_id)
        except VaultError as exc:
            await self._audit.record(ctx, "discharge.workload", "denied", org=org, reason=exc.message, **seen)
            raise
        await self._audit.record(
            ctx,
            "discharge.workload",
            "ok",
            org=org,
            lineage=(binding.id,),
            workload=label,
            uses=uses,
            expires=expiry,
            **seen,
        )
        return discharge


def _match(org: int, bindings: list[WorkloadBinding], claims: dict[str, Any], name: str | None) -> WorkloadBinding:
    """The one binding of the issuer that accepts ``claims`` (the named one, if named)."""
    candidates = [b for b in bindings if name is None or b.name == name]
    if name is not None and not candidates:
        raise Unauthorized(f"organization {org} has no workload binding {name!r} for this issuer")
    reasons = {b.name: _why_not(b, claims) for b in candidates}
    matching = [b for b in candidates if reasons[b.name] is None]
    if len(matching) == 1:
        return matching[0]
    if matching:
        names = ", ".join(sorted(b.name for b in matching))
        raise Unauthorized(f"the workload JWT matches several bindings ({names}); name one")
    if name is not None:
        raise Unauthorized(f"workload binding {name!r} refuses this JWT: {reasons[name]}")
    if not candidates:
        raise Unauthorized(f"organization {org} has no workload binding for this issuer")
    raise Unauthorized(
        f"the workload JWT (sub {str(claims['sub'])[:200]!r}) matches none of organization {org}'s "
        f"{len(candidates)} binding(s) for this issuer"
    )
