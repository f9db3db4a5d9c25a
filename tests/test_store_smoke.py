from __future__ import annotations

from .store_fixtures import World, services, world  # noqa: F401


async def test_write_then_read(world: World) -> None:
    h = world.h
    r = await h.store("PUT", world.secret("db/url"), world.bundle, {"value": "postgres://x"})
    assert r.status == 200, r
    r = await h.store("GET", world.secret("db/url"), world.bundle)
    assert r.status == 200, r
    assert r.body["value"] == "postgres://x"
