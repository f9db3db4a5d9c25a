"""The migration runner: plain SQL files applied in order, once, with checksums.

``sql/<schema>/NNNN_name.sql`` is applied inside PostgreSQL schema ``<schema>``
(its ``search_path`` is set to that schema, so files use unqualified names).
Each file runs in its own transaction together with its row in
``<schema>.schema_migrations``; a failing file leaves nothing behind. One
session-level advisory lock serializes concurrent runners: the second waits,
then finds nothing left to do. A file changed after it was applied, or an
applied file missing from disk, is an error naming the file; history is never
rewritten, a fix is a new file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from vault.config import default_sql_dir
from vault.errors import MigrationError

from .pool import Connection, database_errors
from .privileges import privilege_errors
from .schema import SCHEMAS, check_schema, quote_identifier

__all__ = ["Migration", "load_migrations", "migrate", "pending_migrations", "require_migrated"]

_FILE_NAME = re.compile(r"[0-9]{4}_[a-z0-9_]+\.sql")
# Any fixed 64-bit number works; deriving it from a name documents what it locks.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"cvault.migrations").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Migration:
    schema: str
    name: str
    sql: str = field(repr=False)
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.schema}/{self.name}"


def load_migrations(sql_dir: Path, schema: str) -> list[Migration]:
    """The migration files of ``schema`` in the order they apply."""
    directory = sql_dir / check_schema(schema)
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} is missing (set CVAULT_SQL_DIR?)")
    migrations = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if not _FILE_NAME.fullmatch(path.name):
            raise MigrationError(f"{schema}/{path.name} is not named NNNN_name.sql; rename or remove it")
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise MigrationError(f"{schema}/{path.name} is not UTF-8 text") from None
        migrations.append(Migration(schema, path.name, data.decode("utf-8"), hashlib.sha256(data).hexdigest()))
    return migrations


def _table(schema: str) -> str:
    return f"{quote_identifier(schema)}.schema_migrations"


async def _applied(conn: Connection, schema: str) -> dict[str, str] | None:
    """name -> checksum of applied migrations, or None if the schema was never migrated."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations")
    if not exists:
        return None
    rows = await conn.fetch(f"SELECT name, checksum FROM {_table(schema)}")  # noqa: S608 (fixed schema)
    return {row["name"]: row["checksum"] for row in rows}


def _check_history(schema: str, migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """Verify what was applied against the files; return the files still pending."""
    on_disk = {m.name: m for m in migrations}
    for name, checksum in sorted(applied.items()):
        migration = on_disk.get(name)
        if migration is None:
            raise MigrationError(
                f"migration {schema}/{name} is applied in the database but missing from the sql directory; "
                "run a cvault version that ships it"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.label} was changed after it was applied (checksum differs); "
                "restore the original file and put the change in a new migration"
            )
    return [m for m in migrations if m.name not in applied]


async def pending_migrations(pool: asyncpg.Pool, schema: str, *, sql_dir: Path | None = None) -> list[Migration]:
    """Files of ``schema`` not yet applied; raises :class:`MigrationError` on a tampered history."""
    migrations = load_migrations(sql_dir or default_sql_dir(), schema)
    with database_errors():
        async with pool.acquire() as conn:
            applied = await _applied(conn, schema)
    return _check_history(schema, migrations, applied or {})


async def require_migrated(pool: asyncpg.Pool, schema: str, *, sql_dir: Path | None = None) -> None:
    """Refuse to start on a database that is behind the code (services call this at start)."""
    pending = await pending_migrations(pool, schema, sql_dir=sql_dir)
    if pending:
        names = ", ".join(m.label for m in pending)
        raise MigrationError(f"database is not migrated (pending: {names}); run `cvault migrate`")


async def _apply(conn: Connection, migration: Migration) -> None:
    schema = quote_identifier(migration.schema)
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {_table(migration.schema)} (name, checksum) VALUES ($1, $2)",  # noqa: S608
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        # A missing privilege is the deployment's error, told by privilege_errors, not the file's.
        if isinstance(exc, asyncpg.exceptions.PostgresConnectionError | asyncpg.exceptions.InsufficientPrivilegeError):
            raise
        raise MigrationError(f"migration {migration.label} failed and was rolled back: {exc}") from exc


async def _migrate_schema(conn: Connection, schema: str, migrations: list[Migration]) -> list[Migration]:
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists; a
    # service's role owns its schema and has no more (deploy/postgres/10-cvault-roles.sh).
    if not await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema):
        await conn.execute(f"CREATE SCHEMA {quote_identifier(schema)}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_table(schema)} ("
        " name text PRIMARY KEY,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = []
    for migration in _check_history(schema, migrations, await _applied(conn, schema) or {}):
        await _apply(conn, migration)
        done.append(migration)
    return done


async def migrate(
    pool: asyncpg.Pool, *, sql_dir: Path | None = None, schemas: Iterable[str] = SCHEMAS
) -> list[Migration]:
    """Apply every pending migration of ``schemas``; return those applied (empty: nothing to do)."""
    plans = {schema: load_migrations(sql_dir or default_sql_dir(), schema) for schema in schemas}
    done: list[Migration] = []
    with database_errors():
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
            try:
                for schema, migrations in plans.items():
                    async with privilege_errors(conn, schema, migrating=True):
                        done += await _migrate_schema(conn, schema, migrations)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return done
