"""Writes with an ``Idempotency-Key`` are stored once, however often they are retried."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Reply, running_services
from vault.storage.pool import Pool
from vault.storage.store_secrets import purge_expired_keys


async def _put(w: EnrolledOrg, name: str, body: dict[str, Any], key: str | None, *, token: str | None = None) -> Reply:
    headers = {"Authorization": f"Bearer {token or w.bundle}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with w.h.http.put(w.h.store_url + w.secret(name), json=body, headers=headers) as resp:
        return Reply(resp.status, await resp.json())


async def _versions(pool: Pool, name: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT v.version FROM store.secret_versions v JOIN store.secrets s ON s.id = v.secret_id "
        "WHERE s.name = $1 ORDER BY v.version",
        name,
    )
    return [r["version"] for r in rows]


async def test_a_repeated_key_is_answered_with_the_first_outcome(world: EnrolledOrg, pool: Pool) -> None:
    key = str(uuid.uuid4())
    seq = await audit_head(pool)
    first = await _put(world, "k", {"value": "v1"}, key)
    again = await _put(world, "k", {"value": "v1"}, key)
    assert first.status == again.status == 200
    assert first.body == again.body == {"name": "k", "version": 1, "stage": "current"}
    assert await _versions(pool, "k") == [1]
    events = await audit_since(pool, seq)
    # The replay is audited, and says it is one (nothing was written).
    assert summary(events) == [("secrets.write", "ok", "k", 1), ("secrets.write", "ok", "k", 1)]
    assert "replayed" not in events[0]["detail"] and events[1]["detail"]["replayed"] is True
    # Without a key, or with a new one, a write is a new version.
    assert (await _put(world, "k", {"value": "v1"}, None)).body["version"] == 2
    assert (await _put(world, "k", {"value": "v1"}, str(uuid.uuid4()))).body["version"] == 3


async def test_a_key_reused_for_another_request_is_refused(world: EnrolledOrg, pool: Pool) -> None:
    key = str(uuid.uuid4())
    assert (await _put(world, "k", {"value": "v1"}, key)).status == 200
    for body, name in (({"value": "v2"}, "k"), ({"value": "v1"}, "other"), ({"value": "v1", "cas": 0}, "k")):
        r = await _put(world, name, body, key)
        assert r.status == 422 and r.code == "unprocessable", r
        assert "new key" in r.body["error"]["message"]
    assert await _versions(pool, "k") == [1]
    assert await _versions(pool, "other") == []


async def test_concurrent_retries_store_one_version(world: EnrolledOrg, pool: Pool) -> None:
    key = str(uuid.uuid4())
    replies = await asyncio.gather(*(_put(world, "c", {"value": "same"}, key) for _ in range(6)))
    assert {r.status for r in replies} == {200}
    assert {r.body["version"] for r in replies} == {1}
    assert await _versions(pool, "c") == [1]


async def test_keys_are_scoped_to_the_callers_token(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    other = await h.store_bundle(await h.mint(world.bundle, world.org, mask="rwc"), world.auth)
    key = str(uuid.uuid4())
    assert (await _put(world, "s", {"value": "a"}, key)).body["version"] == 1
    # Another token with the same key is another write, not a replay of someone else's outcome.
    assert (await _put(world, "s", {"value": "b"}, key, token=other)).body["version"] == 2


async def test_a_bad_key_is_a_400(world: EnrolledOrg) -> None:
    for bad in ("", "x" * 256, "with space", "caf\u00e9"):
        headers = {"Authorization": f"Bearer {world.bundle}", "Idempotency-Key": bad}
        async with world.h.http.put(
            world.h.store_url + world.secret("b"), json={"value": "v"}, headers=headers
        ) as resp:
            assert resp.status == 400, bad
            assert (await resp.json())["error"]["code"] == "bad_request"


async def test_the_vault_api_write_honours_the_key(world: EnrolledOrg, pool: Pool) -> None:
    headers = {"X-Vault-Token": world.bundle, "Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):
        async with world.h.http.post(
            world.h.store_url + "/vault/v1/acme/prod/data/vk", json={"data": {"a": "b"}}, headers=headers
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["data"]["version"] == 1
    assert await _versions(pool, "vk") == [1]


async def test_keys_expire_and_are_purged(database_url: str, pool: Pool) -> None:
    async with running_services(database_url, idempotency_key_ttl=1) as h:
        w = await world_of(h)
        key = str(uuid.uuid4())
        assert (await _put(w, "e", {"value": "v"}, key)).body["version"] == 1
        await asyncio.sleep(1.5)
        # Remembered for idempotency_key_ttl only: afterwards the same key is a new write.
        assert (await _put(w, "e", {"value": "v"}, key)).body["version"] == 2
        assert (await _put(w, "e", {"value": "v"}, key)).body["version"] == 2
    await pool.execute("UPDATE store.idempotency_keys SET expires_at = now() - interval '1 second'")
    async with pool.acquire() as conn:
        assert await purge_expired_keys(conn) == 1
    assert await pool.fetchval("SELECT count(*) FROM store.idempotency_keys") == 0
