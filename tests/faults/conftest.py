"""Fixtures of the fault-injection suite: a PostgreSQL cluster of its own, a migrated database on it.

``fault_cluster`` is one cluster per session (``initdb`` costs seconds); each test
gets a fresh database on it and must leave the server running (tests that stop
or freeze it restart or thaw it). Nothing here touches ``CVAULT_TEST_DATABASE_URL``'s
server: killing and freezing a server is only done to our own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from vault.config import default_sql_dir
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.migrations import migrate
from vault.storage.pool import close_pool, create_pool

from .cluster import Cluster, temporary_cluster


@pytest.fixture(scope="session")
def fault_cluster() -> Iterator[Cluster]:
    with temporary_cluster() as cluster:
        yield cluster


@pytest.fixture
async def fault_database(fault_cluster: Cluster) -> AsyncIterator[str]:
    """DSN of a fresh, migrated database on the fault cluster (the server is running again afterwards)."""
    name = f"cvault_fault_{secrets.token_hex(4)}"
    await create_database(fault_cluster.dsn, name)
    url = with_database(fault_cluster.dsn, name)
    pool = await create_pool(url, max_size=1)
    try:
        await migrate(pool, sql_dir=default_sql_dir())
    finally:
        await close_pool(pool)
    try:
        yield url
    finally:
        if not fault_cluster.running():
            fault_cluster.start()
        await drop_database(fault_cluster.dsn, name)
