"""The Vault-compatible API's request and reply bodies and parameters (docs/vault-compat.md), as msgspec models.

They are the server's checks and the OpenAPI document's schemas at once (:mod:`vault.web.contract`). Where Vault
takes a field in several spellings (``max_versions`` as a number or as the decimal text the Vault CLI sends,
``versions`` as ``[1, 2]``, ``["1,2"]`` or ``"1,2"``), the model lists them; each constraint is no wider than what
the parser behind it (:mod:`vault.names`, :mod:`vault.store.kv_fields`) accepts, so what the schema allows is
accepted, and decoding with the model refuses everything else before that parser runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from msgspec import UNSET, Meta, UnsetType, field

from vault.names import MAX_SECRET_NAME
from vault.store.kv_fields import MAX_CUSTOM_KEY_CHARS, MAX_CUSTOM_KEYS, MAX_CUSTOM_VALUE_CHARS
from vault.store.mounts import RESERVED_VAULT_NAMES

from ..models import Model, NonNegative64

__all__ = [
    "MERGE_PATCH",
    "Capabilities",
    "CapabilitiesRequest",
    "ConfigWrite",
    "Envelope",
    "Health",
    "HealthQuery",
    "KVConfigReply",
    "KVList",
    "KVPatch",
    "KVRead",
    "KVWrite",
    "Leader",
    "LoginAuth",
    "LoginEnvelope",
    "LoginPath",
    "LoginRequest",
    "LoginRole",
    "MetadataPatch",
    "MetadataQuery",
    "MetadataWrite",
    "MountEntry",
    "Mounts",
    "OwnEntryPath",
    "OwnMountPath",
    "OwnSecretPath",
    "PreflightPath",
    "ReadQuery",
    "RenewRequest",
    "SealStatus",
    "SecretMetadata",
    "SlugEntryPath",
    "SlugMountPath",
    "SlugSecretPath",
    "Subkeys",
    "SubkeysQuery",
    "TokenLookup",
    "UIMount",
    "UIMounts",
    "VaultErrors",
    "VersionMetadata",
    "VersionState",
    "Versions",
    "WriteOptions",
]

MERGE_PATCH: Final = "application/merge-patch+json"
MAX_VERSION: Final = 2**31 - 1  # secret_versions.version is a PostgreSQL integer
MAX_CAPABILITY_PATHS: Final = 64
MAX_PATH_CHARS: Final = 1024
MAX_JWT_CHARS: Final = 16 * 1024

T = TypeVar("T")

# -- parameters -----------------------------------------------------------------------------------------------------

Slug = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="the org's slug, recorded at enrolment")]
VaultName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="a vault of that org")]
# A one-segment mount is a vault of the token's own org; the Vault API's own top-level paths are not vault names.
OwnVaultName = Annotated[
    str,
    Meta(
        pattern=r"^(?!(?:" + "|".join(sorted(RESERVED_VAULT_NAMES)) + r")$)[a-z0-9][a-z0-9_-]{0,62}$",
        description="a vault of the token's own org (not " + ", ".join(sorted(RESERVED_VAULT_NAMES)) + ")",
    ),
]
# A name of several segments spans them (``.../data/db/creds``). OpenAPI cannot say so (a path parameter is one
# segment), so the document shows one segment's pattern; the route takes the characters, and the handler checks
# the whole name (vault.names.check_secret_name: no leading, trailing or doubled '/').
_SEGMENT = {"pattern": r"^[A-Za-z0-9._-]+$"}
SecretName = Annotated[
    str,
    Meta(
        max_length=MAX_SECRET_NAME,
        description="the secret's name; one of several segments spans them: db/creds",
        extra_json_schema=_SEGMENT,
    ),
]
# Under metadata/ a path is a secret's name (GET: its metadata) or a folder to list (?list=true, LIST).
EntryPath = Annotated[
    str,
    Meta(
        max_length=MAX_SECRET_NAME,
        description="a secret's name, or with ?list=true (or the LIST method) a folder to list: db/ lists db/*",
        extra_json_schema=_SEGMENT,
    ),
]
# No upper bound: a version beyond any stored one is a 404, as at Vault (and at the native read).
Version = Annotated[int, Meta(ge=0, description="a version; 0 (the default) is the latest; one never stored: 404")]


class SlugMountPath(Model):
    slug: Slug
    vault: VaultName


class OwnMountPath(Model):
    vault: OwnVaultName


class SlugSecretPath(SlugMountPath):
    path: SecretName


class OwnSecretPath(OwnMountPath):
    path: SecretName


class SlugEntryPath(SlugMountPath):
    path: EntryPath


class OwnEntryPath(OwnMountPath):
    path: EntryPath


class ReadQuery(Model):
    version: Version = 0


class SubkeysQuery(Model):
    version: Version = 0
    depth: Annotated[int, Meta(ge=0, le=MAX_VERSION, description="levels of keys; 0 (the default) all")] = 0


class MetadataQuery(Model):
    list: Annotated[bool, Meta(description="list the folder's keys instead (the LIST method does the same)")] = False


class HealthQuery(Model):
    # Only success codes for a serving store: a 5xx would read as a failure of the store itself.
    activecode: Annotated[str, Meta(pattern=r"^2[0-9]{2}$", description="status when serving (200)")] = "200"
    sealedcode: Annotated[
        str, Meta(pattern=r"^(?:2[0-9]{2}|5[0-9]{2})$", description="status when sealed: not ready (503)")
    ] = "503"


class PreflightPath(Model):
    path: Annotated[str, Meta(min_length=1, description="a path under a mount: <slug>/<vault>/... or <vault>/...")]


class LoginPath(Model):
    method: Literal["jwt", "kubernetes"]


# -- request bodies -------------------------------------------------------------------------------------------------


class WriteOptions(Model):
    cas: NonNegative64 | None = None


class KVWrite(Model):
    """``POST|PUT <mount>/data/<path>``: the new version's object; ``options.cas`` the version it replaces."""

    data: dict[str, Any]
    options: WriteOptions | None = None


class KVPatch(Model):
    """``PATCH <mount>/data/<path>``: an RFC 7386 merge patch of the current version (``null`` removes a key)."""

    data: dict[str, Any]
    options: WriteOptions | None = None


# A version number as text: no sign, no leading zero, below 2**31 (vault.names.check_versions reads the rest).
_NUMBER = r"[1-9][0-9]{0,8}"
VersionText = Annotated[
    str,
    Meta(pattern=rf"^ *{_NUMBER} *(?:, *{_NUMBER} *)*$", max_length=11_000, description='"1" or "1,2"'),
]
VersionNumber = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
VersionRef = VersionNumber | VersionText


class Versions(Model):
    """``POST|PUT <mount>/delete|undelete|destroy/<path>``: which versions (at most 1000 in all)."""

    versions: Annotated[list[VersionRef], Meta(min_length=1, max_length=1000)] | VersionRef


MaxVersions = (
    Annotated[int, Meta(ge=0, le=1000)]
    | Annotated[str, Meta(pattern=r"^(?:[0-9]{1,3}|0[0-9]{3}|1000)$", description="as decimal text")]
    | None
)
Flag = bool | Literal["true", "false"] | None
# Seconds, or a Go duration of h, m and s: 0 (never) up to a few decades, within vault.store.kv_fields' bound.
Duration = (
    Annotated[int, Meta(ge=0, le=999_999_999)]
    | Annotated[
        str,
        Meta(
            pattern=r"^(?:[0-9]{1,9}|(?=[0-9])(?:[0-9]{1,5}h)?(?:[0-9]{1,6}m)?(?:[0-9]{1,9}s)?)$",
            description='seconds, or "1h30m", "90s", "0s"',
        ),
    ]
    | None
)
CustomKey = Annotated[str, Meta(min_length=1, max_length=MAX_CUSTOM_KEY_CHARS, pattern=r"^[^\x00]*$")]
CustomValue = Annotated[str, Meta(max_length=MAX_CUSTOM_VALUE_CHARS, pattern=r"^[^\x00]*$")]


class MetadataWrite(Model):
    """``POST|PUT <mount>/metadata/<path>``: the fields given replace the stored ones (``max_versions`` 0 keeps
    the current one)."""

    max_versions: MaxVersions = None
    cas_required: Flag = None
    delete_version_after: Duration = None
    custom_metadata: Annotated[dict[CustomKey, CustomValue], Meta(max_length=MAX_CUSTOM_KEYS)] | None = None


class MetadataPatch(Model):
    """``PATCH <mount>/metadata/<path>``: as a write, but ``custom_metadata`` is merged (``null`` removes a key)."""

    max_versions: MaxVersions = None
    cas_required: Flag = None
    delete_version_after: Duration = None
    custom_metadata: Annotated[dict[CustomKey, CustomValue | None], Meta(max_length=MAX_CUSTOM_KEYS)] | None = None


class ConfigWrite(Model):
    """``POST|PUT <mount>/config``: the mount's KV settings (needs ``C``)."""

    max_versions: MaxVersions = None
    cas_required: Flag = None
    delete_version_after: Duration = None


CapabilityPath = Annotated[str, Meta(min_length=1, max_length=MAX_PATH_CHARS)]


CapabilityPaths = Annotated[list[CapabilityPath], Meta(min_length=1, max_length=MAX_CAPABILITY_PATHS)] | CapabilityPath


class _CapabilitiesRequest(Model):
    paths: CapabilityPaths | UnsetType = UNSET
    path: CapabilityPaths | UnsetType = UNSET  # what the Vault CLI sends (`paths` wins when both are given)


CapabilitiesRequest = Annotated[
    _CapabilitiesRequest, Meta(extra_json_schema={"anyOf": [{"required": ["paths"]}, {"required": ["path"]}]})
]


class RenewRequest(Model):
    """Vault's ``increment``; a bundle cannot be renewed whatever it says."""

    increment: int | str | None = None


class LoginRole(Model):
    """What a refused login's audit event records of its body: the role it names, if any."""

    role: Any = None


class LoginRequest(Model):
    role: Annotated[
        str,
        Meta(
            pattern=r"^[a-z0-9][a-z0-9-]{1,62}/[a-z0-9][a-z0-9_.-]{0,62}$",
            description="<org slug>/<workload binding name>",
        ),
    ]
    # A compact JWS: it is sent on as a header, where a control or non-ASCII character could not go.
    jwt: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$", max_length=MAX_JWT_CHARS)]


# -- replies --------------------------------------------------------------------------------------------------------


class VaultErrors(Model):
    """Every error under ``/vault``: 403 ``["permission denied"]``, 404 ``[]``, else the message."""

    errors: list[str]


class Envelope(Model, Generic[T], kw_only=True):
    """Vault's reply envelope around ``data``."""

    request_id: str
    lease_id: str = ""
    renewable: bool = False
    lease_duration: int = 0
    data: T
    wrap_info: None = None
    warnings: None = None
    auth: None = None


class VersionMetadata(Model, kw_only=True):
    created_time: str
    custom_metadata: None = None
    deletion_time: str
    destroyed: bool
    version: int


class KVRead(Model):
    """A version's object (``null`` for a deleted or destroyed one, with its 404) and metadata."""

    data: dict[str, Any] | None
    metadata: VersionMetadata


class Subkeys(Model):
    subkeys: dict[str, Any]
    metadata: VersionMetadata


class KVList(Model):
    keys: list[str]


class VersionState(Model):
    created_time: str
    deletion_time: str
    destroyed: bool


class SecretMetadata(Model):
    cas_required: bool
    created_time: str
    current_version: int
    custom_metadata: dict[str, str] | None
    delete_version_after: str
    max_versions: int
    oldest_version: int
    updated_time: str
    versions: dict[str, VersionState]


class KVConfigReply(Model):
    cas_required: bool
    delete_version_after: str
    max_versions: int


class Health(Model):
    initialized: bool
    sealed: bool
    standby: bool
    performance_standby: bool
    replication_performance_mode: str
    replication_dr_mode: str
    server_time_utc: int
    version: str
    cluster_name: str
    cluster_id: str


class SealStatus(Model):
    type: str
    initialized: bool
    sealed: bool
    t: int
    n: int
    progress: int
    nonce: str
    version: str
    build_date: str
    migration: bool
    cluster_name: str
    cluster_id: str
    recovery_seal: bool
    storage_type: str


class Leader(Model):
    ha_enabled: bool
    is_self: bool
    active_time: str
    leader_address: str
    leader_cluster_address: str
    performance_standby: bool
    performance_standby_last_remote_wal: int


class MountConfig(Model):
    default_lease_ttl: int = 0
    max_lease_ttl: int = 0
    force_no_cache: bool = False


class MountOptions(Model):
    version: str = "2"


class MountEntry(Model, kw_only=True):
    type: str = "kv"
    description: str
    accessor: str
    options: MountOptions = field(default_factory=MountOptions)
    config: MountConfig = field(default_factory=MountConfig)
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False
    uuid: str = ""


class UIMount(MountEntry, kw_only=True):
    """The preflight's answer: the mount at the start of the path asked about."""

    path: str


class UIMountTable(Model):
    secret: dict[str, MountEntry]
    auth: dict[str, Any]


UIMounts = Envelope[UIMountTable]


class Mounts(Envelope[dict[str, MountEntry]]):
    """``sys/mounts``: the envelope, and (as Vault) ``data``'s entries repeated at the top level, ``"<mount>/"``."""


class TokenLookup(Model):
    accessor: str
    creation_time: int
    creation_ttl: int
    display_name: str
    entity_id: str
    expire_time: str | None
    explicit_max_ttl: int
    id: str
    issue_time: str | None
    meta: dict[str, str]
    num_uses: int
    orphan: bool
    path: str
    policies: list[str]
    renewable: bool
    ttl: int
    type: str


class Capabilities(Envelope[dict[str, list[str]]]):
    """``sys/capabilities-self``: for each path asked, Vault's capability names; ``capabilities`` all of them.
    As Vault, ``data``'s entries are repeated at the top level."""


class LoginAuth(Model):
    client_token: str
    accessor: str
    policies: list[str]
    token_policies: list[str]
    metadata: dict[str, str]
    lease_duration: int
    renewable: bool
    entity_id: str
    token_type: str
    orphan: bool
    num_uses: int


class LoginEnvelope(Model, kw_only=True):
    request_id: str
    lease_id: str = ""
    renewable: bool = False
    lease_duration: int = 0
    data: None = None
    wrap_info: None = None
    warnings: None = None
    auth: LoginAuth
