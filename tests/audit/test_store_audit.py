"""The store's audit: the query route, tamper evidence, and fail-closed reads."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import running_services
from vault.audit.query import AuditQueries
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool


async def _put(w: EnrolledOrg, name: str, value: str) -> None:
    r = await w.h.store("PUT", w.secret(name), w.bundle, {"value": value})
    assert r.status == 200, r


async def test_audit_query_route(world: EnrolledOrg) -> None:
    h = world.h
    await _put(world, "db/url", "v1")
    await _put(world, "db/url", "v2")
    await h.store("GET", world.secret("db/url"), world.bundle)
    await h.store("GET", world.secret("db/url"), world.root)  # denied
    r = await h.store("GET", world.path("/audit?secret=db/url&action=secrets.write&limit=1"), world.bundle)
    assert r.status == 200, r
    [first] = r.body["events"]
    assert (first["action"], first["version"], first["outcome"]) == ("secrets.write", 1, "ok")
    assert first["actor"] == str(world.owner.id) and first["lineage"]
    r = await h.store(
        "GET", world.path(f"/audit?secret=db/url&action=secrets.write&cursor={r.body['next_cursor']}"), world.bundle
    )
    assert [e["version"] for e in r.body["events"]] == [2] and r.body["next_cursor"] is None
    r = await h.store("GET", world.path("/audit?outcome=denied"), world.bundle)
    assert [(e["action"], e["secret"]) for e in r.body["events"]] == [("secrets.read", "db/url")]
    assert "v1" not in str(r.body) and "v2" not in str(r.body)


async def test_audit_query_filters_by_vault_and_pages_newest_first(world: EnrolledOrg) -> None:
    h = world.h
    r = await h.store("POST", world.path("/vaults"), world.bundle, {"name": "staging"})
    assert r.status == 201, r
    await _put(world, "db/url", "v1")
    r = await h.store("PUT", world.secret("db/url", "staging"), world.bundle, {"value": "s1"})
    assert r.status == 200, r
    await _put(world, "db/url", "v2")
    r = await h.store("GET", world.path("/audit?vault=prod&secret=db/url&order=newest&limit=1"), world.bundle)
    assert r.status == 200, r
    [newest] = r.body["events"]
    assert (newest["vault"], newest["version"]) == ("prod", 2)
    r = await h.store("GET", world.path(f"/audit?vault=prod&order=newest&cursor={r.body['next_cursor']}"), world.bundle)
    assert [(e["action"], e["vault"]) for e in r.body["events"]][:2] == [
        ("secrets.write", "prod"),
        ("vaults.create", "prod"),
    ]
    assert all(e["vault"] == "prod" for e in r.body["events"])
    assert (await h.store("GET", world.path("/audit?order=sideways"), world.bundle)).status == 400


async def test_audit_query_needs_a(world: EnrolledOrg) -> None:
    h = world.h
    reader = await h.store_bundle(await h.mint(world.bundle, world.org, mask="r"), world.auth)
    assert (await h.store("GET", world.path("/audit"), reader)).status == 403


async def _tamper(pool: Pool, sql: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # The append-only triggers do not fire for a superuser in replica mode: the tamperer's path.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


async def test_audit_verify_names_an_edited_row(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "v1")
    await world.h.store("GET", world.secret("db/url"), world.bundle)
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok
    seq = await pool.fetchval("SELECT max(seq) FROM store.audit_events WHERE action = 'secrets.write'")
    await _tamper(pool, f"UPDATE store.audit_events SET actor = 'someone-else' WHERE seq = {seq}")
    report = await AuditQueries(PgAuditRepository(pool, "store")).verify()
    assert not report.ok and report.broken_seq == seq


async def test_audit_verify_names_a_deleted_row(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "v1")
    await world.h.store("GET", world.secret("db/url"), world.bundle)
    seq = await pool.fetchval("SELECT max(seq) FROM store.audit_events WHERE action = 'secrets.write'")
    await _tamper(pool, f"DELETE FROM store.audit_events WHERE seq = {seq}")
    report = await AuditQueries(PgAuditRepository(pool, "store")).verify()
    assert not report.ok and report.broken_seq == seq


@pytest.fixture
async def store_role(database_url: str) -> AsyncIterator[str]:
    """A non-superuser role with the store's privileges (a superuser ignores REVOKE)."""
    role = f"cvault_store_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f"GRANT USAGE ON SCHEMA store TO {role}")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA store TO {role}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA store TO {role}")
        yield role
    finally:
        # Roles are cluster-wide: remove its grants here, then the role itself.
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")
        await conn.close()


def _as_user(dsn: str, user: str) -> str:
    """``dsn`` logging in as ``user`` (trust auth in tests; host, port and query kept)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def test_audit_insert_failure_returns_503_without_value(database_url: str, store_role: str, pool: Pool) -> None:
    store_url = _as_user(database_url, store_role)
    # The store must really run as the unprivileged role, or the REVOKE below proves nothing.
    conn = await asyncpg.connect(store_url)
    try:
        assert await conn.fetchval("SELECT current_user") == store_role
    finally:
        await conn.close()
    async with running_services(database_url, store_database_url=store_url) as h:
        w = await world_of(h)
        await _put(w, "db/url", "postgres://the-value")
        await pool.execute(f"REVOKE INSERT ON store.audit_events FROM {store_role}")
        r = await h.store("GET", w.secret("db/url"), w.bundle)
        assert r.status == 503 and r.code == "unavailable", r
        assert "the-value" not in str(r.body)
        r = await h.store("PUT", w.secret("db/url"), w.bundle, {"value": "new"})
        assert r.status == 503
        r = await h.store("POST", w.path("/vaults/prod/read"), w.bundle, {"names": ["db/url"]})
        assert r.status == 503 and "the-value" not in str(r.body)
        await pool.execute(f"GRANT INSERT ON store.audit_events TO {store_role}")
        r = await h.store("GET", w.secret("db/url"), w.bundle)
        # Nothing was written while the audit log was down.
        assert r.status == 200 and r.body["value"] == "postgres://the-value" and r.body["version"] == 1
