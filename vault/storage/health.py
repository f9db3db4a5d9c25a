"""Readiness: can this process run a statement on its database right now?"""

from __future__ import annotations

import asyncio

import asyncpg

from .pool import CONNECTION_ERRORS

__all__ = ["database_ready"]


async def database_ready(pool: asyncpg.Pool, *, timeout: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(pool.fetchval("SELECT true"), timeout))
    except (*CONNECTION_ERRORS, asyncpg.PostgresError):
        return False
