"""Managed rotation of PostgreSQL credentials (docs/rotation.md), end to end: the store and the authority on real
ports, the rotator in process with a rotator's token, the rotated roles real roles on a server that checks
passwords (tests/support/rotation.py)."""

from __future__ import annotations

import time

from tests.support import rotation
from tests.support.rotation import RotationWorld, can_connect, current
from vault.cli.rotator import Rotator, RotatorSettings

pg, rw = rotation.pg, rotation.rw  # the fixtures: a password-checking cluster, the world

DAY = 86400


async def _policy(rw: RotationWorld, name: str = "db/url", **kw: object) -> None:
    async with rw.owner_client() as c:
        await c.rotation.set_policy(
            "prod",
            name,
            target="postgres",
            every_seconds=30 * DAY,
            admin_secret="db/admin",
            **kw,  # type: ignore[arg-type]
        )


async def _rotate_once(rw: RotationWorld, *names: str, holder: str = "rotator-1", **kw: object) -> Rotator:
    token = await rw.rotator_token(*(names or ("db/url",)))
    async with rw.client_with(token) as client:
        rotator = Rotator(client, RotatorSettings(vaults=("prod",), holder=holder, **kw))  # type: ignore[arg-type]
        try:
            await rotator.run_once()
        finally:
            await rotator.close()
    return rotator


async def test_single_user_rotation_sets_a_new_password_and_the_old_one_stops_working(rw: RotationWorld) -> None:
    before_version, before = await current(rw)
    assert await can_connect(before)
    await _policy(rw)
    async with rw.owner_client() as c:
        await c.rotation.rotate_now("prod", "db/url")
    rotator = await _rotate_once(rw)
    assert rotator.promoted == 1

    version, after = await current(rw)
    assert version > before_version
    assert after.user == before.user and after.password != before.password
    assert after.form == "url" and len(after.password) == 32 and after.password.isalnum()
    assert await can_connect(after)
    assert not await can_connect(before)  # single user: the old password is gone

    async with rw.owner_client() as c:
        status = await c.rotation.show("prod", "db/url")
        meta = await c.store.metadata("prod", "db/url")
        events = (await c.store.audit(secret="db/url", limit=100))["events"]
    assert status.rotations == 1 and status.last_rotated == version and status.step is None and status.attempt == 0
    assert [v.stage for v in meta.versions if v.stage == "pending"] == []
    steps = [e for e in events if e["action"].startswith("rotation.step.")]
    assert [e["action"] for e in steps] == [
        "rotation.step.create",
        "rotation.step.set",
        "rotation.step.test",
        "rotation.step.promote",
    ]
    # Each step is the rotator's act: its store token, none of the owner's.
    rotator_tokens = {e["token_id"] for e in steps}
    assert len(rotator_tokens) == 1
    assert all(e["outcome"] == "ok" and e["version"] == version for e in steps)


async def test_alternating_rotation_keeps_the_previous_credential_working_until_the_next(rw: RotationWorld) -> None:
    _, first = await current(rw)
    await _policy(rw, strategy="alternating")
    seen = [first]
    for _ in range(3):
        async with rw.owner_client() as c:
            await c.rotation.rotate_now("prod", "db/url")
        assert (await _rotate_once(rw)).promoted == 1
        _, now = await current(rw)
        assert await can_connect(now)
        assert await can_connect(seen[-1])  # the previous credential still works...
        if len(seen) >= 2:
            assert not await can_connect(seen[-2])  # ...until the rotation after it
        seen.append(now)
    assert [d.user for d in seen] == [rw.roles.app, rw.roles.clone, rw.roles.app, rw.roles.clone]


async def test_a_json_document_is_rotated_as_json(rw: RotationWorld) -> None:
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/url", rw.roles.doc(rw.roles.app, rw.roles.app_password, "json").render())
    await _policy(rw, password_length=48)
    async with rw.owner_client() as c:
        await c.rotation.rotate_now("prod", "db/url")
    await _rotate_once(rw)
    _, after = await current(rw)
    assert after.form == "json" and len(after.password) == 48 and await can_connect(after)


async def test_a_scheduled_rotation_happens_when_due_and_not_before(rw: RotationWorld) -> None:
    await _policy(rw)  # every 30 days, first due in 30 days
    offset = 0.0

    def shift(seconds: float) -> None:
        nonlocal offset
        offset += seconds
        rw.h.store_clock.offset += seconds
        rw.h.authority_clock.offset += seconds

    token = await rw.rotator_token("db/url")

    async def poll() -> int:
        async with rw.client_with(token, clock=lambda: time.time() + offset) as client:
            rotator = Rotator(client, RotatorSettings(vaults=("prod",), holder="scheduled"))
            await rotator.run_once()
            await rotator.close()
            return rotator.promoted

    assert await poll() == 0
    shift(30 * DAY - 120)
    assert await poll() == 0  # two minutes early
    shift(240)
    assert await poll() == 1
    assert await poll() == 0  # done once, next in 30 days
    shift(30 * DAY)
    assert await poll() == 1
    rw.owner = await rw.h.login(rw.owner.email, rw.owner.id)  # 60 days on, the first session has expired
    async with rw.owner_client(clock=lambda: time.time() + offset) as c:
        status = await c.rotation.show("prod", "db/url")
    assert status.rotations == 2


async def test_the_audit_console_lists_a_rotations_steps_readably(rw: RotationWorld, database_url: str) -> None:
    import html
    import re

    import aiohttp
    from aiohttp.test_utils import TestServer

    from vault.web.console import create_console_app

    await _policy(rw)
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/admin", rw.roles.doc(rw.roles.admin, "not-it").render())
        await c.rotation.rotate_now("prod", "db/url")
    assert (await _rotate_once(rw, holder="rotator-east")).failed == 1
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/admin", rw.roles.doc(rw.roles.admin, rw.roles.admin_password).render())
        await c.rotation.rotate_now("prod", "db/url")
    assert (await _rotate_once(rw, holder="rotator-east")).promoted == 1

    async with (
        rw.owner_client() as reviewer,
        TestServer(create_console_app(reviewer), host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
        http.get(str(server.make_url("/?secret=db/url&limit=100"))) as r,
    ):
        page = await r.text()
    assert r.status == 200
    rows = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
        for row in re.findall(r"<tr class=[^>]*>(.*?)</tr>", page, re.S)
        if "rotation.step." in row
    ]
    # Newest first: the successful rotation's four steps, then the failed attempt's set (with its reason).
    steps = [row.split()[3] for row in rows]
    assert steps[:4] == ["rotation.step.promote", "rotation.step.test", "rotation.step.set", "rotation.step.create"]
    assert all("by rotator-east" in row for row in rows)
    failed = next(row for row in rows[4:] if "ERROR" in row)
    assert "rotation.step.set" in failed and "password authentication failed" in failed
    assert "not-it" not in page and rw.roles.admin_password not in page
