"""A rotation's PostgreSQL target (docs/rotation.md): set a role's password as the admin, test a credential.

Part of the rotator, not of the store: it connects to the *rotated* database, with the admin credential the
rotator read from the admin secret. The password is sent as a SCRAM-SHA-256 verifier
(:func:`vault.crypto.scram.scram_sha256_verifier`), never in clear, so it cannot reach the server's statement
log. A failure is a :class:`TargetFailed` whose reason names what went wrong and never a password.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg

from vault.crypto.scram import scram_sha256_verifier
from vault.store.connection_document import ConnectionDocument
from vault.types import Random

__all__ = ["PostgresTarget", "TargetFailed", "quote_identifier"]


_FAILURES = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class TargetFailed(Exception):
    """A step failed at the target; ``reason`` is for the operator (``rotation status``, the audit log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reason(exc: BaseException, *secrets: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:400]


class PostgresTarget:
    def __init__(self, *, timeout: float = 10.0, random: Random = os.urandom) -> None:
        self._timeout = timeout
        self._random = random
        # Admin connections, pooled per admin credential: many rotations due at once share a few logins (each a
        # SCRAM exchange on both sides). Idle ones close after a while; a changed admin secret is a new pool.
        self._admin_pools: dict[ConnectionDocument, asyncio.Task[asyncpg.Pool]] = {}

    async def close(self) -> None:
        pools, self._admin_pools = list(self._admin_pools.values()), {}
        for pool in pools:
            await (await pool).close()

    async def _admin_pool(self, admin: ConnectionDocument) -> asyncpg.Pool:
        pool = self._admin_pools.get(admin)
        if pool is None:
            # min_size=0: creating the pool connects nothing, so it cannot fail; logins happen on acquire.
            pool = self._admin_pools[admin] = asyncio.ensure_future(self._create_pool(admin))
        return await asyncio.shield(pool)

    def _options(self, doc: ConnectionDocument) -> dict[str, Any]:
        return {
            "host": doc.host,
            "port": doc.port,
            "user": doc.user,
            "password": doc.password,
            "database": doc.dbname,
            "ssl": doc.sslmode or "prefer",
            "timeout": self._timeout,
            "command_timeout": self._timeout,
            "statement_cache_size": 0,
        }

    async def _create_pool(self, admin: ConnectionDocument) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            **self._options(admin), min_size=0, max_size=8, max_inactive_connection_lifetime=30
        )

    async def _connect(self, doc: ConnectionDocument) -> asyncpg.Connection:
        return await asyncpg.connect(**self._options(doc))

    async def set_password(
        self, admin: ConnectionDocument, role: str, password: str, *, member_of: str | None = None
    ) -> None:
        """``ALTER ROLE role PASSWORD ...`` as ``admin``. With ``member_of`` (the alternating strategy's clone), the
        role is first created if missing, as a login role that is a member of ``member_of`` (so it inherits its
        privileges)."""
        # PBKDF2 (4096 rounds) off the event loop: hashlib releases the GIL, other rotations and reads go on.
        verifier = await asyncio.to_thread(scram_sha256_verifier, password, self._random)
        pool = await self._admin_pool(admin)
        try:
            conn = await pool.acquire(timeout=self._timeout)
        except _FAILURES as exc:
            raise TargetFailed(f"cannot connect as the admin {admin.user!r}: {_reason(exc, admin.password)}") from None
        try:
            if member_of is not None:
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if not exists:
                    await conn.execute(
                        f"CREATE ROLE {quote_identifier(role)} LOGIN IN ROLE {quote_identifier(member_of)}"
                    )
            # Utility statements take no parameters; the verifier is base64 and '$', quoted as a literal.
            await conn.execute(f"ALTER ROLE {quote_identifier(role)} WITH LOGIN PASSWORD '{verifier}'")
        except _FAILURES as exc:
            conn.terminate()  # a connection that failed is not given back in an unknown state
            raise TargetFailed(f"cannot set the password of {role!r}: {_reason(exc, admin.password)}") from None
        finally:
            await pool.release(conn)

    async def test(self, doc: ConnectionDocument) -> None:
        """Open a connection with ``doc``'s credential and run a statement."""
        try:
            conn = await self._connect(doc)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close(timeout=self._timeout)
        except _FAILURES as exc:
            reason = _reason(exc, doc.password)
            raise TargetFailed(f"the new credential of {doc.user!r} does not work: {reason}") from None
