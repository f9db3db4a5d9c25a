"""What the authority's calls return: frozen, typed values built from its JSON replies (docs/api.md).

The same rules as the store's (:mod:`vault.client.models`, whose readers these
use): a reply missing a field, or with one of the wrong type, is a
:class:`~vault.errors.BadReply` where it is read; credentials (a session, a
token, an invitation code) are left out of every ``repr``. A module of its own
so that a command that never talks to the authority (``cvault run``) does not
build these classes at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import _int, _opt_str, _parse, _str

__all__ = [
    "Accepted",
    "Account",
    "AuthorityKeys",
    "DischargerKey",
    "Invitation",
    "Member",
    "Membership",
    "Organization",
    "PermissionToken",
    "Revocation",
    "Revocations",
    "RoleChanged",
    "ServiceToken",
    "Session",
    "TokenInfo",
]


@dataclass(frozen=True, slots=True)
class Session:
    """A login (``POST /v1/sessions``): the session secret, its user, when it ends."""

    session: str = field(repr=False)
    user_id: int
    expires_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Session:
        return _parse(
            "login reply",
            lambda d: cls(_str(d["session"]), _int(d["user_id"]), _opt_str(d.get("expires_at"))),
            data,
        )


@dataclass(frozen=True, slots=True)
class Membership:
    """An organization the caller belongs to (``id``, ``slug``) and their role in it."""

    id: int
    slug: str
    role: str

    @classmethod
    def from_json(cls, data: object) -> Membership:
        return _parse("organization", lambda d: cls(_int(d["id"]), _str(d["slug"]), _str(d["role"])), data)

    @classmethod
    def list_from_json(cls, data: object, key: str = "orgs") -> list[Membership]:
        return _parse("organization listing", lambda d: [cls.from_json(o) for o in d[key]], data)


@dataclass(frozen=True, slots=True)
class Account:
    """The logged-in user (``GET /v1/me``) and their organizations."""

    user_id: int
    email: str
    orgs: tuple[Membership, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Account:
        return _parse(
            "account",
            lambda d: cls(_int(d["user_id"]), _str(d["email"]), tuple(Membership.list_from_json(d))),
            data,
        )


@dataclass(frozen=True, slots=True)
class Organization:
    """An organization just created (its creator is its owner)."""

    id: int
    slug: str

    @classmethod
    def from_json(cls, data: object) -> Organization:
        return _parse("organization", lambda d: cls(_int(d["id"]), _str(d["slug"])), data)


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    email: str
    role: str

    @classmethod
    def from_json(cls, data: object) -> Member:
        return _parse("member", lambda d: cls(_int(d["user_id"]), _str(d["email"]), _str(d["role"])), data)

    @classmethod
    def list_from_json(cls, data: object) -> list[Member]:
        return _parse("member listing", lambda d: [cls.from_json(m) for m in d["members"]], data)


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation into ``org``; ``code`` only in the inviter's reply (the invitee needs it to accept)."""

    id: str
    org: int
    slug: str
    email: str
    role: str
    expires_at: str | None = None
    code: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: object) -> Invitation:
        return _parse(
            "invitation",
            lambda d: cls(
                _str(d["id"]),
                _int(d["org"]),
                _str(d["slug"]),
                _str(d["email"]),
                _str(d["role"]),
                _opt_str(d.get("expires_at")),
                _opt_str(d.get("code")),
            ),
            data,
        )

    @classmethod
    def list_from_json(cls, data: object) -> list[Invitation]:
        return _parse("invitation listing", lambda d: [cls.from_json(i) for i in d["invitations"]], data)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted invitation: ``user_id`` is now ``role`` of ``org``."""

    org: int
    slug: str
    role: str
    user_id: int

    @classmethod
    def from_json(cls, data: object) -> Accepted:
        return _parse(
            "accept reply",
            lambda d: cls(_int(d["org"]), _str(d["slug"]), _str(d["role"]), _int(d["user_id"])),
            data,
        )


@dataclass(frozen=True, slots=True)
class RoleChanged:
    user_id: int
    role: str

    @classmethod
    def from_json(cls, data: object) -> RoleChanged:
        return _parse("role reply", lambda d: cls(_int(d["user_id"]), _str(d["role"])), data)


@dataclass(frozen=True, slots=True)
class PermissionToken:
    """A permission token just minted (``POST /v1/tokens``): its login caveat needs the session's discharge."""

    token: str = field(repr=False)
    id: str
    expires_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> PermissionToken:
        return _parse(
            "token reply", lambda d: cls(_str(d["token"]), _str(d["id"]), _opt_str(d.get("expires_at"))), data
        )


@dataclass(frozen=True, slots=True)
class ServiceToken:
    """A service token stripped from the permission token ``parent``: usable alone."""

    token: str = field(repr=False)
    id: str
    parent: str | None = None
    expires_at: str | None = None
    """The end of the narrowest window the holder appended before strip (``None``: no expiry)."""

    @classmethod
    def from_json(cls, data: object) -> ServiceToken:
        return _parse(
            "strip reply",
            lambda d: cls(_str(d["token"]), _str(d["id"]), _opt_str(d.get("parent")), _opt_str(d.get("expires_at"))),
            data,
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One of the caller's permission or service tokens, as ``GET /v1/tokens`` lists it (never the token)."""

    id: str
    org: int
    kind: str
    mask: str
    parent: str | None = None
    lineage: tuple[str, ...] = ()
    created_at: str | None = None
    expires_at: str | None = None
    revoked_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> TokenInfo:
        return _parse(
            "token listing",
            lambda d: cls(
                _str(d["id"]),
                _int(d["org"]),
                _str(d["kind"]),
                _str(d["mask"]),
                _opt_str(d.get("parent")),
                tuple(_str(t) for t in d.get("lineage") or ()),
                _opt_str(d.get("created_at")),
                _opt_str(d.get("expires_at")),
                _opt_str(d.get("revoked_at")),
            ),
            data,
        )

    @classmethod
    def list_from_json(cls, data: object) -> list[TokenInfo]:
        return _parse("token listing", lambda d: [cls.from_json(t) for t in d["tokens"]], data)


@dataclass(frozen=True, slots=True)
class Revocation:
    token_id: str
    seq: int
    revoked_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Revocation:
        return _parse(
            "revocation", lambda d: cls(_str(d["token_id"]), _int(d["seq"]), _opt_str(d.get("revoked_at"))), data
        )


@dataclass(frozen=True, slots=True)
class Revocations:
    """A page of revoked token ids; ask again with ``since=next`` for the following one."""

    revocations: tuple[Revocation, ...]
    next: int

    @classmethod
    def from_json(cls, data: object) -> Revocations:
        return _parse(
            "revocation listing",
            lambda d: cls(tuple(Revocation.from_json(r) for r in d["revocations"]), _int(d["next"])),
            data,
        )


@dataclass(frozen=True, slots=True)
class DischargerKey:
    """A third party of the authority: its location and X25519 public key (base64, as served)."""

    location: str
    public_key: str

    @classmethod
    def from_json(cls, data: object) -> DischargerKey:
        return _parse("discharger key", lambda d: cls(_str(d["location"]), _str(d["public_key"])), data)


@dataclass(frozen=True, slots=True)
class AuthorityKeys:
    """``/.well-known/cvault/keys``: where the authority is and the public keys of its two dischargers."""

    location: str
    login: DischargerKey
    org: DischargerKey

    @classmethod
    def from_json(cls, data: object) -> AuthorityKeys:
        return _parse(
            "key listing",
            lambda d: cls(_str(d["location"]), DischargerKey.from_json(d["login"]), DischargerKey.from_json(d["org"])),
            data,
        )
