"""The rule the pool's cheap reset relies on: no request leaves session state on a pooled connection.

``vault/storage/pool.py`` replaces asyncpg's reset (``RESET ALL; UNLISTEN *; CLOSE ALL``, a round trip per
release) with "roll back an abandoned transaction". That is only correct while no code sets a session-level
parameter, listens, holds a cursor or a session advisory lock on a pooled connection. This test drives the store's
journeys, then holds every pooled connection at once and asks PostgreSQL for any of those: it fails the day someone
adds a plain ``SET`` (``SET LOCAL`` inside a transaction is fine).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.enrolled_org import EnrolledOrg
from vault.web.store.app import POOL_KEY

_LEFTOVERS = """
SELECT
    (SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM pg_settings WHERE source = 'session') AS settings,
    (SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_listening_channels() AS c) AS channels,
    -- The unnamed portal of this very query shows as a cursor; a declared one has a name.
    (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
    (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks
"""


async def _journeys(world: EnrolledOrg) -> None:
    h = world.h
    for i in range(3):
        r = await h.store("PUT", world.secret(f"app/key{i}"), world.bundle, {"value": f"v{i}"})
        assert r.status in (200, 201), r
    for i in range(3):
        r = await h.store("GET", world.secret(f"app/key{i}"), world.bundle)
        assert r.status == 200, r
    r = await h.store("POST", world.path("/vaults/prod/read"), world.bundle, {"names": ["app/key0", "app/key1"]})
    assert r.status == 200, r
    r = await h.store("GET", world.path("/vaults/prod/secrets"), world.bundle)
    assert r.status == 200, r
    await h.mint(world.bundle, world.org, mask="r")
    r = await h.store("GET", world.path("/audit"), world.bundle)
    assert r.status == 200, r


async def _leftovers(pool: Any) -> list[dict[str, Any]]:
    size = pool.get_max_size()
    connections = [await pool.acquire() for _ in range(size)]
    try:
        rows = await asyncio.gather(*(conn.fetchrow(_LEFTOVERS) for conn in connections))
    finally:
        for conn in connections:
            await pool.release(conn)
    return [dict(row) for row in rows]


_CLEAN = {"settings": [], "channels": [], "cursors": 0, "advisory_locks": 0}


async def test_no_request_leaves_session_state_on_a_pooled_connection(world: EnrolledOrg) -> None:
    pool = world.h.store_app[POOL_KEY]
    await _journeys(world)
    assert await _leftovers(pool) == [_CLEAN] * pool.get_max_size()


async def test_the_check_sees_a_plain_set(world: EnrolledOrg) -> None:
    # The check itself can fail: a session-level SET on one pooled connection is reported.
    pool = world.h.store_app[POOL_KEY]
    async with pool.acquire() as conn:
        await conn.execute("SET work_mem = '8MB'")
    leftovers = await _leftovers(pool)
    assert {"settings": ["work_mem"], "channels": [], "cursors": 0, "advisory_locks": 0} in leftovers
