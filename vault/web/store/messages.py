"""The store's native request and reply bodies (docs/api.md), and its path and query parameters, as msgspec models.

Each constraint is the server's check and the OpenAPI document's schema at once (:mod:`vault.web.contract`): the
name patterns are :mod:`vault.names`'s (the handlers still call its ``check_*`` functions after decoding, since a
JSON Schema ``$`` does not let a trailing newline through and Python's does), the bounds the services'.
Replies keep the field names, order and formats the client reads (``vault.client``): times are RFC 3339 in UTC
with ``Z`` (msgspec writes an aware UTC datetime that way; the database hands out only those).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from msgspec import Meta

from vault.names import MAX_SECRET_NAME
from vault.store.rotation import MAX_CLAIM, MAX_LEASE

from ..models import MAX_INT64, Model, NonNegative64, Text

__all__ = [
    "DEFAULT_LEASE",
    "MAX_TTL",
    "MAX_VERSION",
    "UNIX_SECONDS",
    "UUID_TEXT",
    "AuditQuery",
    "AuditReply",
    "BatchReply",
    "ChainCheck",
    "Challenge",
    "Changed",
    "ClaimBody",
    "ClaimReply",
    "ClaimsReply",
    "CommandPolicy",
    "CreateStep",
    "CurrentVersions",
    "EnrollBody",
    "KeySet",
    "ListQuery",
    "LogCheck",
    "MetadataReply",
    "MintBody",
    "NamesOrPrefix",
    "OrgPath",
    "PolicyBody",
    "PostgresPolicy",
    "PromoteStep",
    "Promoted",
    "PublicKey",
    "PublicKeys",
    "ReadQuery",
    "Revoked",
    "RotationReply",
    "RotationsReply",
    "SecretPath",
    "SecretRead",
    "SecretSummary",
    "SecretValue",
    "SecretsReply",
    "SetStep",
    "StepDone",
    "StepFailure",
    "StepReport",
    "TestStep",
    "TokenPath",
    "TokenReply",
    "VaultBody",
    "VaultPath",
    "VaultReply",
    "VaultsReply",
    "VersionReply",
    "VersionsBody",
    "WriteBody",
    "Written",
]

MAX_TTL: Final = 10 * 365 * 86400
MAX_VERSION: Final = 2**31 - 1
DEFAULT_LEASE: Final = 60
MAX_FILTER: Final = 1000

# -- names and values (vault/names.py's rules) ------------------------------------------------

VaultName = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="1-63 characters of a-z 0-9 _ - starting with a letter or digit",
    ),
]
SecretName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
        max_length=MAX_SECRET_NAME,
        description="A-Z a-z 0-9 . _ - /, without a leading, trailing or doubled /",
    ),
]
Prefix = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._/-]*$", max_length=MAX_SECRET_NAME)]
# A token's secret caveat: a prefix, ``$`` at the end for that one name exactly.
SecretPattern = Annotated[str, Meta(pattern=rf"^[A-Za-z0-9._/-]{{0,{MAX_SECRET_NAME}}}\$?$")]
Slug = Annotated[
    str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="1-63 characters of a-z 0-9 - starting alphanumeric")
]
Permissions = Annotated[str, Meta(pattern=r"^([rwcdCa]+|\*)$", description="permission letters, e.g. rw; * for all")]
Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
Stage = Literal["current", "pending", "previous"]
# At most 64 KiB of UTF-8: a value of fewer characters but more bytes is refused with a 413.
Value = Annotated[str, Meta(description="at most 64 KiB of UTF-8 (413 beyond)")]
Holder = Annotated[str, Meta(pattern=r"^[!-~]{1,128}$", description="1 to 128 printable ASCII characters")]
Hook = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Lease = Annotated[int, Meta(ge=1, le=MAX_LEASE)]
Filter = Annotated[str, Meta(pattern=r"^[^\x00]*$", max_length=MAX_FILTER)]
UNIX_SECONDS: Final = r"[0-9]*"
# What the server reads (vault.web.rfc3339 takes every RFC 3339 date-time, Python's fromisoformat would not).
When = Annotated[
    str,
    Meta(
        description="Unix seconds or an RFC 3339 date-time (empty: no bound)",
        extra_json_schema={"anyOf": [{"pattern": f"^{UNIX_SECONDS}$"}, {"format": "date-time"}]},
    ),
]
TimeText = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
PageSize = Annotated[int, Meta(ge=1, le=MAX_INT64, description="values above 1000 are read as 1000")]
# The canonical form only: uuid.UUID alone would take braces, URNs and no hyphens too.
UUID_TEXT: Final = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
TokenId = Annotated[str, Meta(pattern=f"^{UUID_TEXT}$", description="a UUID")]

# -- path and query parameters ---------------------------------------------------------------


class OrgPath(Model):
    org: NonNegative64


class VaultPath(OrgPath):
    vault: VaultName


class SecretPath(VaultPath):
    name: SecretName


class TokenPath(OrgPath):
    id: TokenId


class ReadQuery(Model):
    version: Annotated[int, Meta(ge=1, description="a version beyond any stored one is not found")] | None = None
    stage: Stage | None = None


class ListQuery(Model):
    prefix: Prefix = ""
    limit: PageSize = 100
    cursor: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9_-]*$",
                description="next_cursor of the previous page: base64url, unpadded, of the last name listed (any "
                "such text is read as a position: the names after the text it decodes to)",
            ),
        ]
        | None
    ) = None


class AuditQuery(Model):
    vault: Filter | None = None
    secret: Filter | None = None
    actor: Filter | None = None
    token: Filter | None = None
    action: Filter | None = None
    outcome: Literal["ok", "denied", "error"] | None = None
    order: Literal["oldest", "newest"] = "oldest"
    own: Annotated[
        Literal["show", "hide"], Meta(description="hide: leave out the caller's own audit.* events (default show)")
    ] = "show"
    since: When | None = None
    until: When | None = None
    cursor: NonNegative64 | None = None
    limit: PageSize = 100


# -- request bodies ------------------------------------------------------------------------------


class EnrollBody(Model):
    slug: Annotated[Slug, Meta(description="must be the slug the org discharge attests")] | None = None


class MintBody(Model):
    mask: Permissions
    vaults: Annotated[dict[VaultName, Permissions], Meta(min_length=1, max_length=64)] | None = None
    secrets: Annotated[dict[SecretPattern, Permissions], Meta(min_length=1, max_length=64)] | None = None
    ttl: Annotated[int, Meta(ge=1, le=MAX_TTL)] | None = None


class VaultBody(Model):
    name: VaultName


class WriteBody(Model):
    value: Value
    cas: Annotated[int, Meta(ge=0, le=MAX_VERSION, description="0: the secret must not exist yet")] | None = None
    stage: Literal["pending"] | None = None
    max_versions: Annotated[int, Meta(ge=1, le=1000)] | None = None


class NamesOrPrefix(Model):
    """A batch: ``names``, or a ``prefix``, or neither (every secret of the vault); both: the names under the
    prefix."""

    names: (
        Annotated[list[SecretName], Meta(min_length=1, max_length=1000, description="with a prefix: those under it")]
        | None
    ) = None
    prefix: Prefix | None = None


class VersionsBody(Model):
    versions: Annotated[list[Version], Meta(min_length=1, max_length=1000)]


Every = Annotated[int, Meta(ge=60, le=MAX_TTL)]
PasswordLength = Annotated[int, Meta(ge=16, le=128)]


class PostgresPolicy(Model, tag_field="target", tag="postgres", kw_only=True):
    """A PostgreSQL role's password, rotated by the store's rotators with the admin secret's connection."""

    every_seconds: Every
    strategy: Literal["single", "alternating"] | None = None
    admin_secret: SecretName
    hook: None = None
    password_length: PasswordLength = 32


class CommandPolicy(Model, tag_field="target", tag="command", kw_only=True):
    """A value the rotators' hook makes and installs (docs/rotation.md)."""

    every_seconds: Every
    strategy: Literal["single"] | None = None
    hook: Hook
    admin_secret: None = None
    password_length: PasswordLength = 32


# ``target`` says which: the document lists the fields each one requires.
PolicyBody = PostgresPolicy | CommandPolicy


class ClaimBody(Model):
    holder: Holder
    limit: Annotated[int, Meta(ge=1, le=MAX_CLAIM)] = 10
    lease_seconds: Lease = DEFAULT_LEASE


PendingVersion = Annotated[Version, Meta(description="the rotation's pending version")]
StepName = Literal["create", "set", "test", "promote"]


class StepReport(Model):
    """What decides a step's body: with ``error``, it reports the step's failure (:class:`StepFailure`)."""

    error: Text | None = None


class StepFailure(Model):
    """Any step failed at the target: why. The rotation is retried after a backoff."""

    step: StepName
    holder: Holder
    error: Annotated[Text, Meta(description="the step failed at the target: why")]


class CreateStep(Model, tag_field="step", tag="create"):
    holder: Holder
    value: Annotated[Text, Meta(description="the new value, at most 64 KiB of UTF-8 (413 beyond)")]
    lease_seconds: Lease = DEFAULT_LEASE
    error: None = None


class SetStep(Model, tag_field="step", tag="set"):
    holder: Holder
    pending_version: PendingVersion
    lease_seconds: Lease = DEFAULT_LEASE
    error: None = None


class TestStep(Model, tag_field="step", tag="test"):
    holder: Holder
    pending_version: PendingVersion
    lease_seconds: Lease = DEFAULT_LEASE
    error: None = None


class PromoteStep(Model, tag_field="step", tag="promote"):
    holder: Holder
    pending_version: PendingVersion
    error: None = None


# A step done: ``step`` says which, and the document lists the fields each one requires.
StepDone = CreateStep | SetStep | TestStep | PromoteStep


# -- replies ----------------------------------------------------------------------------------


class Challenge(Model):
    challenge: str


class TokenReply(Model):
    token: str
    id: str


class Revoked(Model):
    revoked: str
    with_descendants: list[str]


class VaultReply(Model):
    name: str
    created_at: dt.datetime


class VaultsReply(Model):
    vaults: list[VaultReply]


class SecretSummary(Model):
    name: str
    current_version: int | None
    updated_at: dt.datetime


class SecretsReply(Model):
    secrets: list[SecretSummary]
    next_cursor: str | None


class Written(Model):
    name: str
    version: int
    stage: str | None


class SecretRead(Model, gc=False):
    """The hot path's reply. ``created_at`` is the text already (cached per creation time), not a datetime."""

    name: str
    version: int
    value: str
    stage: str | None
    created_at: TimeText


class SecretValue(Model, gc=False):
    version: int
    value: str


class BatchReply(Model):
    secrets: dict[str, SecretValue]
    missing: list[str]


class CurrentVersions(Model):
    versions: dict[str, int]
    missing: list[str]


class VersionReply(Model):
    version: int
    state: str
    stage: str | None
    created_at: dt.datetime
    created_by_token: str | None


class MetadataReply(Model):
    name: str
    current_version: int | None
    max_versions: int
    created_at: dt.datetime
    updated_at: dt.datetime
    versions: list[VersionReply]


class Changed(Model):
    """The requested versions that changed (one that does not exist, or was already so, is not listed)."""

    changed: list[int]


class Promoted(Model):
    name: str
    current: int
    previous: int | None


class AuditReply(Model):
    events: list[dict[str, Any]]
    next_cursor: int | None


class ChainCheck(Model):
    chain: Annotated[int, Meta(description="-1: the checkpoints' own chain")]
    ok: bool
    checked: int
    last_seq: int
    broken_seq: int | None
    message: str


class LogCheck(Model):
    ok: bool
    checked: int
    message: str
    chains: list[ChainCheck]


class PublicKey(Model):
    id: str | None
    public_key: str


class KeySet(Model):
    public_key: str
    key_id: str | None
    keys: list[PublicKey]


class PublicKeys(Model):
    location: str
    ticket: KeySet
    authority_org: KeySet


class RotationReply(Model):
    vault: str
    name: str
    target: str
    strategy: str
    every_seconds: int
    admin_secret: str | None
    hook: str | None
    password_length: int
    enabled: bool
    next_due_at: dt.datetime
    holder: str | None
    lease_expires_at: dt.datetime | None
    step: Annotated[str, Meta(description="created, set or tested: the step the rotation in progress reached")] | None
    pending_version: int | None
    attempt: int
    rotations: int
    last_success_at: dt.datetime | None
    last_rotated: int | None
    last_failure_at: dt.datetime | None
    last_failure: str | None


class ClaimReply(RotationReply):
    """A leased rotation: its status, and (postgres) the current value's public part or why it is none."""

    connection: dict[str, Any] | None
    problem: str | None


class RotationsReply(Model):
    rotations: list[RotationReply]


class ClaimsReply(Model):
    rotations: list[ClaimReply]
