"""Workload issuers, bindings and JWT replay counts (schema ``authority``, ``sql/authority/0120_workloads.sql``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from vault.authority.workload_records import WorkloadBinding, WorkloadIssuer
from vault.errors import Conflict, NotFound
from vault.types import BeforeCommit

from .change import change_transaction
from .pool import database_errors
from .revocations import append_token_revocations

__all__ = ["PgWorkloadRepository"]

_ISSUER = "SELECT id, org_id, issuer, jwks_url, static_jwks, algorithms, created_at FROM authority.workload_issuers"
_BINDING = (
    "SELECT b.id, b.org_id, b.issuer_id, i.issuer, b.name, b.audience, b.claims, b.mask, b.vaults, b.secrets,"
    " b.ttl, b.created_at FROM authority.workload_bindings b JOIN authority.workload_issuers i ON i.id = b.issuer_id"
)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _issuer(row: Any) -> WorkloadIssuer:
    return WorkloadIssuer(
        str(row["id"]),
        row["org_id"],
        row["issuer"],
        row["jwks_url"],
        row["static_jwks"],
        tuple(row["algorithms"]),
        row["created_at"],
    )


def _binding(row: Any) -> WorkloadBinding:
    return WorkloadBinding(
        str(row["id"]),
        row["org_id"],
        str(row["issuer_id"]),
        row["issuer"],
        row["name"],
        row["audience"],
        dict(row["claims"]),
        row["mask"],
        tuple(row["vaults"]) if row["vaults"] is not None else None,
        tuple(row["secrets"]) if row["secrets"] is not None else None,
        row["ttl"],
        row["created_at"],
    )


class PgWorkloadRepository:
    """Implements :class:`vault.authority.interfaces.WorkloadRepository`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_issuer(
        self, issuer: WorkloadIssuer, created_by: int | None, before_commit: BeforeCommit[None]
    ) -> None:
        async with change_transaction(self._pool) as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO authority.workload_issuers (id, org_id, issuer, jwks_url, static_jwks, algorithms,"
                        " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        issuer.id,
                        issuer.org_id,
                        issuer.issuer,
                        issuer.jwks_url,
                        issuer.static_jwks,
                        list(issuer.algorithms),
                        created_by,
                    )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"organization {issuer.org_id} already trusts {issuer.issuer}") from None
            await before_commit(None, conn)

    async def issuers(self, org_id: int) -> list[WorkloadIssuer]:
        with database_errors():
            rows = await self._pool.fetch(_ISSUER + " WHERE org_id = $1 ORDER BY created_at, id", org_id)
        return [_issuer(r) for r in rows]

    async def issuer(self, org_id: int, issuer: str) -> WorkloadIssuer | None:
        with database_errors():
            if _is_uuid(issuer):
                row = await self._pool.fetchrow(_ISSUER + " WHERE org_id = $1 AND id = $2", org_id, issuer)
            else:
                row = await self._pool.fetchrow(_ISSUER + " WHERE org_id = $1 AND issuer = $2", org_id, issuer)
        return _issuer(row) if row is not None else None

    async def issuer_bindings(self, org_id: int, issuer: str) -> tuple[WorkloadIssuer | None, list[WorkloadBinding]]:
        with database_errors():
            rows = await self._pool.fetch(
                "SELECT i.id, i.org_id, i.issuer, i.jwks_url, i.static_jwks, i.algorithms, i.created_at,"
                " b.id AS binding_id, b.name, b.audience, b.claims, b.mask, b.vaults, b.secrets, b.ttl,"
                " b.created_at AS bound_at FROM authority.workload_issuers i"
                " LEFT JOIN authority.workload_bindings b ON b.issuer_id = i.id"
                " WHERE i.org_id = $1 AND i.issuer = $2 ORDER BY b.name",
                org_id,
                issuer,
            )
        if not rows:
            return None, []
        found = _issuer(rows[0])
        bindings = [
            WorkloadBinding(
                str(r["binding_id"]),
                found.org_id,
                found.id,
                found.issuer,
                r["name"],
                r["audience"],
                dict(r["claims"]),
                r["mask"],
                tuple(r["vaults"]) if r["vaults"] is not None else None,
                tuple(r["secrets"]) if r["secrets"] is not None else None,
                r["ttl"],
                r["bound_at"],
            )
            for r in rows
            if r["binding_id"] is not None
        ]
        return found, bindings

    async def remove_issuer(self, org_id: int, issuer_id: str, before_commit: BeforeCommit[list[str]]) -> list[str]:
        async with change_transaction(self._pool) as conn:
            rows = await conn.fetch(
                "DELETE FROM authority.workload_bindings WHERE org_id = $1 AND issuer_id = $2 RETURNING id::text",
                org_id,
                issuer_id,
            )
            deleted = await conn.fetchval(
                "DELETE FROM authority.workload_issuers WHERE org_id = $1 AND id = $2 RETURNING id", org_id, issuer_id
            )
            if deleted is None:
                raise NotFound(f"organization {org_id} trusts no such issuer")
            bindings = sorted(r["id"] for r in rows)
            if bindings:
                await append_token_revocations(conn, "authority", bindings, "workload issuer removed")
            await before_commit(bindings, conn)
        return bindings

    async def bind(self, binding: WorkloadBinding, created_by: int | None, before_commit: BeforeCommit[None]) -> None:
        async with change_transaction(self._pool) as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO authority.workload_bindings (id, org_id, issuer_id, name, audience, claims, mask,"
                        " vaults, secrets, ttl, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        binding.id,
                        binding.org_id,
                        binding.issuer_id,
                        binding.name,
                        binding.audience,
                        binding.claims,
                        binding.mask,
                        list(binding.vaults) if binding.vaults is not None else None,
                        list(binding.secrets) if binding.secrets is not None else None,
                        binding.ttl,
                        created_by,
                    )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"organization {binding.org_id} already has a binding named {binding.name!r}") from None
            except asyncpg.ForeignKeyViolationError:
                raise NotFound("the issuer was removed meanwhile") from None
            await before_commit(None, conn)

    async def bindings(self, org_id: int, issuer_id: str | None = None) -> list[WorkloadBinding]:
        with database_errors():
            if issuer_id is None:
                rows = await self._pool.fetch(_BINDING + " WHERE b.org_id = $1 ORDER BY b.name", org_id)
            else:
                rows = await self._pool.fetch(
                    _BINDING + " WHERE b.org_id = $1 AND b.issuer_id = $2 ORDER BY b.name", org_id, issuer_id
                )
        return [_binding(r) for r in rows]

    async def binding(self, org_id: int, name_or_id: str) -> WorkloadBinding | None:
        column = "b.id" if _is_uuid(name_or_id) else "b.name"
        with database_errors():
            row = await self._pool.fetchrow(_BINDING + f" WHERE b.org_id = $1 AND {column} = $2", org_id, name_or_id)
        return _binding(row) if row is not None else None

    async def unbind(self, org_id: int, name_or_id: str, before_commit: BeforeCommit[str]) -> str:
        column = "id" if _is_uuid(name_or_id) else "name"
        async with change_transaction(self._pool) as conn:
            binding_id = await conn.fetchval(
                f"DELETE FROM authority.workload_bindings WHERE org_id = $1 AND {column} = $2"  # noqa: S608 (fixed)
                " RETURNING id::text",
                org_id,
                name_or_id,
            )
            if binding_id is None:
                raise NotFound(f"organization {org_id} has no workload binding {name_or_id!r}")
            await append_token_revocations(conn, "authority", [binding_id], "workload unbound")
            await before_commit(binding_id, conn)
        return str(binding_id)

    async def count_use(self, digest: bytes, expires_at: dt.datetime, max_uses: int) -> int | None:
        # One statement: the row lock of ON CONFLICT makes the count exact across nodes. Expired counts
        # (past exp plus more than any leeway) are deleted, a few at a time, by the same statement.
        # Its commit does not wait for the WAL flush (synchronous_commit off, for this transaction only):
        # the discharge is returned only after its audit event commits synchronously, later in the WAL,
        # and that flush makes this count durable too. So no discharge is ever out with its use uncounted.
        with database_errors():
            uses = await self._pool.fetchval(
                "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)),"
                " pruned AS (DELETE FROM authority.workload_jwt_uses WHERE digest IN ("
                " SELECT digest FROM authority.workload_jwt_uses WHERE expires_at < now() - interval '5 minutes'"
                " LIMIT 64 FOR UPDATE SKIP LOCKED))"
                " INSERT INTO authority.workload_jwt_uses AS u (digest, uses, expires_at)"
                " SELECT $1, 1, $2 FROM quick"
                " ON CONFLICT (digest) DO UPDATE SET uses = u.uses + 1 WHERE u.uses < $3 RETURNING u.uses",
                digest,
                expires_at,
                max_uses,
            )
        return int(uses) if uses is not None else None
