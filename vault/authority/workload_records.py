"""Workload issuers and bindings as the authority's repository returns them. No behaviour."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WorkloadBinding", "WorkloadIssuer"]


@dataclass(frozen=True, slots=True)
class WorkloadIssuer:
    """An OIDC issuer an org trusts: where its keys come from and which algorithms it may sign with."""

    id: str
    org_id: int
    issuer: str
    jwks_url: str | None  # None: OIDC discovery at <issuer>/.well-known/openid-configuration, or static keys
    static_jwks: dict[str, Any] | None = field(repr=False)
    algorithms: tuple[str, ...]
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkloadBinding:
    """Which verified JWTs of an issuer may discharge the org's caveat, and what the discharge grants."""

    id: str
    org_id: int
    issuer_id: str
    issuer: str
    name: str
    audience: str
    claims: dict[str, str]
    mask: int
    vaults: tuple[str, ...] | None
    secrets: tuple[str, ...] | None
    ttl: int
    created_at: dt.datetime | None = None
