"""Rotation policies and the state of each rotation (``store.rotation_policies``; docs/rotation.md).

A lease is ``(holder, lease_expires_at)`` on the policy's row. A claim takes due rows with ``FOR UPDATE SKIP
LOCKED``, so concurrent claims never lease the same rotation; every step locks the row and checks the lease
against the store's clock (the ``now`` the service passes) before it changes anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from vault.errors import Conflict, NotFound
from vault.store.interfaces import BeforeCommit
from vault.store.rotation_models import DONE, RotationPolicy, RotationStatus

from .change import change_transaction
from .pool import Connection, Pool, connection_of, database_errors

__all__ = ["PgRotationRepository"]

_COLUMNS = """
va.name AS vault, s.name, p.target, p.strategy, p.every_seconds, p.admin_secret, p.hook, p.password_length,
p.enabled, p.next_due_at, p.holder, p.lease_expires_at, p.step, p.pending_version, p.attempt, p.rotations,
p.last_success_at, p.last_rotated, p.last_failure_at, p.last_failure, p.connection
"""
_FROM = """
FROM store.vaults va
JOIN store.secrets s ON s.vault_id = va.id
JOIN store.rotation_policies p ON p.secret_id = s.id
WHERE va.org_id = $1 AND va.name = $2
"""
_STATUS = f"SELECT {_COLUMNS} {_FROM} AND s.name = $3"
_LOCK = f"SELECT {_COLUMNS}, p.secret_id {_FROM} AND s.name = $3 FOR UPDATE OF p"
_STATUSES = f"SELECT {_COLUMNS} {_FROM} ORDER BY s.name"
_SECRET_ID = (
    "SELECT s.id FROM store.vaults va JOIN store.secrets s ON s.vault_id = va.id "  # noqa: S105 (a query)
    "WHERE va.org_id = $1 AND va.name = $2 AND s.name = $3"
)
_UPSERT = """
INSERT INTO store.rotation_policies
    (secret_id, target, strategy, every_seconds, admin_secret, hook, password_length, next_due_at, connection)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (secret_id) DO UPDATE SET
    target = EXCLUDED.target, strategy = EXCLUDED.strategy, every_seconds = EXCLUDED.every_seconds,
    admin_secret = EXCLUDED.admin_secret, hook = EXCLUDED.hook, password_length = EXCLUDED.password_length,
    next_due_at = EXCLUDED.next_due_at, connection = EXCLUDED.connection, enabled = true, attempt = 0,
    updated_at = now()
"""
_UPDATE = """
UPDATE store.rotation_policies SET enabled = coalesce($2, enabled), next_due_at = coalesce($3, next_due_at),
    attempt = CASE WHEN $3::timestamptz IS NULL THEN attempt ELSE 0 END, updated_at = now()
WHERE secret_id = $1
"""
_DUE = f"""
SELECT s.name {_FROM} AND p.enabled AND p.next_due_at <= $3
    AND (p.lease_expires_at IS NULL OR p.lease_expires_at <= $3)
ORDER BY p.next_due_at LIMIT $4
"""
_CLAIM = """
WITH free AS (
    SELECT p.secret_id FROM store.vaults va
    JOIN store.secrets s ON s.vault_id = va.id
    JOIN store.rotation_policies p ON p.secret_id = s.id
    WHERE va.org_id = $1 AND va.name = $2 AND s.name = ANY($3::text[]) AND p.enabled AND p.next_due_at <= $5
      AND (p.lease_expires_at IS NULL OR p.lease_expires_at <= $5)
    ORDER BY p.next_due_at LIMIT $7
    FOR UPDATE OF p SKIP LOCKED
)
UPDATE store.rotation_policies p SET holder = $4, lease_expires_at = $6, updated_at = now()
FROM free WHERE p.secret_id = free.secret_id
RETURNING p.secret_id
"""
_CLAIMED = f"SELECT {_COLUMNS} {_FROM} AND p.secret_id = ANY($3::bigint[]) ORDER BY p.next_due_at"
_PENDING_VERSION = "SELECT version FROM store.secret_versions WHERE secret_id = $1 AND stage = 'pending'"
_CREATED = """
UPDATE store.rotation_policies SET step = 'created', pending_version = $2, lease_expires_at = $3, updated_at = now()
WHERE secret_id = $1
"""
_ADVANCE = """
UPDATE store.rotation_policies SET step = $2, lease_expires_at = $3, updated_at = now() WHERE secret_id = $1
"""
_PROMOTED = """
UPDATE store.rotation_policies SET step = NULL, pending_version = NULL, holder = NULL, lease_expires_at = NULL,
    attempt = 0, rotations = rotations + 1, last_success_at = $2::timestamptz, last_rotated = $3,
    next_due_at = $2::timestamptz + every_seconds * interval '1 second', updated_at = now()
WHERE secret_id = $1
"""
# Backoff: 30 s, 1 min, 2 min... at most an hour, and never later than the next regular rotation.
_FAILED = """
UPDATE store.rotation_policies SET holder = NULL, lease_expires_at = NULL, attempt = attempt + 1,
    last_failure_at = $2::timestamptz, last_failure = $3,
    next_due_at = $2::timestamptz
        + least(every_seconds, 3600, 30 * power(2, least(attempt, 7))::int) * interval '1 second',
    updated_at = now()
WHERE secret_id = $1
"""
# What a later step needs the rotation to have reached.
_BEFORE = {"set": ("created", "set"), "test": ("set", "tested")}


def _status(row: Any) -> RotationStatus:
    policy = RotationPolicy(
        row["target"], row["strategy"], row["every_seconds"], row["admin_secret"], row["hook"], row["password_length"]
    )
    return RotationStatus(
        row["vault"],
        row["name"],
        policy,
        row["enabled"],
        row["next_due_at"],
        row["holder"],
        row["lease_expires_at"],
        row["step"],
        row["pending_version"],
        row["attempt"],
        row["rotations"],
        row["last_success_at"],
        row["last_rotated"],
        row["last_failure_at"],
        row["last_failure"],
        row["connection"],
    )


def _no_policy(vault: str, name: str) -> NotFound:
    return NotFound(f"secret {name!r} in vault {vault!r} has no rotation policy (`cvault rotation set` makes one)")


class PgRotationRepository:
    """Implements :class:`vault.store.interfaces.RotationRepository`."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _locked(self, conn: Connection, org_id: int, vault: str, name: str) -> Any:
        row = await conn.fetchrow(_LOCK, org_id, vault, name)
        if row is None:
            raise _no_policy(vault, name)
        return row

    async def _leased(self, conn: Connection, org_id: int, vault: str, name: str, holder: str, now: dt.datetime) -> Any:
        """The row locked, if ``holder`` holds a live lease on it; Conflict otherwise."""
        row = await self._locked(conn, org_id, vault, name)
        if row["holder"] != holder or row["lease_expires_at"] is None or row["lease_expires_at"] <= now:
            raise Conflict(
                f"the rotation of {name!r} is not leased to {holder!r} (the lease expired or another rotator "
                "took it over); claim it again"
            )
        return row

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
        async with change_transaction(self._pool) as conn:
            secret_id = await conn.fetchval(_SECRET_ID, org_id, vault, name)
            if secret_id is None:
                raise NotFound(f"no secret {name!r} in vault {vault!r}: write its value first")
            await conn.execute(
                _UPSERT,
                secret_id,
                policy.target,
                policy.strategy,
                policy.every_seconds,
                policy.admin_secret,
                policy.hook,
                policy.password_length,
                next_due,
                connection,
            )
            status = _status(await conn.fetchrow(_STATUS, org_id, vault, name))
            await before_commit(status, conn)
        return status

    async def status(self, org_id: int, vault: str, name: str) -> RotationStatus:
        with database_errors():
            row = await self._pool.fetchrow(_STATUS, org_id, vault, name)
        if row is None:
            raise _no_policy(vault, name)
        return _status(row)

    async def statuses(self, org_id: int, vault: str) -> list[RotationStatus]:
        with database_errors():
            rows = await self._pool.fetch(_STATUSES, org_id, vault)
        return [_status(r) for r in rows]

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
        async with change_transaction(self._pool) as conn:
            row = await self._locked(conn, org_id, vault, name)
            await conn.execute(_UPDATE, row["secret_id"], enabled, due)
            status = _status(await conn.fetchrow(_STATUS, org_id, vault, name))
            await before_commit(status, conn)
        return status

    async def due(self, org_id: int, vault: str, now: dt.datetime, limit: int) -> list[str]:
        with database_errors():
            rows = await self._pool.fetch(_DUE, org_id, vault, now, limit)
        return [r["name"] for r in rows]

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
        async with change_transaction(self._pool) as conn:
            leased = await conn.fetch(_CLAIM, org_id, vault, list(names), holder, now, lease_until, limit)
            ids = [r["secret_id"] for r in leased]
            rows = await conn.fetch(_CLAIMED, org_id, vault, ids) if ids else []
        return [_status(r) for r in rows]

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
        conn = connection_of(transaction)
        row = await self._leased(conn, org_id, vault, name, holder, now)
        await conn.execute(_CREATED, row["secret_id"], version, lease_until)

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
        async with change_transaction(self._pool) as conn:
            row = await self._leased(conn, org_id, vault, name, holder, now)
            if row["pending_version"] != pending_version or row["step"] not in _BEFORE[step]:
                raise Conflict(
                    f"the rotation of {name!r} is at step {row['step']!r} of version {row['pending_version']}, "
                    f"not ready to record {step!r} for version {pending_version}"
                )
            if await conn.fetchval(_PENDING_VERSION, row["secret_id"]) != pending_version:
                raise Conflict(f"version {pending_version} of {name!r} is no longer pending")
            await conn.execute(_ADVANCE, row["secret_id"], DONE[step], lease_until)
            status = _status(await conn.fetchrow(_STATUS, org_id, vault, name))
            await before_commit(status, conn)
        return status

    async def record_promoted(
        self, transaction: object, org_id: int, vault: str, name: str, holder: str, now: dt.datetime, version: int
    ) -> None:
        conn = connection_of(transaction)
        row = await self._leased(conn, org_id, vault, name, holder, now)
        if row["pending_version"] != version or row["step"] != "tested":
            raise Conflict(
                f"version {version} of {name!r} was not tested by this rotation (it is at step {row['step']!r} "
                f"of version {row['pending_version']}); it is not promoted"
            )
        await conn.execute(_PROMOTED, row["secret_id"], now, version)

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
        async with change_transaction(self._pool) as conn:
            row = await self._locked(conn, org_id, vault, name)
            if row["holder"] != holder:
                raise Conflict(f"the rotation of {name!r} is not leased to {holder!r}; its failure is not recorded")
            await conn.execute(_FAILED, row["secret_id"], now, reason)
            status = _status(await conn.fetchrow(_STATUS, org_id, vault, name))
            await before_commit(status, conn)
        return status
