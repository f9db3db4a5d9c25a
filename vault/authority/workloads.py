"""An org's trusted workload issuers and its workload bindings (docs/workload-identity.md).

Only a caller holding ``C`` on the org manages them: an owner's session, or a bundle
whose every caveat allows ``C`` on the org. A binding grants at most what its creator
holds at binding time (their role's mask, and the bundle's mask too). Removing an
issuer or a binding publishes the binding ids on the revocation feed in the same
transaction, so stores refuse the discharges already issued for them within the
feed's delay.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vault.errors import BadRequest, NotFound, Unauthorized
from vault.macaroon import CONTROL, Access, mask_to_string
from vault.types import Clock, IPAddress, Random, RequestContext

from .accounts import Accounts
from .audit import Auditor
from .interfaces import RevocationList, WorkloadRepository
from .principal import CARRIED, Principal
from .workload_jwt import ALGORITHMS
from .workload_records import WorkloadBinding, WorkloadIssuer
from .workload_rules import check_claim_rules

__all__ = ["BindingRequest", "IssuerRequest", "Workloads", "check_binding_name", "check_issuer_url"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_MAX_URL = 512
_MAX_SCOPE = 64
MAX_BINDING_TTL = 3600


def check_issuer_url(value: object, what: str = "issuer") -> str:
    """An ``https://`` URL (the JWT's ``iss`` must equal it exactly)."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_URL or not value.isprintable():
        raise BadRequest(f"{what} must be an https:// URL of at most {_MAX_URL} characters")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise BadRequest(f"{what} must be an https:// URL with a host and no query, fragment or user")
    return value


def check_binding_name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BadRequest("a binding name is 1 to 63 characters of a-z, 0-9, '_', '.' and '-', starting alphanumeric")
    return value


def _scope(value: object, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_SCOPE:
        raise BadRequest(f"{what} must be a non-empty list of at most {_MAX_SCOPE} names")
    if not all(isinstance(v, str) and 0 < len(v) <= 256 and v.isprintable() for v in value):
        raise BadRequest(f"{what} must hold names of 1 to 256 printable characters")
    return tuple(value)


def _static_jwks(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not 0 < len(keys) <= 64 or not all(isinstance(k, dict) for k in keys):
        raise BadRequest('jwks must be a JWKS document: {"keys": [...]} with 1 to 64 public keys')
    if any("d" in k or "k" in k for k in keys):
        # A private key, or a symmetric one: neither belongs here.
        raise BadRequest("jwks must hold public keys only (no 'd', no symmetric 'k')")
    return {"keys": keys}


def _is_reference(text: str, *, url: bool = False) -> bool:
    """Whether ``text`` could name a binding (a name or id) or an issuer (``url``: its URL or id) at all.

    Anything else is simply not found, before it reaches the database (which refuses NUL characters).
    """
    try:
        uuid.UUID(text)
    except ValueError:
        pass
    else:
        return True
    if url:
        return 0 < len(text) <= _MAX_URL and text.isprintable()
    return _NAME.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class IssuerRequest:
    issuer: str
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None
    algorithms: tuple[str, ...] = ALGORITHMS


@dataclass(frozen=True, slots=True)
class BindingRequest:
    name: str
    issuer: str  # the issuer's URL or id
    claims: Mapping[str, Any]
    mask: int
    audience: str | None = None
    vaults: list[str] | None = None
    secrets: list[str] | None = None
    ttl: int | None = None


class Workloads:
    def __init__(
        self,
        *,
        repository: WorkloadRepository,
        accounts: Accounts,
        revocations: RevocationList,
        on_change: Callable[[], None],
        default_audience: str,
        default_ttl: int,
        clock: Clock,
        random: Random,
        audit: Auditor,
    ) -> None:
        self._repo = repository
        self._accounts = accounts
        self._revocations = revocations
        # Clears the discharger's cache of issuers and bindings: this node sees its own changes at once.
        self._on_change = on_change
        self._default_audience = default_audience
        self._default_ttl = default_ttl
        self._clock = clock
        self._random = random
        self._audit = audit

    async def allowed_mask(
        self, user_id: int, org_id: int, via: Principal | None, client_ip: IPAddress | None, operation: str
    ) -> int:
        """What the caller may grant in the org; :class:`Unauthorized` without ``C`` there."""
        role = await self._accounts.require_role(user_id, org_id)
        allowed = role.mask
        if via is not None:
            via.verified.check(
                Access(int(self._clock()), action=CONTROL, org_id=org_id, client_ip=client_ip, operation=operation)
            )
            if any(isinstance(c, CARRIED) for c in via.verified.restrictions):
                raise Unauthorized("a token restricted to some vaults, secrets or operations cannot manage workloads")
            allowed &= via.org_mask(org_id)
        if not allowed & CONTROL:
            raise Unauthorized(f"managing workloads needs 'C' in organization {org_id} (an owner)")
        return allowed

    async def add_issuer(
        self, user_id: int, org_id: int, request: IssuerRequest, ctx: RequestContext[None], allowed: int
    ) -> WorkloadIssuer:
        del allowed  # checked by allowed_mask; an issuer grants nothing by itself
        issuer_url = check_issuer_url(request.issuer)
        jwks_url = check_issuer_url(request.jwks_url, "jwks_url") if request.jwks_url is not None else None
        static = _static_jwks(request.jwks)
        if static is not None and jwks_url is not None:
            raise BadRequest("give jwks_url or jwks (static keys), not both")
        # Membership before dict.fromkeys: a JSON list may hold objects or lists, which do not hash.
        if not request.algorithms or any(not isinstance(a, str) or a not in ALGORITHMS for a in request.algorithms):
            raise BadRequest(f"algorithms must be some of {', '.join(ALGORITHMS)} (never none or an HMAC)")
        algorithms = tuple(dict.fromkeys(request.algorithms))
        issuer = WorkloadIssuer(
            str(uuid.UUID(bytes=self._random(16), version=4)), org_id, issuer_url, jwks_url, static, algorithms
        )

        async def audited(_: None, tx: object) -> None:
            await self._audit.record_in(
                tx, ctx, "workload.issuer.add", org=org_id, user_id=user_id, issuer=issuer_url, issuer_id=issuer.id
            )

        await self._repo.add_issuer(issuer, user_id, audited)
        self._on_change()
        return issuer

    async def issuers(self, org_id: int) -> list[WorkloadIssuer]:
        return await self._repo.issuers(org_id)

    async def remove_issuer(self, user_id: int, org_id: int, issuer: str, ctx: RequestContext[None]) -> list[str]:
        found = await self._repo.issuer(org_id, issuer) if _is_reference(issuer, url=True) else None
        if found is None:
            raise NotFound(f"organization {org_id} trusts no issuer {issuer[:200]!r}")

        async def audited(bindings: list[str], tx: object) -> None:
            await self._audit.record_in(
                tx,
                ctx,
                "workload.issuer.remove",
                org=org_id,
                user_id=user_id,
                issuer=found.issuer,
                issuer_id=found.id,
                bindings=bindings,
            )

        revoked = await self._repo.remove_issuer(org_id, found.id, audited)
        self._revocations.remember(revoked)
        self._on_change()
        return revoked

    async def bind(
        self, user_id: int, org_id: int, request: BindingRequest, ctx: RequestContext[None], allowed: int
    ) -> WorkloadBinding:
        name = check_binding_name(request.name)
        issuer = await self._repo.issuer(org_id, request.issuer) if _is_reference(request.issuer, url=True) else None
        if issuer is None:
            raise NotFound(f"organization {org_id} trusts no issuer {request.issuer[:200]!r}; add it first")
        claims = check_claim_rules(request.claims)
        if not request.mask:
            raise BadRequest("mask must name at least one permission")
        if request.mask & ~allowed:
            raise Unauthorized(
                f"you may grant at most '{mask_to_string(allowed)}' in organization {org_id}, "
                f"not '{mask_to_string(request.mask & ~allowed)}'"
            )
        audience = request.audience if request.audience is not None else self._default_audience
        if not isinstance(audience, str) or not 0 < len(audience) <= _MAX_URL:
            raise BadRequest(f"audience must be 1 to {_MAX_URL} characters")
        ttl = self._default_ttl if request.ttl is None else request.ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_BINDING_TTL:
            raise BadRequest(f"ttl must be between 1 and {MAX_BINDING_TTL} seconds")
        binding = WorkloadBinding(
            str(uuid.UUID(bytes=self._random(16), version=4)),
            org_id,
            issuer.id,
            issuer.issuer,
            name,
            audience,
            claims,
            request.mask,
            _scope(request.vaults, "vaults"),
            _scope(request.secrets, "secrets"),
            ttl,
        )

        async def audited(_: None, tx: object) -> None:
            await self._audit.record_in(
                tx,
                ctx,
                "workload.bind",
                org=org_id,
                user_id=user_id,
                binding=binding.id,
                name=name,
                issuer=issuer.issuer,
                claims=claims,
                mask=mask_to_string(binding.mask),
            )

        await self._repo.bind(binding, user_id, audited)
        self._on_change()
        return binding

    async def bindings(self, org_id: int) -> list[WorkloadBinding]:
        return await self._repo.bindings(org_id)

    async def binding(self, org_id: int, name_or_id: str) -> WorkloadBinding:
        found = await self._repo.binding(org_id, name_or_id) if _is_reference(name_or_id) else None
        if found is None:
            raise NotFound(f"organization {org_id} has no workload binding {name_or_id!r}")
        return found

    async def unbind(self, user_id: int, org_id: int, name_or_id: str, ctx: RequestContext[None]) -> str:
        async def audited(binding_id: str, tx: object) -> None:
            await self._audit.record_in(tx, ctx, "workload.unbind", org=org_id, user_id=user_id, binding=binding_id)

        if not _is_reference(name_or_id):
            raise NotFound(f"organization {org_id} has no workload binding {name_or_id[:64]!r}")
        revoked = await self._repo.unbind(org_id, name_or_id, audited)
        self._revocations.remember([revoked])
        self._on_change()
        return revoked
