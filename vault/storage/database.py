"""Whole databases: DSN rewriting, create and drop (for ``cvault dev`` and the tests)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .pool import database_errors
from .schema import quote_identifier

__all__ = ["create_database", "database_exists", "database_name", "drop_database", "with_database"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` instead (host, user, query kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match {_NAME.pattern}")
    return quote_identifier(name)


async def database_exists(admin_dsn: str, name: str) -> bool:
    with database_errors():
        conn = await asyncpg.connect(admin_dsn)
        try:
            return bool(await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()


async def create_database(admin_dsn: str, name: str, *, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` through a connection to ``admin_dsn``."""
    sql = f"CREATE DATABASE {_check_name(name)}"
    if template is not None:
        sql += f" TEMPLATE {_check_name(template)}"
    with database_errors():
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop ``name`` if it exists, disconnecting whoever is still connected."""
    with database_errors():
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_check_name(name)} WITH (FORCE)")
        finally:
            await conn.close()
