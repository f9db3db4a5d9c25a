"""Pool setup and the translation of connection failures."""

from __future__ import annotations

import pytest

from vault.errors import Unavailable
from vault.storage.database import with_database
from vault.storage.pool import Pool, create_pool


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
    with pytest.raises(Unavailable, match="does not exist"):
        await create_pool(with_database(admin_dsn, "cvault_no_such_database"), min_size=1)
