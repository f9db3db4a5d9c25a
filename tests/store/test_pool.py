"""Pool setup and the translation of connection failures."""

from __future__ import annotations

import asyncpg
import pytest

from vault.errors import BadRequest, TransactionAborted, Unavailable, VaultError
from vault.storage.database import with_database
from vault.storage.pool import Pool, create_pool, database_errors, error_for_sqlstate


async def test_jsonb_round_trips_python_objects(pool: Pool) -> None:
    value = {"a": [1, 2, {"b": None}], "c": "é"}
    assert await pool.fetchval("SELECT $1::jsonb", value) == value
    assert await pool.fetchval("SELECT $1::json", value) == value


async def test_unreachable_server_is_unavailable() -> None:
    # Port 1 on localhost: nothing listens there, so the connection is refused at once.
    with pytest.raises(Unavailable, match="database unavailable") as info:
        await create_pool("postgresql://cvault:hunter2@127.0.0.1:1/none", min_size=1)
    assert "hunter2" not in str(info.value)


async def test_missing_database_is_unavailable(admin_dsn: str) -> None:
    with pytest.raises(Unavailable) as info:
        await create_pool(with_database(admin_dsn, "cvault_no_such_database"), min_size=1)
    assert info.value.detail is not None and "does not exist" in info.value.detail  # the operator's, not the reply's
    assert "cvault_no_such_database" not in info.value.message


# -- statement errors by SQLSTATE class (storage's edge, so a caller sees our code, never a 500) --------------


async def test_a_serialization_failure_is_transaction_aborted(pool: Pool) -> None:
    await pool.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)")
    async with pool.acquire() as first, pool.acquire() as second:
        t1 = first.transaction(isolation="serializable")
        t2 = second.transaction(isolation="serializable")
        await t1.start()
        await t2.start()
        await first.fetchval("SELECT n FROM counter")
        await second.fetchval("SELECT n FROM counter")
        await first.execute("UPDATE counter SET n = n + 1")
        await t1.commit()
        with pytest.raises(TransactionAborted) as info, database_errors():
            await second.execute("UPDATE counter SET n = n + 1")
        await t2.rollback()
    assert info.value.status == 503
    assert info.value.code == "transaction_aborted"
    assert "nothing was changed" in info.value.message


async def test_a_statement_timeout_is_unavailable(pool: Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = '50ms'")
        with pytest.raises(Unavailable, match="cannot serve") as info, database_errors():
            await conn.execute("SELECT pg_sleep(5)")
    assert type(info.value) is Unavailable


async def test_a_data_exception_is_bad_request_without_the_value(pool: Pool) -> None:
    with pytest.raises(BadRequest) as info, database_errors():
        await pool.fetchval("SELECT $1::text::int", "not-a-number-hunter2")
    assert "hunter2" not in info.value.message


async def test_other_classes_stay_errors_for_the_500_path(pool: Pool) -> None:
    # A syntax error is a bug, not the caller's fault: it is not dressed up as one of our codes.
    with pytest.raises(asyncpg.PostgresSyntaxError), database_errors():
        await pool.execute("SELEC 1")


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", TransactionAborted),
        ("40P01", TransactionAborted),
        ("53300", Unavailable),
        ("57014", Unavailable),
        ("22003", BadRequest),
        ("23505", None),
        ("42601", None),
        ("", None),
    ],
)
def test_error_for_sqlstate(sqlstate: str, expected: type[VaultError] | None) -> None:
    mapped = error_for_sqlstate(sqlstate)
    assert (None if mapped is None else type(mapped)) is expected
