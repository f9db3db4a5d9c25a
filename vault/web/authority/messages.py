"""The authority's request and reply bodies and parameters (:mod:`vault.web.contract`; docs/api.md).

A constraint here is what the server checks, so the generated document says exactly what it accepts: patterns
and bounds are those of :mod:`vault.authority.roles`, :mod:`~vault.authority.accounts`,
:mod:`~vault.authority.invitations`, :mod:`~vault.authority.workloads` and :mod:`~vault.authority.workload_rules`.
Where a service's rule cannot be said as a pattern (Python's ``isprintable``), the model's pattern is the
narrower printable ASCII, which the decoder enforces before the service sees the value. The few cross-field rules
(jwks_url or jwks; a verification code goes with a password) are in the schema as ``not``/``required`` and checked
by the service or the handler. Field names and value formats are the wire format the client
(:mod:`vault.client.authority_models`), the CLI and the console read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final, Literal

from msgspec import UNSET, Meta, UnsetType

from vault.authority.accounts import MIN_PASSWORD_CHARS
from vault.authority.revocation_feed import MAX_FEED_WAIT, MAX_SINCE_LIMIT
from vault.authority.roles import Role
from vault.authority.sessions import MAX_PASSWORD_CHARS
from vault.authority.token_service import MAX_TOKEN_TTL
from vault.authority.workload_jwt import ALGORITHMS
from vault.authority.workload_rules import MAX_CLAIM_RULES
from vault.authority.workloads import MAX_BINDING_TTL

from ..models import Mask, Model, NonNegative64, Positive64, Text

__all__ = [
    "AcceptInvitation",
    "Accepted",
    "AuthorityKeys",
    "Binding",
    "BindingBody",
    "BindingList",
    "BindingPath",
    "CreateOrg",
    "CreateToken",
    "Discharge",
    "DischargeBody",
    "FeedPage",
    "FeedQuery",
    "Invitation",
    "InvitationList",
    "InvitationPath",
    "InviteBody",
    "Issued",
    "Issuer",
    "IssuerBody",
    "IssuerList",
    "IssuerPath",
    "KeysQuery",
    "Login",
    "LoginBody",
    "Me",
    "MemberList",
    "MemberPath",
    "Membership",
    "MembershipList",
    "NewOrg",
    "OrgPath",
    "RevocationPage",
    "RevocationsQuery",
    "Revoked",
    "RevokedBindings",
    "RoleBody",
    "RoleChanged",
    "Stripped",
    "TokenList",
    "TokenPath",
    "Unbound",
    "VerificationSent",
    "WorkloadDischargeBody",
]

MAX_URL: Final = 512
MAX_CODE: Final = 64
MAX_TICKET_BYTES: Final = 32 * 1024

# -- constrained values ----------------------------------------------------------------

RoleName = Annotated[Role, Meta(description="owner, operator, reader or auditor")]
Slug = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="2 to 63 of a-z, 0-9, '-'")]
# check_email's rule is Unicode-printable; an invitation (which may create an account) takes printable ASCII
# without whitespace and the address syntax characters, the part of it a pattern can say.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]"
Email = Annotated[
    str,
    Meta(
        # (?!\n): Python's $ (the decoder's) also matches before a final newline, which check_email would strip.
        pattern=rf"^{_ATOM}+@{_ATOM}*\.{_ATOM}*$(?!\n)",
        max_length=254,
        description="one bare address, like someone@example.com (printable ASCII)",
    ),
]
Password = Annotated[str, Meta(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)]
InvitationCode = Annotated[str, Meta(pattern=r"^cvi_", max_length=MAX_CODE, description="the cvi_ invitation code")]
VerificationCode = Annotated[
    str, Meta(pattern=r"^cvm_", max_length=MAX_CODE, description="the cvm_ code mailed to the invited address")
]
TokenTtl = Annotated[int, Meta(ge=1, le=MAX_TOKEN_TTL, description="seconds")]
# Standard base64 with padding (the third-party protocol's, as superfly/macaroon writes it).
_B64 = "[A-Za-z0-9+/]"
_B64_TAIL = f"(?:{_B64}{{2}}==|{_B64}{{3}}=)"
Ticket = Annotated[
    str,
    Meta(
        pattern=rf"^(?:{_B64}{{4}})*{_B64_TAIL}?$",
        min_length=4,
        # Whole groups only up to here: 32 766 bytes, under the 32 KiB cap whatever the padding.
        max_length=MAX_TICKET_BYTES // 3 * 4,
        description="the ticket, standard base64",
    ),
]
BindingId = Annotated[
    str,
    Meta(
        # 16 to 32 bytes: five groups and a tail, or six to ten groups and an optional tail.
        pattern=rf"^(?:{_B64}{{4}}){{5}}(?:(?:{_B64}{{4}}){{1,5}}{_B64_TAIL}?|{_B64_TAIL})$",
        description="binding_id of the token that holds the ticket (16 to 32 bytes), standard base64",
    ),
]
_HTTPS_URL = r"^https://[A-Za-z0-9.-]+(?::[0-9]*)?(?:/[A-Za-z0-9._~!$&'()*+,;=:%/-]*)?$"
HttpsUrl = Annotated[
    str,
    Meta(pattern=_HTTPS_URL, max_length=MAX_URL, description="https:// URL with a host, no query, fragment or user"),
]
Printable = Annotated[str, Meta(pattern=r"^[ -~]+$")]
BindingName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="1 to 63 of a-z, 0-9, '_', '.', '-', starting alphanumeric",
    ),
]
_CHECKED_CLAIMS = ["iss", "aud", "exp", "nbf", "iat", "jti"]
# The claims the authority checks itself cannot be rules (workload_rules.check_claim_rules refuses them).
ClaimName = Annotated[
    str, Meta(pattern=r"^[ -~]+$", max_length=128, extra_json_schema={"not": {"enum": _CHECKED_CLAIMS}})
]
# At least one character besides '*': "*" alone would accept every workload of the issuer.
ClaimPattern = Annotated[str, Meta(pattern=r"^[ -~]*[ -)+-~][ -~]*$", max_length=512)]
Claims = Annotated[
    dict[ClaimName, ClaimPattern],
    Meta(
        min_length=1,
        max_length=MAX_CLAIM_RULES,
        description="claim name (or a '/' path into nested claims) -> pattern ('*' matches any run); 'sub' required",
        extra_json_schema={"required": ["sub"]},
    ),
]
ScopeNames = Annotated[
    list[Annotated[str, Meta(pattern=r"^[ -~]+$", max_length=256)]], Meta(min_length=1, max_length=64)
]
Algorithm = Literal["RS256", "ES256", "EdDSA"]
assert set(ALGORITHMS) == {"RS256", "ES256", "EdDSA"}
PublicJwk = Annotated[
    dict[str, Any],
    Meta(
        description="a public JWK (no 'd', no symmetric 'k')",
        extra_json_schema={"not": {"anyOf": [{"required": ["d"]}, {"required": ["k"]}]}},
    ),
]
DateTime = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
"""A time the storage layer already wrote as RFC 3339 (the feed's and the list's, passed through as they are)."""

# -- parameters ------------------------------------------------------------------------


class OrgPath(Model):
    org: Positive64


class MemberPath(Model):
    org: Positive64
    user_id: Positive64


class InvitationPath(Model):
    id: uuid.UUID


class TokenPath(Model):
    id: uuid.UUID


class IssuerPath(Model):
    org: Positive64
    id: Annotated[str, Meta(description="the issuer's id or URL")]


class BindingPath(Model):
    org: Positive64
    binding: Annotated[str, Meta(description="the binding's name or id")]


class RevocationsQuery(Model):
    since: Annotated[NonNegative64, Meta(description="the `next` of the previous page")] = 0
    limit: Annotated[Positive64, Meta(description=f"values above {MAX_SINCE_LIMIT} are read as {MAX_SINCE_LIMIT}")] = (
        MAX_SINCE_LIMIT
    )


class FeedQuery(Model):
    cursor: NonNegative64 = 0
    wait: Annotated[int, Meta(ge=0, le=MAX_FEED_WAIT, description="seconds to wait for an event")] = 0
    limit: Annotated[int, Meta(ge=1, le=MAX_SINCE_LIMIT)] = MAX_SINCE_LIMIT


class KeysQuery(Model):
    # UNSET rather than None: a query parameter is absent or a string, never null (and the document says so).
    first_party: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9+/_-]{43}=?$",
                description="a store's X25519 public key (base64 or base64url): the org keys come endorsed for it",
            ),
        ]
        | UnsetType
    ) = UNSET
    nonce: (
        Annotated[
            str,
            Meta(
                pattern=r"^[0-9a-fA-F]{32}$",
                description="with first_party: 32 hex digits, fresh per read, that the endorsements cover",
            ),
        ]
        | UnsetType
    ) = UNSET


# -- request bodies --------------------------------------------------------------------


class LoginBody(Model):
    # Anything else is simply not an account (401); NUL is refused because the database's text cannot hold it.
    email: Text
    password: str


class CreateOrg(Model):
    slug: Slug


class InviteBody(Model):
    email: Email
    role: RoleName


class AcceptInvitation(Model):
    """With a session: ``code``. Without: ``code`` alone (a verification code is mailed), then with
    ``verification`` and the new account's ``password``."""

    code: InvitationCode
    verification: VerificationCode | None = None
    password: Password | None = None


class RoleBody(Model):
    role: RoleName


class CreateToken(Model):
    org: Positive64
    mask: Mask | None = None
    ttl: TokenTtl | None = None


class DischargeBody(Model):
    ticket: Ticket
    binding_id: BindingId


class WorkloadDischargeBody(DischargeBody):
    binding: BindingName | None = None


class Jwks(Model):
    keys: Annotated[list[PublicJwk], Meta(min_length=1, max_length=64)]


class IssuerBody(Model):
    issuer: Annotated[HttpsUrl, Meta(description="https:// URL, exactly as the JWTs' iss")]
    jwks_url: HttpsUrl | None = None
    jwks: Jwks | None = None
    algorithms: Annotated[list[Algorithm], Meta(min_length=1)] | None = None


class BindingBody(Model):
    name: BindingName
    issuer: Annotated[str, Meta(description="the issuer's URL or id")]
    claims: Claims
    mask: Mask
    audience: Annotated[str, Meta(min_length=1, max_length=MAX_URL, pattern=r"^[^\x00]*$")] | None = None
    vaults: ScopeNames | None = None
    secrets: ScopeNames | None = None
    ttl: Annotated[int, Meta(ge=1, le=MAX_BINDING_TTL)] | None = None


# The rules of two fields together, for the document (the service and the handler check them).
ISSUER_RULES: Final = {
    "not": {
        "required": ["jwks_url", "jwks"],
        "properties": {"jwks_url": {"type": "string"}, "jwks": {"type": "object"}},
    }
}
ACCEPT_RULES: Final = {
    "not": {
        "required": ["verification"],
        "properties": {"verification": {"type": "string"}},
        "not": {"required": ["password"], "properties": {"password": {"type": "string"}}},
    }
}

# -- replies ---------------------------------------------------------------------------


class Login(Model):
    session: str
    user_id: int
    expires_at: dt.datetime | None


class Membership(Model):
    id: int
    slug: str
    role: Role


class Me(Model):
    user_id: int
    email: str
    orgs: list[Membership]


class MembershipList(Model):
    orgs: list[Membership]


class NewOrg(Model):
    id: int
    slug: str


class Member(Model):
    user_id: int
    email: str
    role: Role


class MemberList(Model):
    members: list[Member]


class Invitation(Model):
    id: str
    org: int
    slug: str
    email: str
    role: Role
    expires_at: dt.datetime | None


class NewInvitation(Invitation):
    code: str


class InvitationList(Model):
    invitations: list[Invitation]


class Accepted(Model):
    org: int
    slug: str
    role: Role
    user_id: int


class VerificationSent(Model):
    status: Literal["verification_sent"]
    message: str


class RoleChanged(Model):
    user_id: int
    role: Role


class Issued(Model):
    token: str
    id: str
    expires_at: dt.datetime | None


class Stripped(Model):
    token: str
    id: str
    parent: str | None
    expires_at: dt.datetime | None


class TokenInfo(Model):
    id: str
    org: int
    kind: Literal["permission", "service"]
    mask: str
    parent: str | None
    lineage: list[str]
    created_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenList(Model):
    tokens: list[TokenInfo]


class Revoked(Model):
    revoked: list[str]


class Revocation(Model):
    token_id: str
    seq: int
    revoked_at: DateTime


class RevocationPage(Model):
    revocations: list[Revocation]
    next: int


class FeedEvent(Model, omit_defaults=True):
    """One row of the feed: ``token_id``; or ``session_id`` and ``user_id``; or ``org`` and ``user_id``."""

    seq: int
    kind: Literal["token", "session", "member_removed", "role_downgraded"]
    revoked_at: DateTime
    token_id: str | None = None
    session_id: int | None = None
    org: int | None = None
    user_id: int | None = None


class FeedPage(Model):
    events: list[FeedEvent]
    cursor: int


class Discharge(Model):
    discharge: Annotated[str, Meta(description="the bound discharge, cv1_...")]


class PublicKey(Model):
    id: Annotated[str, Meta(description="16 hex digits")]
    public_key: str


class Endorsement(Model):
    id: str
    mac: str


class DischargerKeys(Model, omit_defaults=True):
    location: str
    public_key: Annotated[str, Meta(description="the newest key (base64), what new tickets are sealed to")]
    key_id: str
    keys: list[PublicKey]
    endorsements: Annotated[list[Endorsement], Meta(description="with first_party only")] | None = None


class AuthorityKeys(Model):
    location: str
    login: DischargerKeys
    org: DischargerKeys


class Issuer(Model):
    id: str
    org: int
    issuer: str
    jwks_url: str | None
    static_keys: int
    algorithms: list[str]
    created_at: dt.datetime | None


class IssuerList(Model):
    issuers: list[Issuer]


class RevokedBindings(Model):
    revoked_bindings: list[str]


class Binding(Model):
    id: str
    org: int
    name: str
    issuer: str
    issuer_id: str
    audience: str
    claims: dict[str, str]
    mask: str
    vaults: list[str] | None
    secrets: list[str] | None
    ttl: int
    created_at: dt.datetime | None


class BindingList(Model):
    bindings: list[Binding]


class Unbound(Model):
    revoked: str
