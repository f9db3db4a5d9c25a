"""The migration runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import SQL_DIR
from tests.support.cvault_command import cvault_env, run_cvault
from vault.errors import MigrationError
from vault.storage.migrations import load_migrations, migrate, pending_migrations, require_migrated
from vault.storage.pool import Pool, close_pool, create_pool
from vault.storage.schema import SCHEMAS


@pytest.fixture
async def empty_pool(empty_database_url: str) -> AsyncIterator[Pool]:
    created = await create_pool(empty_database_url, max_size=2)
    yield created
    await close_pool(created)


@pytest.fixture
def sql_dir(tmp_path: Path) -> Path:
    """A private copy of sql/ that a test may edit."""
    copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, copy)
    return copy


def _all_migrations(sql_dir: Path) -> list[str]:
    return [m.label for schema in SCHEMAS for m in load_migrations(sql_dir, schema)]


async def test_applies_everything_then_twice_is_a_no_op(empty_pool: Pool) -> None:
    applied = await migrate(empty_pool, sql_dir=SQL_DIR)
    assert [m.label for m in applied] == _all_migrations(SQL_DIR)
    assert await migrate(empty_pool, sql_dir=SQL_DIR) == []
    for schema in SCHEMAS:
        count = await empty_pool.fetchval(f"SELECT count(*) FROM {schema}.schema_migrations")
        assert count == len(load_migrations(SQL_DIR, schema))
        await require_migrated(empty_pool, schema, sql_dir=SQL_DIR)


async def test_records_sha256_checksums(empty_pool: Pool) -> None:
    await migrate(empty_pool, sql_dir=SQL_DIR)
    rows = await empty_pool.fetch("SELECT name, checksum FROM store.schema_migrations")
    expected = {m.name: m.checksum for m in load_migrations(SQL_DIR, "store")}
    assert {r["name"]: r["checksum"] for r in rows} == expected
    assert all(len(r["checksum"]) == 64 for r in rows)


async def test_unmigrated_database_is_refused_with_the_command_to_run(empty_pool: Pool) -> None:
    with pytest.raises(MigrationError, match="cvault migrate") as info:
        await require_migrated(empty_pool, "store", sql_dir=SQL_DIR)
    assert "store/0001_keys.sql" in info.value.message


async def test_new_file_is_pending_until_migrated(empty_pool: Pool, sql_dir: Path) -> None:
    await migrate(empty_pool, sql_dir=sql_dir)
    (sql_dir / "store" / "9999_extra.sql").write_text("CREATE TABLE extra (id int);\n")
    with pytest.raises(MigrationError, match=re.escape("store/9999_extra.sql")):
        await require_migrated(empty_pool, "store", sql_dir=sql_dir)
    applied = await migrate(empty_pool, sql_dir=sql_dir)
    assert [m.label for m in applied] == ["store/9999_extra.sql"]
    # search_path put the unqualified table into the file's schema.
    assert await empty_pool.fetchval("SELECT to_regclass('store.extra') IS NOT NULL")


async def test_tampered_applied_migration_is_reported_by_name(empty_pool: Pool, sql_dir: Path) -> None:
    await migrate(empty_pool, sql_dir=sql_dir)
    path = sql_dir / "store" / "0001_keys.sql"
    path.write_text(path.read_text() + "\n-- an innocent-looking edit\n")
    for attempt in (
        migrate(empty_pool, sql_dir=sql_dir),
        require_migrated(empty_pool, "store", sql_dir=sql_dir),
    ):
        with pytest.raises(MigrationError, match=r"store/0001_keys\.sql was changed after it was applied"):
            await attempt


async def test_applied_migration_missing_from_disk_is_an_error(empty_pool: Pool, sql_dir: Path) -> None:
    (sql_dir / "store" / "0002_more.sql").write_text("CREATE TABLE more (id int);\n")
    await migrate(empty_pool, sql_dir=sql_dir)
    (sql_dir / "store" / "0002_more.sql").unlink()
    with pytest.raises(MigrationError, match=re.escape("0002_more.sql is applied in the database but missing")):
        await pending_migrations(empty_pool, "store", sql_dir=sql_dir)


async def test_failing_migration_rolls_back_and_names_the_file(empty_pool: Pool, sql_dir: Path) -> None:
    (sql_dir / "store" / "0002_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_function();\n")
    with pytest.raises(MigrationError, match=re.escape("store/0002_broken.sql failed")):
        await migrate(empty_pool, sql_dir=sql_dir)
    assert not await empty_pool.fetchval("SELECT to_regclass('store.half') IS NOT NULL")
    names = await empty_pool.fetch("SELECT name FROM store.schema_migrations")
    assert [r["name"] for r in names] == ["0001_keys.sql"]


async def test_badly_named_file_is_refused(sql_dir: Path) -> None:
    (sql_dir / "store" / "2_oops.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=re.escape("store/2_oops.sql is not named NNNN_name.sql")):
        load_migrations(sql_dir, "store")


async def test_concurrent_runs_serialize(empty_database_url: str) -> None:
    pools = [await create_pool(empty_database_url, max_size=1) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(p, sql_dir=SQL_DIR) for p in pools))
        # One run applied everything, the other waited on the lock and found nothing to do.
        assert sorted(len(r) for r in results) == [0, len(_all_migrations(SQL_DIR))]
        for schema in SCHEMAS:
            await require_migrated(pools[0], schema, sql_dir=SQL_DIR)
            rows = await pools[0].fetch(f"SELECT name FROM {schema}.schema_migrations")
            assert len(rows) == len({r["name"] for r in rows}) == len(load_migrations(SQL_DIR, schema))
    finally:
        for p in pools:
            await close_pool(p)


async def test_template_databases_are_migrated(pool: Pool) -> None:
    for schema in SCHEMAS:
        await require_migrated(pool, schema, sql_dir=SQL_DIR)


async def test_cvault_migrate_command(empty_database_url: str) -> None:
    env = cvault_env({"CVAULT_DATABASE_URL": empty_database_url})
    status, out, _ = await run_cvault("migrate", env=env)
    assert status == 0
    assert "applied store/0001_keys.sql" in out
    status, out, _ = await run_cvault("migrate", env=env)
    assert status == 0 and "0 migration(s) applied" in out


async def test_cvault_migrate_without_a_database_says_what_to_set() -> None:
    status, _, err = await run_cvault("migrate", env=cvault_env())
    assert status == 1
    assert "CVAULT_DATABASE_URL" in err and "(config_error)" in err
