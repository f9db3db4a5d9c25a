"""The caveat types cvault knows.

Numbers below 2**48 are ``superfly/macaroon``'s and mean what they mean there,
with the same bodies; they are defined here. cvault's own types live in the
user-defined range and are defined in :mod:`vault.macaroon.cvault_caveats`,
re-exported here so every caveat type can be imported from this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import access as acc
from .access import Access
from .caveat import Caveat, Refusal, from_flat, from_json, register, to_flat
from .cvault_caveats import (
    CVAULT_BASE,
    ClientCIDR,
    LoginSession,
    Operations,
    OrgSlug,
    Secrets,
    TokenLineage,
    UserID,
    Vaults,
)
from .fields import action_refusal, ago, binary, int64, mask, struct_fields, text, timestamp, uint

__all__ = [
    "CVAULT_BASE",
    "Action",
    "BindToParentToken",
    "ClientCIDR",
    "ConfineOrganization",
    "ConfineUser",
    "IfPresent",
    "LoginSession",
    "MaxValidity",
    "Operations",
    "OrgSlug",
    "Organization",
    "Secrets",
    "ThirdParty",
    "TokenLineage",
    "UserID",
    "ValidityWindow",
    "Vaults",
]


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
        f = struct_fields(body, 2)
        return cls(uint(f[0]), uint(f[1], 16))

    def to_json(self) -> Any:
        return {"id": self.id, "mask": acc.mask_to_string(self.mask)}

    @classmethod
    def from_json(cls, body: Any) -> Organization:
        return cls(uint(body["id"]), mask(body["mask"]))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.org_id is None:
            return Refusal("the request names no organization", unspecified=True)
        if access.org_id != self.id:
            return Refusal(f"token is for organization {self.id}, not {access.org_id}")
        if not acc.is_subset(access.action, self.mask):
            return action_refusal(f"organization {self.id}", access.action, self.mask)
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
        f = struct_fields(body, 2)
        return cls(int64(f[0]), int64(f[1]))

    def to_json(self) -> Any:
        return {"not_before": self.not_before, "not_after": self.not_after}

    @classmethod
    def from_json(cls, body: Any) -> ValidityWindow:
        return cls(int64(body["not_before"]), int64(body["not_after"]))

    def prohibits(self, access: Access) -> Refusal | None:
        if access.now > self.not_after:
            since = ago(access.now - self.not_after)
            return Refusal(f"token expired at {timestamp(self.not_after)} ({since} ago)")
        if access.now < self.not_before:
            return Refusal(f"token is not valid before {timestamp(self.not_before)}")
        return None


@dataclass(frozen=True, slots=True)
class _IDCaveat(Caveat):
    id: int

    def body(self) -> Any:
        return [self.id]

    @classmethod
    def from_body(cls, body: Any) -> Caveat:
        return cls(uint(struct_fields(body, 1)[0]))

    def to_json(self) -> Any:
        return {"id": self.id}

    @classmethod
    def from_json(cls, body: Any) -> Caveat:
        return cls(uint(body["id"]))


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
        f = struct_fields(body, 3)
        return cls(text(f[0]), binary(f[1]), binary(f[2]))

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
        return cls(binary(body))

    def to_json(self) -> Any:
        return self.binding_id.hex()

    @classmethod
    def from_json(cls, body: Any) -> BindToParentToken:
        return cls(bytes.fromhex(text(body)))

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
        f = struct_fields(body, 2)
        return cls(tuple(from_flat(f[0])), uint(f[1], 16))

    def to_json(self) -> Any:
        return {"ifs": [c.describe() for c in self.ifs], "else": acc.mask_to_string(self.else_mask)}

    @classmethod
    def from_json(cls, body: Any) -> IfPresent:
        return cls(tuple(from_json(body["ifs"])), mask(body["else"]))

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
            return action_refusal("IfPresent else branch", access.action, self.else_mask)
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
        return cls(uint(body))

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
        return cls(uint(body, 16))

    def to_json(self) -> Any:
        return acc.mask_to_string(self.mask)

    @classmethod
    def from_json(cls, body: Any) -> Action:
        return cls(mask(body))

    def prohibits(self, access: Access) -> Refusal | None:
        if not acc.is_subset(access.action, self.mask):
            return action_refusal("Action caveat", access.action, self.mask)
        return None
