"""Security review: bad input on store and Vault-API routes is a 4xx, never a 500."""

from __future__ import annotations

import pytest

from .store_fixtures import World, services, world  # noqa: F401


async def _raw(w: World, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {w.bundle}"}
    async with w.h.http.request(method, w.h.store_url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize("version", ["2147483648", "9223372036854775808", "99999999999999999999"])
async def test_read_of_a_version_beyond_any_stored_one_is_not_found(world: World, version: str) -> None:
    w = world
    assert (await w.h.store("PUT", w.secret("a"), w.bundle, {"value": "x"})).status == 200
    # The store reads through the coalescer: a lookup it cannot encode must not fail the batch.
    assert (await _raw(w, "GET", w.secret("a") + f"?version={version}"))[0] == 404
    assert (await _raw(w, "GET", f"/vault/v1/acme/prod/data/a?version={version}"))[0] == 404
    assert (await w.h.store("GET", w.secret("a"), w.bundle)).body["value"] == "x"
