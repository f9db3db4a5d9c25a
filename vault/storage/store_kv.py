"""What the Vault KV version 2 API keeps beyond the store's model (``sql/store/0050_vault_kv.sql``).

Secret metadata (``cas_required``, ``delete_version_after``, ``custom_metadata``,
``max_versions``), a vault's mount configuration, and "delete the current
version". Versions and values stay in :mod:`.store_secrets`; nothing here reads
or writes a ciphertext.
"""

from __future__ import annotations

from typing import Any

from vault.errors import NotFound, Unauthorized
from vault.store.interfaces import BeforeCommit
from vault.store.models import KVConfig, MetadataUpdate, WriteRules

from .change import change_transaction
from .pool import Connection, Pool, database_errors

__all__ = ["PgKVRepository"]

_VAULT = "SELECT id, kv_max_versions, kv_cas_required, kv_delete_version_after FROM store.vaults "
_VAULT_BY_NAME = _VAULT + "WHERE org_id = $1 AND name = $2"
_LOCK_VAULT = _VAULT_BY_NAME + " FOR UPDATE"
_SET_CONFIG = (
    "UPDATE store.vaults SET kv_max_versions = coalesce($2, kv_max_versions), "
    "kv_cas_required = coalesce($3, kv_cas_required), "
    "kv_delete_version_after = coalesce($4, kv_delete_version_after) WHERE id = $1"
)
_SECRET = "SELECT id, current_version, cas_required FROM store.secrets WHERE vault_id = $1 AND name = $2"  # noqa: S105
_INSERT_SECRET = (
    "INSERT INTO store.secrets (vault_id, name, max_versions) VALUES ($1, $2, $3) "  # noqa: S105
    "ON CONFLICT (vault_id, name) DO NOTHING RETURNING id, current_version, cas_required"
)
_UPDATE_METADATA = (
    "UPDATE store.secrets SET max_versions = coalesce($2, max_versions), "
    "cas_required = coalesce($3, cas_required), delete_version_after = coalesce($4, delete_version_after), "
    "custom_metadata = CASE WHEN $5::boolean THEN $6::jsonb ELSE custom_metadata END, updated_at = now() "
    "WHERE id = $1"
)
_DELETE_CURRENT = (
    "UPDATE store.secret_versions SET state = 'deleted', deleted_at = now() "
    "WHERE secret_id = $1 AND version = $2 AND state = 'active' RETURNING version"
)
_DEFAULT_MAX_VERSIONS = 10


def _config(row: Any) -> KVConfig:
    return KVConfig(row["kv_max_versions"], row["kv_cas_required"], row["kv_delete_version_after"])


class PgKVRepository:
    """Implements :class:`vault.store.interfaces.KVRepository`."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @staticmethod
    async def _vault(conn: Connection, org_id: int, vault: str, *, lock: bool = False) -> Any:
        row = await conn.fetchrow(_LOCK_VAULT if lock else _VAULT_BY_NAME, org_id, vault)
        if row is None:
            raise NotFound(f"vault {vault!r} not found; create it first")
        return row

    async def config(self, org_id: int, vault: str) -> KVConfig:
        with database_errors():
            async with self._pool.acquire() as conn:
                return _config(await self._vault(conn, org_id, vault))

    async def set_config(
        self, org_id: int, vault: str, update: KVConfig | MetadataUpdate, before_commit: BeforeCommit[KVConfig]
    ) -> KVConfig:
        async with change_transaction(self._pool) as conn:
            row = await self._vault(conn, org_id, vault, lock=True)
            await conn.execute(
                _SET_CONFIG, row["id"], update.max_versions, update.cas_required, update.delete_version_after
            )
            config = _config(await self._vault(conn, org_id, vault))
            await before_commit(config, conn)
        return config

    async def write_rules(self, org_id: int, vault: str, name: str) -> WriteRules:
        with database_errors():
            async with self._pool.acquire() as conn:
                row = await self._vault(conn, org_id, vault)
                secret = await conn.fetchrow(_SECRET, row["id"], name)
        return WriteRules(
            bool(row["kv_cas_required"] or (secret is not None and secret["cas_required"])),
            (row["kv_max_versions"] or None) if secret is None else None,
        )

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
        """Write the fields ``update`` names; create the secret (without versions) if it is new.

        Returns whether it was created. Unauthorized if new and not ``may_create``.
        """
        async with change_transaction(self._pool) as conn:
            row = await self._vault(conn, org_id, vault)
            secret = await conn.fetchrow(_SECRET + " FOR UPDATE", row["id"], name)
            created = False
            if secret is None:
                if not may_create:
                    raise Unauthorized(f"secret {name!r} does not exist, and creating it needs 'c'")
                default = row["kv_max_versions"] or _DEFAULT_MAX_VERSIONS
                secret = await conn.fetchrow(_INSERT_SECRET, row["id"], name, default)
                created = secret is not None
                if secret is None:  # created concurrently
                    secret = await conn.fetchrow(_SECRET + " FOR UPDATE", row["id"], name)
            await conn.execute(
                _UPDATE_METADATA,
                secret["id"],
                update.max_versions or None,  # Vault: 0 keeps the mount's (here: the current) setting
                update.cas_required,
                update.delete_version_after,
                replace_custom,
                update.custom_metadata,
            )
            await before_commit(created, conn)
        return created

    async def delete_current(
        self, org_id: int, vault: str, name: str, before_commit: BeforeCommit[list[int]]
    ) -> list[int]:
        """Soft-delete the current version; returns ``[version]``, or ``[]`` if it was not active."""
        async with change_transaction(self._pool) as conn:
            row = await self._vault(conn, org_id, vault)
            secret = await conn.fetchrow(_SECRET + " FOR UPDATE", row["id"], name)
            if secret is None or secret["current_version"] is None:
                raise NotFound(f"secret {name!r} not found in vault {vault!r}")
            changed = [r["version"] for r in await conn.fetch(_DELETE_CURRENT, secret["id"], secret["current_version"])]
            await before_commit(changed, conn)
        return changed
