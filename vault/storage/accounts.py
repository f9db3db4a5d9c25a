"""Users, organizations and memberships of the authority (schema ``authority``)."""

from __future__ import annotations

import asyncpg

from vault.authority.records import Member, Membership, Org, User
from vault.authority.roles import Role
from vault.errors import Conflict, NotFound
from vault.types import BeforeCommit

from .change import change_transaction
from .pool import Connection, database_errors
from .revocations import append_revocation

__all__ = ["PgAccountRepository"]


class PgAccountRepository:
    """Implements :class:`vault.authority.interfaces.AccountRepository`. Roles are always read live."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_user(self, email: str, password_hash: str, before_commit: BeforeCommit[User]) -> User:
        async with change_transaction(self._pool) as conn:
            try:
                user_id = await conn.fetchval(
                    "INSERT INTO authority.users (email, password_hash) VALUES ($1, $2) RETURNING id",
                    email,
                    password_hash,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a user with email {email} already exists") from None
            user = User(user_id, email, password_hash)
            await before_commit(user, conn)
        return user

    async def user_by_email(self, email: str) -> User | None:
        with database_errors():
            row = await self._pool.fetchrow(
                "SELECT id, email, password_hash FROM authority.users WHERE email = $1", email
            )
        return User(row["id"], row["email"], row["password_hash"]) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        with database_errors():
            row = await self._pool.fetchrow(
                "SELECT id, email, password_hash FROM authority.users WHERE id = $1", user_id
            )
        return User(row["id"], row["email"], row["password_hash"]) if row else None

    async def count_users(self) -> int:
        with database_errors():
            count: int = await self._pool.fetchval("SELECT count(*) FROM authority.users")
        return count

    async def create_org(self, org_id: int, slug: str, owner_id: int, before_commit: BeforeCommit[Org]) -> Org:
        async with change_transaction(self._pool) as conn:
            try:
                await conn.execute("INSERT INTO authority.orgs (id, slug) VALUES ($1, $2)", org_id, slug)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"organization slug {slug!r} is taken; pick another") from None
            await conn.execute(
                "INSERT INTO authority.memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')",
                org_id,
                owner_id,
            )
            org = Org(org_id, slug)
            await before_commit(org, conn)
        return org

    async def memberships(self, user_id: int) -> list[Membership]:
        with database_errors():
            rows = await self._pool.fetch(
                "SELECT o.id, o.slug, m.role FROM authority.memberships m "
                "JOIN authority.orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.slug",
                user_id,
            )
        return [Membership(r["id"], r["slug"], Role(r["role"])) for r in rows]

    async def role_of(self, user_id: int, org_id: int) -> Role | None:
        with database_errors():
            role = await self._pool.fetchval(
                "SELECT role FROM authority.memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
            )
        return Role(role) if role is not None else None

    async def members(self, org_id: int) -> list[Member]:
        with database_errors():
            rows = await self._pool.fetch(
                "SELECT u.id, u.email, m.role FROM authority.memberships m "
                "JOIN authority.users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.email",
                org_id,
            )
        return [Member(r["id"], r["email"], Role(r["role"])) for r in rows]

    async def change_role(self, org_id: int, user_id: int, role: Role, before_commit: BeforeCommit[Role]) -> None:
        await self._change(org_id, user_id, role, before_commit)

    async def remove_member(self, org_id: int, user_id: int, before_commit: BeforeCommit[Role]) -> None:
        await self._change(org_id, user_id, None, before_commit)

    async def _change(self, org_id: int, user_id: int, role: Role | None, before_commit: BeforeCommit[Role]) -> None:
        async with change_transaction(self._pool) as conn:
            # Locking the org's rows serializes concurrent changes, so two owners
            # demoting each other cannot leave the org without one.
            rows = await conn.fetch(
                "SELECT user_id, role FROM authority.memberships WHERE org_id = $1 FOR UPDATE", org_id
            )
            current = {r["user_id"]: r["role"] for r in rows}
            await self._apply(conn, current, org_id, user_id, role)
            # The revocation feed tells the store, so discharges issued before this
            # moment stop working there within a second (docs/revocation.md).
            before = Role(current[user_id])
            if role is None or before.mask & ~role.mask:
                kind = "member_removed" if role is None else "role_downgraded"
                await append_revocation(conn, "authority", kind, org_id=org_id, user_id=user_id)
            await before_commit(before, conn)

    @staticmethod
    async def _apply(conn: Connection, current: dict[int, str], org_id: int, user_id: int, role: Role | None) -> None:
        if user_id not in current:
            raise NotFound(f"user {user_id} is not a member of organization {org_id}")
        owners = [u for u, r in current.items() if r == Role.OWNER.value]
        if owners == [user_id] and role is not Role.OWNER:
            raise Conflict("an organization needs at least one owner; make someone else owner first")
        if role is None:
            await conn.execute("DELETE FROM authority.memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id)
        else:
            await conn.execute(
                "UPDATE authority.memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2",
                org_id,
                user_id,
                role.value,
            )
