"""Plain records the authority's repositories return. No behaviour, no secrets in reprs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from .roles import Role

__all__ = ["Invitation", "Member", "Membership", "Org", "Session", "TokenKind", "TokenRecord", "User"]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Org:
    id: int
    slug: str


@dataclass(frozen=True, slots=True)
class Membership:
    """One of a user's organizations, with the user's role in it."""

    org_id: int
    slug: str
    role: Role


@dataclass(frozen=True, slots=True)
class Invitation:
    """An owner's invitation of an email into an org, with a role; pending until accepted or expired."""

    id: str
    org_id: int
    slug: str
    email: str
    role: Role
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Member:
    """One member of an organization."""

    user_id: int
    email: str
    role: Role


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    user_id: int
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


class TokenKind(StrEnum):
    PERMISSION = "permission"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token the authority issued. ``id`` is the token id (UUID from its nonce)."""

    id: str
    user_id: int
    org_id: int
    kind: TokenKind
    parent: str | None
    mask: int
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None = None
    root_key_id: int | None = None  # the key that signed it (kid), so retiring a kid can count what it kills
