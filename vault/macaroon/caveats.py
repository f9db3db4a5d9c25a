"""The caveat types cvault knows.

Numbers below 2**48 are ``superfly/macaroon``'s and mean what they mean there,
with the same bodies. cvault's own types start at :data:`CVAULT_BASE` in the
user-defined range; once shipped, a number is never reused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from . import access as acc
from .access import Access
from .caveat import CAV_MIN_USER_DEFINED, Caveat, Refusal, from_flat, from_json, register, to_flat

CVAULT_BASE = CAV_MIN_USER_DEFINED + 0x6376_0000  # "cv"


def _uint(value: Any, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"expected an unsigned {bits}-bit integer, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"expected a 64-bit integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError(f"expected bytes, got {type(value).__name__}")
    return value


def _mask_json(value: Any) -> int:
    if isinstance(value, str):
        return acc.mask_from_string(value)
    return _uint(value, 16)


def _fields(body: Any, n: int) -> list[Any]:
    # Struct bodies are positional arrays; fields may be appended by later
    # versions, so accept longer arrays and ignore what we do not know yet.
    if not isinstance(body, list) or len(body) < n:
        raise ValueError(f"expected an array of at least {n} fields")
    return body


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


def _action_refusal(what: str, wanted: int, allowed: int) -> Refusal:
    missing = acc.mask_to_string(wanted & ~allowed)
    return Refusal(f"{what} allows '{acc.mask_to_string(allowed)}', not '{missing}'")


@register
@dataclass(frozen=True, slots=True)
class Organization(Caveat):
    """Fly's ``Organization{id, mask}``: the token acts only in this org, only with these actions."""

    TYPE = 0
    NAME = "Organization"
    id: int
    mask: int

    def body(self) -> Any:
        return [self.id, self.mask]

    @classmethod
    def from_body(cls, body: Any) -> Organization:
        f = _fields(body, 2)
        return cls(_uint(f[0]), _uint(f[1], 16))

    def to_json(self) -> Any:
        return {"id": self.id, "mask": acc.mask_to_string(self.mask)}

    @classmethod
    def from_json(cls, body: Any) -> Organization:
        return cls(_uint(body["id"]), _mask_json(body["mask"]))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.org_id is None:
            return Refusal("the request names no organization", unspecified=True)
        if access.org_id != self.id:
            return Refusal(f"token is for organization {self.id}, not {access.org_id}")
        if not acc.is_subset(access.action, self.mask):
            return _action_refusal(f"organization {self.id}", access.action, self.mask)
        return None


@register
@dataclass(frozen=True, slots=True)
class ValidityWindow(Caveat):
    TYPE = 4
    NAME = "ValidityWindow"
    not_before: int
    not_after: int

    def body(self) -> Any:
        return [self.not_before, self.not_after]

    @classmethod
    def from_body(cls, body: Any) -> ValidityWindow:
        f = _fields(body, 2)
        return cls(_int(f[0]), _int(f[1]))

    def to_json(self) -> Any:
        return {"not_before": self.not_before, "not_after": self.not_after}

    @classmethod
    def from_json(cls, body: Any) -> ValidityWindow:
        return cls(_int(body["not_before"]), _int(body["not_after"]))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.now > self.not_after:
            ago = _ago(access.now - self.not_after)
            return Refusal(f"token expired at {_when(self.not_after)} ({ago} ago)")
        if access.now < self.not_before:
            return Refusal(f"token is not valid before {_when(self.not_before)}")
        return None


@dataclass(frozen=True, slots=True)
class _IDCaveat(Caveat):
    id: int

    def body(self) -> Any:
        return [self.id]

    @classmethod
    def from_body(cls, body: Any) -> Caveat:
        return cls(_uint(_fields(body, 1)[0]))

    def to_json(self) -> Any:
        return {"id": self.id}

    @classmethod
    def from_json(cls, body: Any) -> Caveat:
        return cls(_uint(body["id"]))


@register
@dataclass(frozen=True, slots=True)
class ConfineUser(_IDCaveat):
    """In a ticket: discharge only for this user."""

    TYPE = 8
    NAME = "ConfineUser"

    def prohibits(self, access: Access) -> Refusal | None:
        if access.user_id is None:
            return Refusal("the request names no user", unspecified=True)
        if access.user_id != self.id:
            return Refusal(f"confined to user {self.id}, not {access.user_id}")
        return None


@register
@dataclass(frozen=True, slots=True)
class ConfineOrganization(_IDCaveat):
    """In a ticket: discharge only for a member of this organization."""

    TYPE = 9
    NAME = "ConfineOrganization"

    def prohibits(self, access: Access) -> Refusal | None:
        if access.org_id is None:
            return Refusal("the request names no organization", unspecified=True)
        if access.org_id != self.id:
            return Refusal(f"confined to organization {self.id}, not {access.org_id}")
        return None


@register
@dataclass(frozen=True, slots=True)
class ThirdParty(Caveat):
    """Fly's ``3P``: needs a discharge from ``location``; checked during verification, not here."""

    TYPE = 11
    NAME = "3P"
    location: str
    verifier_key: bytes
    ticket: bytes

    def body(self) -> Any:
        return [self.location, self.verifier_key, self.ticket]

    @classmethod
    def from_body(cls, body: Any) -> ThirdParty:
        f = _fields(body, 3)
        return cls(_str(f[0]), _bytes(f[1]), _bytes(f[2]))

    def to_json(self) -> Any:
        return {"location": self.location, "ticket_bytes": len(self.ticket)}

    @classmethod
    def from_json(cls, body: Any) -> Caveat:
        raise ValueError("third-party caveats are added by their issuer, not from JSON")

    def prohibits(self, access: Access) -> Refusal | None:
        return Refusal("third-party caveats are satisfied by discharges, not by an access check")


@register
@dataclass(frozen=True, slots=True)
class BindToParentToken(Caveat):
    """In a discharge: usable only with tokens whose chain passes through this tail digest prefix."""

    TYPE = 12
    NAME = "BindToParentToken"
    binding_id: bytes

    def body(self) -> Any:
        return self.binding_id

    @classmethod
    def from_body(cls, body: Any) -> BindToParentToken:
        return cls(_bytes(body))

    def to_json(self) -> Any:
        return self.binding_id.hex()

    @classmethod
    def from_json(cls, body: Any) -> BindToParentToken:
        return cls(bytes.fromhex(_str(body)))

    def prohibits(self, access: Access) -> Refusal | None:
        return Refusal("binding caveats are checked during verification, not by an access check")


@register
@dataclass(frozen=True, slots=True)
class IfPresent(Caveat):
    """Fly's ``resset.IfPresent``: apply ``ifs`` to the resources the access names, else allow ``else_mask``."""

    TYPE = 13
    NAME = "IfPresent"
    ifs: tuple[Caveat, ...]
    else_mask: int

    def body(self) -> Any:
        return [to_flat(self.ifs), self.else_mask]

    @classmethod
    def from_body(cls, body: Any) -> IfPresent:
        f = _fields(body, 2)
        return cls(tuple(from_flat(f[0])), _uint(f[1], 16))

    def to_json(self) -> Any:
        return {"ifs": [c.describe() for c in self.ifs], "else": acc.mask_to_string(self.else_mask)}

    @classmethod
    def from_json(cls, body: Any) -> IfPresent:
        return cls(tuple(from_json(body["ifs"])), _mask_json(body["else"]))

    def prohibits(self, access: Access) -> Refusal | None:
        reasons = []
        applied = False
        for c in self.ifs:
            r = c.prohibits(access)
            if r is None:
                applied = True
            elif not r.unspecified:
                applied = True
                reasons.append(r.reason)
        if reasons:
            return Refusal("; ".join(reasons))
        if not applied and not acc.is_subset(access.action, self.else_mask):
            return _action_refusal("IfPresent else branch", access.action, self.else_mask)
        return None


@register
@dataclass(frozen=True, slots=True)
class MaxValidity(Caveat):
    """In a ticket: the discharge may be valid for at most this many seconds."""

    TYPE = 21
    NAME = "MaxValidity"
    seconds: int

    def body(self) -> Any:
        return self.seconds

    @classmethod
    def from_body(cls, body: Any) -> MaxValidity:
        return cls(_uint(body))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.discharge_expiry is None:
            return Refusal("MaxValidity only applies when issuing a discharge")
        if access.discharge_expiry - access.now > self.seconds:
            return Refusal(f"a discharge may be valid for at most {self.seconds} seconds")
        return None


@register
@dataclass(frozen=True, slots=True)
class Action(Caveat):
    """Fly's ``resset.Action``: only these actions, whatever the resource."""

    TYPE = 26
    NAME = "Action"
    mask: int

    def body(self) -> Any:
        return self.mask

    @classmethod
    def from_body(cls, body: Any) -> Action:
        return cls(_uint(body, 16))

    def to_json(self) -> Any:
        return acc.mask_to_string(self.mask)

    @classmethod
    def from_json(cls, body: Any) -> Action:
        return cls(_mask_json(body))

    def prohibits(self, access: Access) -> Refusal | None:
        if not acc.is_subset(access.action, self.mask):
            return _action_refusal("Action caveat", access.action, self.mask)
        return None


def _mask_map(body: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(body, dict) or not body:
        raise ValueError("expected a non-empty map of name -> mask")
    return tuple(sorted((_str(k), _uint(v, 16)) for k, v in body.items()))


def _mask_map_json(body: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(body, dict) or not body:
        raise ValueError('expected a non-empty object like {"prod": "r"}')
    return tuple(sorted((_str(k), _mask_json(v)) for k, v in body.items()))


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
        allowed = dict(self.masks).get(access.vault)
        if allowed is None:
            names = ", ".join(repr(k) for k, _ in self.masks)
            return Refusal(f"token is limited to vaults [{names}], not {access.vault!r}")
        if not acc.is_subset(access.action, allowed):
            return _action_refusal(f"vault {access.vault!r}", access.action, allowed)
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
        matching = [m for pattern, m in self.masks if _name_matches(pattern, access.secret)]
        if not matching:
            names = ", ".join(repr(k) for k, _ in self.masks)
            return Refusal(f"token is limited to secrets starting with [{names}], not {access.secret!r}")
        allowed = 0
        for m in matching:
            allowed |= m
        if not acc.is_subset(access.action, allowed):
            return _action_refusal(f"secret {access.secret!r}", access.action, allowed)
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
        return cls(tuple(_str(n) for n in body))

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
        return cls(tuple(_str(n) for n in body))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.client_addr is None:
            return Refusal("the client address is unknown", unspecified=True)
        addr = access.client_addr
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
        return cls(_uint(body))

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
        f = _fields(body, 2)
        if not isinstance(f[1], list):
            raise ValueError("ancestors must be a list")
        return cls(_str(f[0]), tuple(_str(a) for a in f[1]))

    def to_json(self) -> Any:
        return {"token_id": self.token_id, "ancestors": list(self.ancestors)}

    @classmethod
    def from_json(cls, body: Any) -> TokenLineage:
        return cls(_str(body["token_id"]), tuple(_str(a) for a in body.get("ancestors", [])))

    def prohibits(self, access: Access) -> Refusal | None:
        return None
