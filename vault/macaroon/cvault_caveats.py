"""cvault's own caveat types, in the user-defined range (>= 2**48).

Numbered from :data:`CVAULT_BASE`; a number, once shipped, is never reused and a
body's fields are only ever appended (see the note in :mod:`vault.macaroon.caveat`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from . import access as acc
from .access import Access
from .caveat import CAV_MIN_USER_DEFINED, Caveat, Refusal, register
from .fields import action_refusal, mask, struct_fields, text, uint

CVAULT_BASE = CAV_MIN_USER_DEFINED + 0x6376_0000  # "cv"


def _mask_map(body: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(body, dict) or not body:
        raise ValueError("expected a non-empty map of name -> mask")
    return tuple(sorted((text(k), uint(v, 16)) for k, v in body.items()))


def _mask_map_json(body: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(body, dict) or not body:
        raise ValueError('expected a non-empty object like {"prod": "r"}')
    return tuple(sorted((text(k), mask(v)) for k, v in body.items()))


@dataclass(frozen=True, slots=True)
class _MaskMap(Caveat):
    """A ``{name: mask}`` map; subclasses say which resource the names match."""

    masks: tuple[tuple[str, int], ...]

    def body(self) -> Any:
        return dict(self.masks)

    @classmethod
    def from_body(cls, body: Any) -> Caveat:
        return cls(_mask_map(body))

    def to_json(self) -> Any:
        return {k: acc.mask_to_string(v) for k, v in self.masks}

    @classmethod
    def from_json(cls, body: Any) -> Caveat:
        return cls(_mask_map_json(body))


@register
@dataclass(frozen=True, slots=True)
class Vaults(_MaskMap):
    """Only these vaults, each with its own mask (``{name: mask}``)."""

    TYPE = CVAULT_BASE + 0
    NAME = "Vaults"

    def prohibits(self, access: Access) -> Refusal | None:
        if access.vault is None:
            return Refusal("the request names no vault", unspecified=True)
        allowed = None
        for name, m in self.masks:  # as dict(self.masks).get would, without building the dict
            if name == access.vault:
                allowed = m
        if allowed is None:
            names = ", ".join(repr(k) for k, _ in self.masks)
            return Refusal(f"token is limited to vaults [{names}], not {access.vault!r}")
        if not acc.is_subset(access.action, allowed):
            return action_refusal(f"vault {access.vault!r}", access.action, allowed)
        return None


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("$"):
        return name == pattern[:-1]
    return name.startswith(pattern)


@register
@dataclass(frozen=True, slots=True)
class Secrets(_MaskMap):
    """Only secrets whose names start with one of these prefixes (``{prefix: mask}``).

    A prefix ending in ``$`` is anchored: ``"db/url$"`` matches the name ``db/url``
    and nothing longer (secret names cannot contain ``$``). Attenuate-on-use relies
    on it so a narrowed token opens exactly one secret.
    """

    TYPE = CVAULT_BASE + 1
    NAME = "Secrets"

    def prohibits(self, access: Access) -> Refusal | None:
        if access.secret is None:
            return Refusal("the request names no secret", unspecified=True)
        matched, allowed = False, 0
        for pattern, m in self.masks:
            if _name_matches(pattern, access.secret):
                matched, allowed = True, allowed | m
        if not matched:
            names = ", ".join(repr(k) for k, _ in self.masks)
            return Refusal(f"token is limited to secrets starting with [{names}], not {access.secret!r}")
        if not acc.is_subset(access.action, allowed):
            return action_refusal(f"secret {access.secret!r}", access.action, allowed)
        return None


@register
@dataclass(frozen=True, slots=True)
class Operations(Caveat):
    """An allow-list of API operations (like Fly's ``Mutations``)."""

    TYPE = CVAULT_BASE + 2
    NAME = "Operations"
    names: tuple[str, ...]

    def body(self) -> Any:
        return list(self.names)

    @classmethod
    def from_body(cls, body: Any) -> Operations:
        if not isinstance(body, list) or not body:
            raise ValueError("expected a non-empty list of operation names")
        return cls(tuple(text(n) for n in body))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.operation is None:
            return Refusal("the request names no operation", unspecified=True)
        if access.operation not in self.names:
            # Names are quoted with repr: anyone can attenuate a token, so they are untrusted text.
            allowed = ", ".join(repr(n) for n in self.names)
            return Refusal(f"token allows only operations [{allowed}], not {access.operation!r}")
        return None


@register
@dataclass(frozen=True, slots=True)
class ClientCIDR(Caveat):
    """The caller's address must fall in one of these networks."""

    TYPE = CVAULT_BASE + 3
    NAME = "ClientCIDR"
    networks: tuple[str, ...]
    _parsed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)
        object.__setattr__(self, "_parsed", parsed)

    def body(self) -> Any:
        return list(self.networks)

    @classmethod
    def from_body(cls, body: Any) -> ClientCIDR:
        if not isinstance(body, list) or not body:
            raise ValueError("expected a non-empty list of networks like 10.0.0.0/8")
        return cls(tuple(text(n) for n in body))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.client_ip is None:
            return Refusal("the client address is unknown", unspecified=True)
        addr = access.client_ip
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self._parsed):
            return None
        return Refusal(f"client address {addr} is not in [{', '.join(self.networks)}]")


@register
@dataclass(frozen=True, slots=True)
class UserID(Caveat):
    """Attestation (discharges only): the authority vouches the caller is this user."""

    TYPE = CVAULT_BASE + 4
    NAME = "UserID"
    ATTESTATION = True
    id: int

    def body(self) -> Any:
        return self.id

    @classmethod
    def from_body(cls, body: Any) -> UserID:
        return cls(uint(body))

    def prohibits(self, access: Access) -> Refusal | None:
        return None


@register
@dataclass(frozen=True, slots=True)
class TokenLineage(Caveat):
    """Attestation (discharges only): the authority token used, and its ancestors, oldest last."""

    TYPE = CVAULT_BASE + 5
    NAME = "TokenLineage"
    ATTESTATION = True
    token_id: str
    ancestors: tuple[str, ...] = ()

    def body(self) -> Any:
        return [self.token_id, list(self.ancestors)]

    @classmethod
    def from_body(cls, body: Any) -> TokenLineage:
        f = struct_fields(body, 2)
        if not isinstance(f[1], list):
            raise ValueError("ancestors must be a list")
        return cls(text(f[0]), tuple(text(a) for a in f[1]))

    def to_json(self) -> Any:
        return {"token_id": self.token_id, "ancestors": list(self.ancestors)}

    @classmethod
    def from_json(cls, body: Any) -> TokenLineage:
        return cls(text(body["token_id"]), tuple(text(a) for a in body.get("ancestors", [])))

    def prohibits(self, access: Access) -> Refusal | None:
        return None


@register
@dataclass(frozen=True, slots=True)
class LoginSession(Caveat):
    """Attestation (discharges only): the login session that vouched for the caller.

    Login discharges carry it, and org discharges issued for a permission token copy
    it, so revoking the session (logging out) stops both at once (docs/revocation.md).
    """

    TYPE = CVAULT_BASE + 6
    NAME = "LoginSession"
    ATTESTATION = True
    id: int

    def body(self) -> Any:
        return self.id

    @classmethod
    def from_body(cls, body: Any) -> LoginSession:
        return cls(uint(body))

    def prohibits(self, access: Access) -> Refusal | None:
        return None


@register
@dataclass(frozen=True, slots=True)
class WorkloadIdentity(Caveat):
    """Attestation (discharges only): the workload whose platform-signed JWT obtained this discharge.

    ``issuer`` and ``subject`` are the JWT's ``iss`` and ``sub``, ``binding_id`` the authority's
    workload binding that accepted it, ``label`` a short readable name
    (``kubernetes: ns/prod sa/api``, ``github: acme/api@refs/heads/main``). Type ``CVAULT_BASE + 9``
    stays reserved for workload identity too (docs/workload-identity.md).
    """

    TYPE = CVAULT_BASE + 8
    NAME = "WorkloadIdentity"
    ATTESTATION = True
    issuer: str
    subject: str
    binding_id: str
    label: str

    def body(self) -> Any:
        return [self.issuer, self.subject, self.binding_id, self.label]

    @classmethod
    def from_body(cls, body: Any) -> WorkloadIdentity:
        f = struct_fields(body, 4)
        return cls(text(f[0]), text(f[1]), text(f[2]), text(f[3]))

    def to_json(self) -> Any:
        return {"issuer": self.issuer, "subject": self.subject, "binding_id": self.binding_id, "label": self.label}

    @classmethod
    def from_json(cls, body: Any) -> WorkloadIdentity:
        return cls(text(body["issuer"]), text(body["subject"]), text(body["binding_id"]), text(body["label"]))

    def prohibits(self, access: Access) -> Refusal | None:
        return None


@register
@dataclass(frozen=True, slots=True)
class OrgSlug(Caveat):
    """Attestation (org discharges only): the slug the authority knows the discharge's organization by.

    The store records it at enrolment instead of a slug the enrolling client chose, so no org can
    enrol under another org's slug (docs/vault-compat.md, "Mounts").
    """

    TYPE = CVAULT_BASE + 7
    NAME = "OrgSlug"
    ATTESTATION = True
    slug: str

    def body(self) -> Any:
        return self.slug

    @classmethod
    def from_body(cls, body: Any) -> OrgSlug:
        return cls(text(body))

    def prohibits(self, access: Access) -> Refusal | None:
        return None
