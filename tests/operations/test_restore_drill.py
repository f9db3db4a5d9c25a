"""The restore drill of docs/operations.md, performed: pg_dump, drop, restore, read every secret back.

Both services write real data (accounts, an enrolled org, secrets with several
versions, audit events); the database is dumped with ``pg_dump -Fc``, dropped,
recreated empty and restored with ``pg_restore``; the services start again on it
with the same master keys and every secret version reads back as written, with
the tokens issued before the dump, and both audit chains verify. The same dump
with another master key does not start at all: that is what losing it means.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import reserved_socket, running_services
from vault.audit.query import AuditQueries
from vault.errors import ConfigError
from vault.storage.audit import PgAuditRepository
from vault.storage.database import create_database, database_exists, database_name, drop_database
from vault.storage.pool import close_pool, create_pool

SECRETS = [f"app/{i}/db-password" for i in range(5)]


async def _tool(*args: str) -> None:
    tool = shutil.which(args[0])
    assert tool is not None, f"{args[0]} is not installed (PostgreSQL client tools)"
    process = await asyncio.create_subprocess_exec(
        tool, *args[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await process.communicate()
    assert process.returncode == 0, err.decode()


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The services' sockets, held for the whole drill: they start again at the same addresses, as a restored
    deployment keeps its URLs (the token locations), and no other test can take those ports in between."""
    with reserved_socket() as authority, reserved_socket() as store:
        yield authority, store


async def test_dump_drop_restore_read_every_secret_back(
    database_url: str, admin_dsn: str, tmp_path: Path, sockets: tuple[socket.socket, socket.socket]
) -> None:
    master_key = base64.b64encode(os.urandom(32)).decode()
    written: dict[tuple[str, int], str] = {}

    async with running_services(database_url, master_key=master_key, sockets=sockets) as h:
        owner, org, auth, root, bundle = await h.enrolled_vault("drill@example.com", "drill")
        for name in SECRETS:
            for version in (1, 2):
                value = secrets.token_urlsafe(24)
                r = await h.store("PUT", f"/v1/orgs/{org}/vaults/prod/secrets/{name}", bundle, {"value": value})
                assert r.status == 200, r
                written[(name, version)] = value

    dump = tmp_path / "cvault.dump"
    await _tool("pg_dump", "--format=custom", "--file", str(dump), database_url)
    name = database_name(database_url)
    await drop_database(admin_dsn, name)
    assert not await database_exists(admin_dsn, name)
    await create_database(admin_dsn, name)
    await _tool("pg_restore", "--exit-on-error", "--dbname", database_url, str(dump))

    async with running_services(database_url, master_key=master_key, sockets=sockets) as h:
        owner = await h.login("drill@example.com")
        auth = await h.authority_bundle(owner, org)
        bundle = await h.store_bundle(root, auth)  # the root store token issued before the dump
        for (secret, version), value in written.items():
            r = await h.store("GET", f"/v1/orgs/{org}/vaults/prod/secrets/{secret}?version={version}", bundle)
            assert r.status == 200, r
            assert r.body["value"] == value
        listed = await h.store("GET", f"/v1/orgs/{org}/vaults/prod/secrets", bundle)
        assert listed.status == 200

    pool = await create_pool(database_url, max_size=1)
    try:
        for schema in ("authority", "store"):
            report = await AuditQueries(PgAuditRepository(pool, schema)).verify()
            assert report.ok, report.message
    finally:
        await close_pool(pool)

    # Restored with another master key: nothing starts, and the error says which key is wrong.
    other = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ConfigError, match="master key"):
        async with running_services(database_url, master_key=other, sockets=sockets):
            pass
