"""Database roles as deploy/postgres/10-cvault-roles.sh makes them, with fresh names, for the tests.

The script's own SQL runs here (roles are global to the server the tests share, so the names get a suffix):
each service's role has CONNECT on the database and owns its schema, nothing more.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from vault.storage.database import with_database

from .cvault_command import PROJECT_ROOT

__all__ = ["Roles", "roles"]

SCRIPT = PROJECT_ROOT / "deploy/postgres/10-cvault-roles.sh"


@dataclass(frozen=True)
class Roles:
    database: str
    authority: str  # role names
    store: str
    authority_url: str  # DSNs that log in as each role
    store_url: str


def _as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


def _script_sql(database: str, authority: str, store: str, passwords: dict[str, str]) -> tuple[str, str]:
    """The script's SQL with these names: what runs in the ``postgres`` database, and what after ``\\connect``."""
    sql = re.search(r"<<'SQL'\n(.*?)\nSQL\n", SCRIPT.read_text(), re.S)
    assert sql is not None, "10-cvault-roles.sh no longer feeds psql a <<'SQL' document"
    text = sql[1]
    for variable, value in passwords.items():
        text = text.replace(f":'{variable}'", "'" + value.replace("'", "''") + "'")
    text = re.sub(r"\bcvault_authority\b", authority, text)
    text = re.sub(r"\bcvault_store\b", store, text)
    text = re.sub(r"\bDATABASE cvault\b", f"DATABASE {database}", text)
    before, connect, after = text.partition("\\connect cvault\n")
    assert connect, "10-cvault-roles.sh no longer connects to the cvault database"
    return before, after


@pytest.fixture
async def roles(admin_dsn: str) -> AsyncIterator[Roles]:
    suffix = secrets.token_hex(5)
    database, authority, store = f"cvault_roles_{suffix}", f"cvault_authority_{suffix}", f"cvault_store_{suffix}"
    passwords = {"authority_password": secrets.token_urlsafe(12), "store_password": secrets.token_urlsafe(12)}
    before, after = _script_sql(database, authority, store, passwords)
    admin = await asyncpg.connect(with_database(admin_dsn, "postgres"))
    try:
        for statement in filter(str.strip, before.split(";")):
            await admin.execute(statement)
        inside = await asyncpg.connect(with_database(admin_dsn, database))
        try:
            await inside.execute(after)
        finally:
            await inside.close()
        yield Roles(
            database,
            authority,
            store,
            _as_role(with_database(admin_dsn, database), authority, passwords["authority_password"]),
            _as_role(with_database(admin_dsn, database), store, passwords["store_password"]),
        )
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        for role in (authority, store):
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
