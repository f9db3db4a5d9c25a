"""What the store's services need from the outside world, and what each method raises.

The storage layer implements these (``vault/storage/store_*.py``); the app
factory wires concrete objects in; tests may use the real ones against a real
database. Every method may also raise :class:`~vault.errors.Unavailable` when
the database cannot be reached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from vault.audit.event import AuditEvent
from vault.types import BeforeCommit, Clock

from .models import (
    IdempotencyClaim,
    KVConfig,
    MetadataUpdate,
    OrgRecord,
    RootKey,
    SecretLookup,
    SecretMetadata,
    SecretSummary,
    StoredVersion,
    TokenRecord,
    VaultInfo,
    WriteOutcome,
    WriteRules,
)
from .rotation_models import RotationPolicy, RotationStatus

__all__ = [
    "AuditSink",
    "BeforeCommit",
    "Clock",
    "KVRepository",
    "KeyDirectory",
    "OrgDirectory",
    "OrgRepository",
    "RevocationList",
    "RotationRepository",
    "Sealer",
    "SecretRepository",
]

Sealer = Callable[[int, int], bytes]
"""``seal(version, data_key_id) -> ciphertext``: encrypts the value for the row being written."""


class AuditSink(Protocol):
    async def record(self, *events: AuditEvent) -> None:
        """Durably append the events; raises :class:`~vault.errors.Unavailable` when they are not committed."""

    async def record_in(self, transaction: object, *events: AuditEvent) -> None:
        """Append the events inside ``transaction`` (a :class:`BeforeCommit`'s): they commit or roll back with it."""

    def submit(self, *events: AuditEvent) -> asyncio.Future[None]:
        """Queue the events without waiting: the future is done once they are committed, and fails
        with :class:`~vault.errors.Unavailable` otherwise (raised at once if the log is not running)."""


class RevocationList(Protocol):
    def is_revoked(self, token_id: str) -> bool:
        """In memory, no I/O: has this store token id been revoked (seen within about a second)?"""

    async def revoke(self, token_ids: Iterable[str]) -> list[str]:
        """Record revocations durably and tell every store node; returns the ids newly revoked."""


class KeyDirectory(Protocol):
    """Signing keys by key id, cached in memory after first use."""

    def cached(self, key_id: int) -> RootKey | None:
        """The key if it is in memory (no I/O)."""

    async def load(self, key_id: int) -> RootKey | None:
        """The key, reading the database on a miss; ``None`` if there is no such signing key."""

    async def root_key_for(self, org_id: int) -> RootKey | None:
        """The org's current root key, or ``None`` if the org is not enrolled."""

    def remember(self, root: RootKey) -> None:
        """Cache a root key this node just created."""


class OrgDirectory(Protocol):
    """Every enrolled org's slug, in memory, for naming Vault mounts (``<org slug>/<vault>``)."""

    def cached_orgs_with_slug(self, slug: str) -> tuple[int, ...] | None:
        """The same as :meth:`orgs_with_slug` if the slug is in memory, without waiting; else ``None``."""

    async def orgs_with_slug(self, slug: str) -> tuple[int, ...]:
        """The ids of the orgs whose enrolment recorded ``slug`` (empty if none did)."""

    async def slug_of(self, org_id: int) -> str | None:
        """The slug an org's mounts are named by (``None`` if it is not enrolled)."""

    def cached_slug_of(self, org_id: int) -> str | None:
        """The same as :meth:`slug_of` if the org is in memory, without waiting; else ``None``."""


class OrgRepository(Protocol):
    async def enroll(
        self, org_id: int, slug: str, token: Callable[[RootKey], TokenRecord], before_commit: BeforeCommit[TokenRecord]
    ) -> tuple[OrgRecord, RootKey]:
        """Create the org with a fresh root key (or update its slug) and record the root token.

        ``token(root_key)`` mints the token (its id is the record's id).
        """

    async def record_token(self, record: TokenRecord, before_commit: BeforeCommit[TokenRecord]) -> None: ...

    async def revoke_token(self, org_id: int, token_id: str, before_commit: BeforeCommit[list[str]]) -> list[str]:
        """Mark the token and every token minted from it revoked; return their ids. NotFound if unknown."""


class SecretRepository(Protocol):
    async def create_vault(self, org_id: int, name: str, before_commit: BeforeCommit[VaultInfo]) -> VaultInfo:
        """Conflict if it exists."""

    async def list_vaults(self, org_id: int) -> list[VaultInfo]: ...

    async def delete_vault(self, org_id: int, name: str, before_commit: BeforeCommit[str]) -> None:
        """NotFound if missing, Conflict if it still holds secrets."""

    async def list_secrets(
        self, org_id: int, vault: str, *, prefix: str, after: str | None, limit: int
    ) -> list[SecretSummary]:
        """Names in order, starting after ``after``. NotFound if the vault is missing."""

    async def write(
        self,
        org_id: int,
        vault: str,
        name: str,
        *,
        data_key: bytes,
        seal: Sealer,
        cas: int | None,
        pending: bool,
        max_versions: int | None,
        may_create: bool,
        token_id: str,
        before_commit: BeforeCommit[WriteOutcome],
        idempotency: IdempotencyClaim | None = None,
    ) -> WriteOutcome:
        """Add a version. Conflict on a CAS mismatch; Unauthorized if new and not ``may_create``.

        With ``idempotency``, the key is claimed and the outcome recorded in the write's
        transaction; a key an earlier write holds returns that write's outcome
        (``replayed``, nothing written; ``before_commit`` still runs, to audit the replay),
        and Unprocessable if that write's request hash differs.
        """

    async def read_lookups(self, lookups: Sequence[SecretLookup]) -> list[StoredVersion | None]:
        """Each lookup's version row with its wrapped data key, in one round trip; ``None`` where there is none."""

    async def read_many(
        self, org_id: int, vault: str, *, names: Sequence[str] | None, prefix: str, limit: int
    ) -> list[StoredVersion]:
        """The current versions of many secrets in one round trip (any state; the caller filters)."""

    async def current_versions(
        self, org_id: int, vault: str, *, names: Sequence[str] | None, prefix: str, limit: int
    ) -> dict[str, int]:
        """Name -> current version of the secrets whose current version is readable (active); no ciphertext.
        NotFound if the vault is missing."""

    async def metadata(self, org_id: int, vault: str, name: str) -> SecretMetadata: ...

    async def change_versions(
        self,
        org_id: int,
        vault: str,
        name: str,
        versions: Sequence[int],
        change: str,
        before_commit: BeforeCommit[list[int]],
    ) -> list[int]:
        """``change`` is delete, undelete or destroy; returns the versions it changed."""

    async def destroy_secret(self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[str]) -> None:
        """The secret, every version and every data key, gone."""

    async def promote(
        self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[tuple[int, int | None]]
    ) -> tuple[int, int | None]:
        """Pending becomes current, current becomes previous; Conflict if nothing is pending."""


class KVRepository(Protocol):
    """The Vault KV version 2 API's own records (secret metadata, mount configuration). NotFound for a
    missing vault."""

    async def config(self, org_id: int, vault: str) -> KVConfig: ...

    async def set_config(
        self, org_id: int, vault: str, update: KVConfig | MetadataUpdate, before_commit: BeforeCommit[KVConfig]
    ) -> KVConfig:
        """Each field of ``update`` that is not ``None`` replaces the vault's; returns the result."""

    async def write_rules(self, org_id: int, vault: str, name: str) -> WriteRules:
        """What a write to the secret must respect: ``cas`` required, a new secret's ``max_versions``."""

    async def update_metadata(
        self,
        org_id: int,
        vault: str,
        name: str,
        update: MetadataUpdate,
        *,
        may_create: bool,
        replace_custom: bool,
        before_commit: BeforeCommit[bool],
    ) -> bool:
        """Write the metadata fields given, creating the secret (no versions yet) if needed; True if created.
        Unauthorized if new and not ``may_create``."""

    async def delete_current(
        self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[list[int]]
    ) -> list[int]:
        """Soft-delete the current version; NotFound if the secret has none."""


class RotationRepository(Protocol):
    """Rotation policies and the state of each rotation (``store.rotation_policies``; docs/rotation.md).

    Every method naming a secret raises NotFound when the secret (or, but for :meth:`set_policy`, its policy)
    does not exist. The step methods raise Conflict when ``holder`` does not hold a live lease on the rotation
    (another rotator took it over) or when ``pending_version`` is not the rotation's pending version: a rotator
    that lost its lease can change nothing.
    """

    async def set_policy(
        self,
        org_id: int,
        vault: str,
        name: str,
        policy: RotationPolicy,
        next_due: dt.datetime,
        connection: str | None,
        before_commit: BeforeCommit[RotationStatus],
    ) -> RotationStatus:
        """Create or replace the secret's policy (enabled, due at ``next_due``, ``connection`` pinned); a rotation
        in progress stays."""

    async def status(self, org_id: int, vault: str, name: str) -> RotationStatus: ...

    async def statuses(self, org_id: int, vault: str) -> list[RotationStatus]:
        """Every policy of the vault, by secret name."""

    async def update(
        self,
        org_id: int,
        vault: str,
        name: str,
        *,
        enabled: bool | None,
        due: dt.datetime | None,
        before_commit: BeforeCommit[RotationStatus],
    ) -> RotationStatus:
        """Enable or disable the policy, or make it due at ``due``."""

    async def due(self, org_id: int, vault: str, now: dt.datetime, limit: int) -> list[str]:
        """Names of the vault's enabled rotations due at ``now`` and not leased (soonest first)."""

    async def claim(
        self,
        org_id: int,
        vault: str,
        names: Sequence[str],
        holder: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
    ) -> list[RotationStatus]:
        """Lease up to ``limit`` of ``names`` that are still due and free (rows another claim holds are skipped)."""

    async def record_created(
        self,
        transaction: object,
        org_id: int,
        vault: str,
        name: str,
        holder: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        version: int,
    ) -> None:
        """In the pending write's transaction: the rotation's pending version is ``version`` (step ``created``)."""

    async def advance(
        self,
        org_id: int,
        vault: str,
        name: str,
        holder: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        step: str,
        pending_version: int,
        before_commit: BeforeCommit[RotationStatus],
    ) -> RotationStatus:
        """Record ``step`` (``set`` or ``test``) done for ``pending_version``, which must still be pending."""

    async def record_promoted(
        self, transaction: object, org_id: int, vault: str, name: str, holder: str, now: dt.datetime, version: int
    ) -> None:
        """In the promotion's transaction: the rotation succeeded; the next is due one period from ``now``."""

    async def record_failure(
        self,
        org_id: int,
        vault: str,
        name: str,
        holder: str,
        now: dt.datetime,
        reason: str,
        before_commit: BeforeCommit[RotationStatus],
    ) -> RotationStatus:
        """The attempt failed: release the lease, keep the step reached, retry after a backoff."""
