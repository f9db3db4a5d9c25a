"""Vaults, secrets and their versions (``store.vaults``, ``store.secrets``, ``store.secret_versions``).

Values arrive here already sealed (the caller's :data:`~vault.store.interfaces.Sealer`),
and leave sealed together with their wrapped data key; this module never sees a
plaintext. Each version's data key is a row of ``store.wrapped_keys``; destroying
a version deletes the ciphertext and that row, in the same transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

import asyncpg

from vault.errors import Conflict, NotFound, Unauthorized, Unprocessable
from vault.store.interfaces import BeforeCommit, Sealer
from vault.store.models import (
    IdempotencyClaim,
    SecretLookup,
    SecretMetadata,
    SecretSummary,
    StoredVersion,
    VaultInfo,
    VersionInfo,
    WriteOutcome,
)

from .change import change_transaction
from .keys import PgKeyRepository
from .pool import Connection, Pool, database_errors
from .store_keys import DATA_KEY_PURPOSE
from .store_reads import BatchReader

__all__ = ["PgSecretRepository", "purge_expired_keys"]

_VAULT_ID = "SELECT id FROM store.vaults WHERE org_id = $1 AND name = $2"
_CREATE_VAULT = "INSERT INTO store.vaults (org_id, name) VALUES ($1, $2) RETURNING name, created_at"
_LIST_VAULTS = "SELECT name, created_at FROM store.vaults WHERE org_id = $1 ORDER BY name"
_VAULT_HAS_SECRETS = "SELECT EXISTS (SELECT 1 FROM store.secrets WHERE vault_id = $1)"
_DELETE_VAULT = "DELETE FROM store.vaults WHERE id = $1"
_LIST_SECRETS = """
SELECT s.name, s.current_version, s.updated_at FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
WHERE va.org_id = $1 AND va.name = $2 AND starts_with(s.name, $3) AND s.name > $4
ORDER BY s.name LIMIT $5
"""

_LOCK_SECRET = (
    "SELECT id, current_version, last_version, max_versions FROM store.secrets "  # noqa: S105
    "WHERE vault_id = $1 AND name = $2 FOR UPDATE"
)
_LOCK_SECRET_BY_NAME = """
SELECT s.id, s.current_version, s.last_version, s.max_versions FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
WHERE va.org_id = $1 AND va.name = $2 AND s.name = $3 FOR UPDATE OF s
"""  # noqa: S105
_INSERT_SECRET = (
    "INSERT INTO store.secrets (vault_id, name, max_versions) VALUES ($1, $2, coalesce($3, 10)) "  # noqa: S105
    "ON CONFLICT (vault_id, name) DO NOTHING RETURNING id, current_version, last_version, max_versions"
)
_CLEAR_STAGE = "UPDATE store.secret_versions SET stage = NULL WHERE secret_id = $1 AND stage = $2"
_RESTAGE = "UPDATE store.secret_versions SET stage = $3 WHERE secret_id = $1 AND stage = $2 RETURNING version"
_INSERT_VERSION = (
    "INSERT INTO store.secret_versions (secret_id, version, stage, ciphertext, data_key_id, created_by_token) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)
_UPDATE_SECRET = (
    "UPDATE store.secrets SET last_version = $2, current_version = $3, "  # noqa: S105
    "max_versions = coalesce($4, max_versions), updated_at = now() WHERE id = $1"
)
# Keep at most max_versions versions, never dropping the current or pending one;
# the oldest go first, with their data keys.
_TRIM = """
WITH doomed AS (
    SELECT version FROM store.secret_versions
    WHERE secret_id = $1 AND stage IS DISTINCT FROM 'current' AND stage IS DISTINCT FROM 'pending'
    ORDER BY version DESC
    OFFSET greatest($2 - (SELECT count(*) FROM store.secret_versions
                          WHERE secret_id = $1 AND stage IN ('current', 'pending')), 0)
)
DELETE FROM store.secret_versions v USING doomed d
WHERE v.secret_id = $1 AND v.version = d.version
RETURNING v.version, v.data_key_id
"""
_DROP_KEYS = "DELETE FROM store.wrapped_keys WHERE id = ANY($1::bigint[])"

# Claims the key for this transaction: a concurrent write with the same key waits on the
# primary key until this one commits (then finds the reply) or rolls back (then claims it).
# An expired row is taken over as if it were not there.
_CLAIM_KEY = """
INSERT INTO store.idempotency_keys AS k (org_id, scope, key, request_hash, expires_at)
VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')
ON CONFLICT (org_id, scope, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, reply = NULL, expires_at = EXCLUDED.expires_at
    WHERE k.expires_at <= now()
RETURNING true
"""
_CLAIMED_KEY = "SELECT request_hash, reply FROM store.idempotency_keys WHERE org_id = $1 AND scope = $2 AND key = $3"
_KEY_REPLY = "UPDATE store.idempotency_keys SET reply = $4 WHERE org_id = $1 AND scope = $2 AND key = $3"
_PURGE_KEYS = """
DELETE FROM store.idempotency_keys WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM store.idempotency_keys WHERE expires_at <= now() LIMIT 1000))
"""
_PURGE_EVERY = 256  # keyed writes between two purges of expired keys (each deletes at most 1000)

_READ_COLUMNS = """
SELECT s.name, v.version, v.state, v.stage, v.created_at, v.ciphertext, v.data_key_id, k.kek_version, k.wrapped
FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
JOIN store.secret_versions v ON v.secret_id = s.id AND {version}
LEFT JOIN store.wrapped_keys k ON k.id = v.data_key_id
WHERE va.org_id = $1 AND va.name = $2 AND {names}
"""
_READ_NAMES = _READ_COLUMNS.format(version="v.version = s.current_version", names="s.name = ANY($3::text[])")
_READ_PREFIX = (
    _READ_COLUMNS.format(version="v.version = s.current_version", names="starts_with(s.name, $3)")
    + " ORDER BY s.name LIMIT $4"
)

_VERSIONS_COLUMNS = """
SELECT s.name, s.current_version FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
JOIN store.secret_versions v ON v.secret_id = s.id AND v.version = s.current_version AND v.state = 'active'
WHERE va.org_id = $1 AND va.name = $2 AND {names}
"""
_VERSIONS_OF_NAMES = _VERSIONS_COLUMNS.format(names="s.name = ANY($3::text[])")
_VERSIONS_UNDER_PREFIX = _VERSIONS_COLUMNS.format(names="starts_with(s.name, $3)") + " ORDER BY s.name LIMIT $4"

_SECRET_META = """
SELECT s.id, s.current_version, s.max_versions, s.created_at, s.updated_at,
       s.cas_required, s.delete_version_after, s.custom_metadata FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
WHERE va.org_id = $1 AND va.name = $2 AND s.name = $3
"""  # noqa: S105
_VERSIONS = (
    "SELECT version, state, stage, created_at, created_by_token, deleted_at FROM store.secret_versions "
    "WHERE secret_id = $1 ORDER BY version"
)
_DELETE = (
    "UPDATE store.secret_versions SET state = 'deleted', deleted_at = now() "
    "WHERE secret_id = $1 AND version = ANY($2::int[]) AND state = 'active' RETURNING version"
)
_UNDELETE = (
    "UPDATE store.secret_versions SET state = 'active', deleted_at = NULL "
    "WHERE secret_id = $1 AND version = ANY($2::int[]) AND state = 'deleted' RETURNING version"
)
_DESTROY = """
WITH old AS (
    SELECT version, data_key_id FROM store.secret_versions
    WHERE secret_id = $1 AND version = ANY($2::int[]) AND state <> 'destroyed' FOR UPDATE
)
UPDATE store.secret_versions v SET state = 'destroyed', ciphertext = NULL, data_key_id = NULL
FROM old WHERE v.secret_id = $1 AND v.version = old.version
RETURNING v.version, old.data_key_id
"""
_ALL_KEYS = "SELECT data_key_id FROM store.secret_versions WHERE secret_id = $1 AND data_key_id IS NOT NULL"
_DELETE_SECRET = "DELETE FROM store.secrets WHERE id = $1"  # noqa: S105
_PENDING = "SELECT version, state FROM store.secret_versions WHERE secret_id = $1 AND stage = 'pending'"
_SET_STAGE = "UPDATE store.secret_versions SET stage = $3 WHERE secret_id = $1 AND version = $2"
_SET_CURRENT = "UPDATE store.secrets SET current_version = $2, updated_at = now() WHERE id = $1"


def _stored(row: Any) -> StoredVersion:
    return StoredVersion(
        row["name"],
        row["version"],
        row["state"],
        row["stage"],
        row["created_at"],
        row["ciphertext"],
        row["data_key_id"],
        row["kek_version"],
        row["wrapped"],
    )


def _reply(outcome: WriteOutcome) -> dict[str, Any]:
    return {"version": outcome.version, "stage": outcome.stage, "created": outcome.created, "trimmed": outcome.trimmed}


def _replayed(reply: Any) -> WriteOutcome:
    return WriteOutcome(reply["version"], reply["stage"], reply["created"], tuple(reply["trimmed"]), replayed=True)


async def purge_expired_keys(conn: Connection) -> int:
    """Delete up to 1000 expired idempotency keys (keyed writes call it every ``_PURGE_EVERY``); how many went."""
    status: str = await conn.execute(_PURGE_KEYS)
    return int(status.split()[-1])


async def _claim(conn: Connection, org_id: int, claim: IdempotencyClaim) -> WriteOutcome | None:
    """Claim ``claim.key`` in this transaction; the first outcome if an earlier write holds it."""
    if await conn.fetchval(_CLAIM_KEY, org_id, claim.scope, claim.key, claim.request_hash, claim.ttl):
        return None
    row = await conn.fetchrow(_CLAIMED_KEY, org_id, claim.scope, claim.key)
    if not hmac.compare_digest(bytes(row["request_hash"]), claim.request_hash):
        raise Unprocessable(
            "this Idempotency-Key was used for a different request (another secret, value or option); "
            "send a new key for a new write"
        )
    return _replayed(row["reply"])


def _missing(vault: str, name: str) -> NotFound:
    return NotFound(f"secret {name!r} not found in vault {vault!r}")


class PgSecretRepository:
    """Implements :class:`vault.store.interfaces.SecretRepository`."""

    def __init__(self, pool: Pool, keys: PgKeyRepository, reads: BatchReader) -> None:
        self._pool = pool
        self._keys = keys
        # Single-version lookups run batched, as one query on the batch reader's connection.
        self._reads = reads
        self._keyed_writes = 0

    async def _vault_id(self, conn: Connection, org_id: int, vault: str) -> int:
        vault_id: int | None = await conn.fetchval(_VAULT_ID, org_id, vault)
        if vault_id is None:
            raise NotFound(f"vault {vault!r} not found; create it first")
        return vault_id

    async def _lock_secret(self, conn: Connection, org_id: int, vault: str, name: str) -> Any:
        row = await conn.fetchrow(_LOCK_SECRET_BY_NAME, org_id, vault, name)
        if row is None:
            await self._vault_id(conn, org_id, vault)
            raise _missing(vault, name)
        return row

    # -- vaults -----------------------------------------------------------------

    async def create_vault(self, org_id: int, name: str, before_commit: BeforeCommit[VaultInfo]) -> VaultInfo:
        try:
            async with change_transaction(self._pool) as conn:
                row = await conn.fetchrow(_CREATE_VAULT, org_id, name)
                info = VaultInfo(row["name"], row["created_at"])
                await before_commit(info, conn)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"vault {name!r} already exists") from None
        return info

    async def list_vaults(self, org_id: int) -> list[VaultInfo]:
        with database_errors():
            rows = await self._pool.fetch(_LIST_VAULTS, org_id)
        return [VaultInfo(r["name"], r["created_at"]) for r in rows]

    async def delete_vault(self, org_id: int, name: str, before_commit: BeforeCommit[str]) -> None:
        async with change_transaction(self._pool) as conn:
            vault_id = await self._vault_id(conn, org_id, name)
            if await conn.fetchval(_VAULT_HAS_SECRETS, vault_id):
                raise Conflict(f"vault {name!r} still holds secrets; destroy them first")
            await conn.execute(_DELETE_VAULT, vault_id)
            await before_commit(name, conn)

    async def list_secrets(
        self, org_id: int, vault: str, *, prefix: str, after: str | None, limit: int
    ) -> list[SecretSummary]:
        with database_errors():
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_LIST_SECRETS, org_id, vault, prefix, after or "", limit)
                if not rows:
                    await self._vault_id(conn, org_id, vault)
        return [SecretSummary(r["name"], r["current_version"], r["updated_at"]) for r in rows]

    # -- versions ---------------------------------------------------------------

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
        async with change_transaction(self._pool) as conn:
            if idempotency is not None:
                replay = await _claim(conn, org_id, idempotency)
                if replay is not None:
                    await before_commit(replay, conn)
                    return replay
                self._keyed_writes += 1
                if self._keyed_writes % _PURGE_EVERY == 0:
                    await purge_expired_keys(conn)
            vault_id = await self._vault_id(conn, org_id, vault)
            row = await conn.fetchrow(_LOCK_SECRET, vault_id, name)
            created = False
            if row is None:
                if not may_create:
                    raise Unauthorized(f"secret {name!r} does not exist, and creating it needs 'c'")
                row = await conn.fetchrow(_INSERT_SECRET, vault_id, name, max_versions)
                created = row is not None
                if row is None:  # created concurrently; now it exists, lock it
                    row = await conn.fetchrow(_LOCK_SECRET, vault_id, name)
            secret_id = row["id"]
            current = row["current_version"]
            if cas is not None and cas != (current or 0):
                raise Conflict(f"check-and-set failed: current version of {name!r} is {current or 0}, not {cas}")
            version = row["last_version"] + 1
            key_id = await self._keys.add(DATA_KEY_PURPOSE, data_key, conn=conn)
            ciphertext = seal(version, key_id)
            if pending:
                stage = "pending"
                await conn.execute(_CLEAR_STAGE, secret_id, "pending")
            else:
                stage = "current"
                await conn.execute(_CLEAR_STAGE, secret_id, "previous")
                await conn.execute(_RESTAGE, secret_id, "current", "previous")
                current = version
            await conn.execute(_INSERT_VERSION, secret_id, version, stage, ciphertext, key_id, token_id)
            await conn.execute(_UPDATE_SECRET, secret_id, version, current, max_versions)
            keep = max_versions or row["max_versions"]
            trimmed = await conn.fetch(_TRIM, secret_id, keep)
            if trimmed:
                await conn.execute(_DROP_KEYS, [r["data_key_id"] for r in trimmed if r["data_key_id"]])
            outcome = WriteOutcome(version, stage, created, tuple(sorted(r["version"] for r in trimmed)))
            if idempotency is not None:
                await conn.execute(_KEY_REPLY, org_id, idempotency.scope, idempotency.key, _reply(outcome))
            await before_commit(outcome, conn)
        return outcome

    async def read_lookups(self, lookups: Sequence[SecretLookup]) -> list[StoredVersion | None]:
        return [None if row is None else _stored(row) for row in await self._reads.fetch(lookups)]

    async def read_many(
        self, org_id: int, vault: str, *, names: Sequence[str] | None, prefix: str, limit: int
    ) -> list[StoredVersion]:
        with database_errors():
            if names is not None:
                rows = await self._pool.fetch(_READ_NAMES, org_id, vault, list(names))
            else:
                rows = await self._pool.fetch(_READ_PREFIX, org_id, vault, prefix, limit)
        return [_stored(r) for r in rows]

    async def current_versions(
        self, org_id: int, vault: str, *, names: Sequence[str] | None, prefix: str, limit: int
    ) -> dict[str, int]:
        with database_errors():
            async with self._pool.acquire() as conn:
                if names is not None:
                    rows = await conn.fetch(_VERSIONS_OF_NAMES, org_id, vault, list(names))
                else:
                    rows = await conn.fetch(_VERSIONS_UNDER_PREFIX, org_id, vault, prefix, limit)
                if not rows:
                    await self._vault_id(conn, org_id, vault)
        return {r["name"]: r["current_version"] for r in rows}

    async def metadata(self, org_id: int, vault: str, name: str) -> SecretMetadata:
        with database_errors():
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(_SECRET_META, org_id, vault, name)
                if row is None:
                    raise _missing(vault, name)
                versions = await conn.fetch(_VERSIONS, row["id"])
        return SecretMetadata(
            name,
            row["current_version"],
            row["max_versions"],
            row["created_at"],
            row["updated_at"],
            tuple(
                VersionInfo(
                    v["version"],
                    v["state"],
                    v["stage"],
                    v["created_at"],
                    None if v["created_by_token"] is None else str(v["created_by_token"]),
                    v["deleted_at"],
                )
                for v in versions
            ),
            row["cas_required"],
            row["delete_version_after"],
            row["custom_metadata"],
        )

    async def change_versions(
        self,
        org_id: int,
        vault: str,
        name: str,
        versions: Sequence[int],
        change: str,
        before_commit: BeforeCommit[list[int]],
    ) -> list[int]:
        query = {"delete": _DELETE, "undelete": _UNDELETE, "destroy": _DESTROY}[change]
        async with change_transaction(self._pool) as conn:
            secret = await self._lock_secret(conn, org_id, vault, name)
            rows = await conn.fetch(query, secret["id"], list(versions))
            if change == "destroy":
                await conn.execute(_DROP_KEYS, [r["data_key_id"] for r in rows if r["data_key_id"]])
            changed = sorted(r["version"] for r in rows)
            await before_commit(changed, conn)
        return changed

    async def destroy_secret(self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[str]) -> None:
        async with change_transaction(self._pool) as conn:
            secret = await self._lock_secret(conn, org_id, vault, name)
            key_ids = [r["data_key_id"] for r in await conn.fetch(_ALL_KEYS, secret["id"])]
            await conn.execute(_DELETE_SECRET, secret["id"])
            await conn.execute(_DROP_KEYS, key_ids)
            await before_commit(name, conn)

    async def promote(
        self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[tuple[int, int | None]]
    ) -> tuple[int, int | None]:
        async with change_transaction(self._pool) as conn:
            secret = await self._lock_secret(conn, org_id, vault, name)
            pending = await conn.fetchrow(_PENDING, secret["id"])
            if pending is None:
                raise Conflict(f"secret {name!r} has no pending version to promote")
            if pending["state"] != "active":
                raise Conflict(f"pending version {pending['version']} of {name!r} is {pending['state']}")
            await conn.execute(_CLEAR_STAGE, secret["id"], "previous")
            previous = await conn.fetchval(_RESTAGE, secret["id"], "current", "previous")
            await conn.execute(_SET_STAGE, secret["id"], pending["version"], "current")
            await conn.execute(_SET_CURRENT, secret["id"], pending["version"])
            result = (pending["version"], previous)
            await before_commit(result, conn)
        return result
