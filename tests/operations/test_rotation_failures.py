"""Managed rotation when things go wrong, and who may do what (docs/rotation.md): a target that refuses, two
rotators at once, a rotator that dies holding a lease, the rotator's token used for anything else, its revocation,
and the generic command hook."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from tests.support import rotation
from tests.support.rotation import Clocks, PasswordCluster, RotationWorld, can_connect, current, rotation_world
from vault.cli.main import main
from vault.cli.rotation_hook import CommandHooks
from vault.cli.rotator import Rotator, RotatorSettings
from vault.client import Client
from vault.errors import InvalidToken, Unauthenticated, Unauthorized, VaultError
from vault.macaroon import decode_token
from vault.store.connection_document import ConnectionDocument

pg, rw = rotation.pg, rotation.rw  # the fixtures: a password-checking cluster, the world

DAY = 86400


async def _due_now(rw: RotationWorld, name: str = "db/url", **kw: object) -> None:
    async with rw.owner_client() as c:
        if kw.get("target", "postgres") == "postgres":
            kw.setdefault("admin_secret", "db/admin")
        kw.setdefault("target", "postgres")
        await c.rotation.set_policy("prod", name, every_seconds=30 * DAY, **kw)  # type: ignore[arg-type]
        await c.rotation.rotate_now("prod", name)


async def _poll(client: Client, holder: str = "r1", **kw: object) -> Rotator:
    rotator = Rotator(client, RotatorSettings(vaults=("prod",), holder=holder, **kw))  # type: ignore[arg-type]
    try:
        await rotator.run_once()
    finally:
        await rotator.close()
    return rotator


async def test_a_refusing_target_leaves_current_untouched_is_retried_with_backoff_and_recovers(
    rw: RotationWorld,
) -> None:
    version, working = await current(rw)
    admin = rw.roles.doc(rw.roles.admin, rw.roles.admin_password).render()
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/admin", rw.roles.doc(rw.roles.admin, "wrong-password").render())
    await _due_now(rw)
    clocks = Clocks(rw)
    token = await rw.rotator_token("db/url")
    async with rw.client_with(token, clock=clocks) as client:
        rotator = await _poll(client)
        assert (rotator.promoted, rotator.failed) == (0, 1)
        assert await current(rw) == (version, working) and await can_connect(working)
        async with rw.owner_client(clock=clocks) as c:
            status = await c.rotation.show("prod", "db/url")
            failures = (await c.store.audit(secret="db/url", outcome="error"))["events"]
        assert status.attempt == 1 and status.rotations == 0 and status.step == "created"
        assert status.last_failure is not None and "password authentication failed" in status.last_failure
        assert "wrong-password" not in status.last_failure
        assert [e["action"] for e in failures] == ["rotation.step.set"]
        assert failures[0]["detail"]["reason"] == status.last_failure

        # Backoff: not retried at once, retried 30 s later (and failing again while the admin secret is wrong).
        assert (await _poll(client)).failed == 0
        clocks.shift(31)
        assert (await _poll(client)).failed == 1
        async with rw.owner_client(clock=clocks) as c:
            assert (await c.rotation.show("prod", "db/url")).attempt == 2
            await c.store.write_secret("prod", "db/admin", admin)  # the operator fixes it
        clocks.shift(61)
        assert (await _poll(client)).promoted == 1
    new_version, rotated = await current(rw)
    assert new_version > version and await can_connect(rotated) and not await can_connect(working)
    async with rw.owner_client(clock=clocks) as c:
        status = await c.rotation.show("prod", "db/url")
        meta = await c.store.metadata("prod", "db/url")
    assert status.attempt == 0 and status.rotations == 1 and status.last_failure is not None
    assert [v.version for v in meta.versions if v.stage == "pending"] == []  # the failed attempts' pending: gone


async def test_a_missing_role_fails_at_set_and_changes_nothing(rw: RotationWorld) -> None:
    ghost = rw.roles.doc(f"rot_ghost_{secrets.token_hex(3)}", "whatever-it-was").render()
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/ghost", ghost)
    await _due_now(rw, "db/ghost")
    async with rw.client_with(await rw.rotator_token("db/ghost")) as client:
        assert (await _poll(client)).failed == 1
    async with rw.owner_client() as c:
        status = await c.rotation.show("prod", "db/ghost")
        assert (await c.store.read_secret("prod", "db/ghost")).value == ghost
    assert status.last_failure is not None and "does not exist" in status.last_failure


async def test_a_value_rewritten_to_name_another_role_is_not_rotated_and_the_admin_role_is_refused(
    rw: RotationWorld,
) -> None:
    """Writing the secret needs only ``w``: a writer who points its value at the admin's role (or any other)
    must not make the rotator set that role's password and store it where the writer can read it."""
    roles = rw.roles
    await _due_now(rw)
    hijack = roles.doc(roles.admin, "anything").render()
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "db/url", hijack)
    async with rw.client_with(await rw.rotator_token("db/url")) as client:
        assert (await _poll(client)).failed == 1
    assert await can_connect(roles.doc(roles.admin, roles.admin_password))  # the admin's password is untouched
    async with rw.owner_client() as c:
        status = await c.rotation.show("prod", "db/url")
        assert (await c.store.read_secret("prod", "db/url")).value == hijack
        assert status.last_failure is not None and "names another role" in status.last_failure
        with pytest.raises(VaultError) as refused:  # and setting the policy again for that value is refused
            await c.rotation.set_policy("prod", "db/url", target="postgres", every_seconds=DAY, admin_secret="db/admin")
    assert refused.value.status == 409 and "admin secret's role" in refused.value.message


async def test_a_database_that_is_down_fails_at_set_and_the_rotation_recovers_when_it_is_back(
    rw: RotationWorld, pg: PasswordCluster
) -> None:
    version, working = await current(rw)
    await _due_now(rw)
    clocks = Clocks(rw)
    async with rw.client_with(await rw.rotator_token("db/url"), clock=clocks) as client:
        pg.cluster.stop("immediate")
        try:
            assert (await _poll(client, timeout=3)).failed == 1
        finally:
            pg.cluster.start()
        assert await current(rw) == (version, working)
        clocks.shift(31)
        assert (await _poll(client)).promoted == 1
    async with rw.owner_client(clock=clocks) as c:
        status = await c.rotation.show("prod", "db/url")
    assert status.rotations == 1 and status.last_failure is not None and "cannot connect" in status.last_failure
    assert await can_connect((await current(rw))[1])


async def test_two_rotators_rotate_every_due_secret_exactly_once(rw: RotationWorld, pg: PasswordCluster) -> None:
    count = 8
    names = [f"db/app{i}" for i in range(count)]
    roles = [f"rot_many_{secrets.token_hex(3)}_{i}" for i in range(count)]
    su = await pg.superuser()
    try:
        for role in roles:
            await su.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'initial-{role}'")
        async with rw.owner_client() as c:
            for name, role in zip(names, roles, strict=True):
                await c.store.write_secret("prod", name, rw.roles.doc(role, f"initial-{role}").render())
        for name in names:
            await _due_now(rw, name)
        token = await rw.rotator_token(*names)
        async with rw.client_with(token) as one, rw.client_with(token) as two:
            a = Rotator(one, RotatorSettings(vaults=("prod",), holder="rotator-a", batch=3))
            b = Rotator(two, RotatorSettings(vaults=("prod",), holder="rotator-b", batch=3))
            while sum(await asyncio.gather(a.run_once(), b.run_once())):
                pass
            await a.close()
            await b.close()
        assert a.promoted + b.promoted == count and a.failed == b.failed == 0
        async with rw.owner_client() as c:
            statuses = {s.name: s for s in await c.rotation.list_policies("prod")}
            promotes = [
                e
                for e in (await c.store.audit(action="rotation.step.promote", limit=100))["events"]
                if e["secret"] in names
            ]
            for name in names:
                assert statuses[name].rotations == 1
                assert await can_connect(ConnectionDocument.parse((await c.store.read_secret("prod", name)).value))
        assert sorted(e["secret"] for e in promotes) == sorted(names)  # each promoted once, by one rotator
        assert {e["detail"]["holder"] for e in promotes} <= {"rotator-a", "rotator-b"}
    finally:
        for role in roles:
            await su.execute(f"DROP ROLE IF EXISTS {role}")
        await su.close()


async def test_a_dead_rotators_lease_expires_and_another_finishes_the_rotation(rw: RotationWorld) -> None:
    await _due_now(rw)
    clocks = Clocks(rw)
    token = await rw.rotator_token("db/url")
    async with rw.client_with(token, clock=clocks) as client:
        # "dead": claims with a 5 s lease, writes the pending version, and is never heard from again.
        [claimed] = await client.rotation.claim("prod", holder="dead", limit=5, lease_seconds=5)
        pending = await client.rotation.create("prod", "db/url", holder="dead", value="x" * 20, lease_seconds=5)
        assert (await _poll(client, holder="alive")).promoted == 0  # leased: not taken
        clocks.shift(6)
        alive = await _poll(client, holder="alive")
        assert alive.promoted == 1
        # The dead holder, back from the dead, can change nothing any more.
        with pytest.raises(Exception) as late:
            await client.rotation.advance(
                "prod", "db/url", holder="dead", step="set", pending_version=pending.version, lease_seconds=5
            )
        assert getattr(late.value, "status", None) == 409
    assert claimed.name == "db/url"
    version, doc = await current(rw)
    assert version > pending.version and doc.password != "x" * 20 and await can_connect(doc)


async def test_the_rotators_token_opens_nothing_else_and_revoking_it_stops_rotation(rw: RotationWorld) -> None:
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "api/key", "k-123")
    await _due_now(rw)
    token = await rw.rotator_token("db/url")
    async with rw.client_with(token) as r:
        assert (await r.store.read_secret("prod", "db/admin")).value  # read on the admin secret: allowed
        refusals = [
            r.store.read_secret("prod", "db/url"),  # the rotated secret: write, never read
            r.store.read_secret("prod", "api/key"),
            r.store.write_secret("prod", "api/key", "stolen"),
            r.store.write_secret("prod", "db/admin", "stolen"),
            r.store.write_secret("prod", "db/url", "stolen"),  # a plain write: not a rotation operation
            r.store.promote("prod", "db/url"),
            r.store.list_secrets("prod"),
            r.store.batch_read("prod"),
            r.store.mint_token("r"),
            r.rotation.rotate_now("prod", "db/url"),
            r.rotation.show("prod", "db/url"),
        ]
        for call in refusals:
            with pytest.raises(Unauthorized) as refused:
                await call
            assert refused.value.status == 403
    token_id = decode_token(token).token_id
    async with rw.owner_client() as c:
        await c.store.revoke_token(token_id)
    async with rw.client_with(token) as r:
        with pytest.raises((Unauthorized, Unauthenticated, InvalidToken)) as stopped:
            await _poll(r)
        assert "revoked" in stopped.value.message
    async with rw.owner_client() as c:
        assert (await c.rotation.show("prod", "db/url")).rotations == 0


HOOK = """#!/bin/sh
body=$(cat)
echo "$1 $body" >> {log}
if [ -f {fail} ]; then echo "the target said no to $1" >&2; exit 3; fi
"""


async def test_the_command_hook_is_run_for_set_and_test_with_the_pending_value(
    rw: RotationWorld, tmp_path: Path
) -> None:
    log, fail, hook = tmp_path / "hook.log", tmp_path / "fail", tmp_path / "hook.sh"
    hook.write_text(HOOK.format(log=log, fail=fail))
    hook.chmod(0o700)
    async with rw.owner_client() as c:
        await c.store.write_secret("prod", "api/key", "k-original")
    await _due_now(rw, "api/key", target="command", hook="deploy")
    token = await rw.rotator_token("api/key")
    clocks = Clocks(rw)
    async with rw.client_with(token, clock=clocks) as client:
        fail.touch()
        assert (await _poll(client, hooks={"deploy": hook})).failed == 1
        async with rw.owner_client(clock=clocks) as c:
            status = await c.rotation.show("prod", "api/key")
            assert (await c.store.read_secret("prod", "api/key")).value == "k-original"
        assert status.last_failure is not None and "the target said no to set" in status.last_failure
        fail.unlink()
        clocks.shift(31)
        assert (await _poll(client, hooks={"deploy": hook})).promoted == 1
        # A rotator without the hook fails the rotation rather than running anything else.
        async with rw.owner_client(clock=clocks) as c:
            await c.rotation.rotate_now("prod", "api/key")
        assert (await _poll(client)).failed == 1
    async with rw.owner_client(clock=clocks) as c:
        value = (await c.store.read_secret("prod", "api/key")).value
        status = await c.rotation.show("prod", "api/key")
    assert status.last_failure is not None and "no hook 'deploy'" in status.last_failure
    lines = log.read_text().splitlines()
    steps = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in lines]
    assert [s for s, _ in steps] == ["set", "set", "test"]
    assert steps[-1][1]["value"] == value and steps[-1][1]["secret"] == "api/key" and len(value) == 32


def test_a_hook_is_an_absolute_path_never_a_name_looked_up_in_path() -> None:
    with pytest.raises(SystemExit) as refused:
        main(["serve", "rotator", "--vault", "prod", "--hook", "deploy=rotate-key"])
    assert "absolute path" in str(refused.value.code)
    with pytest.raises(ValueError, match="absolute path"):
        CommandHooks({"deploy": Path("bin/rotate-key")}, timeout=1)
    assert CommandHooks({"deploy": Path("/usr/local/bin/rotate-key")}, timeout=1)


async def test_a_failed_step_is_counted_in_the_stores_metrics(database_url: str, pg: PasswordCluster) -> None:
    import aiohttp

    async with rotation_world(database_url, pg, metrics_token="scrape-me-0123456789") as world:
        async with world.owner_client() as c:
            await c.store.write_secret("prod", "db/admin", world.roles.doc(world.roles.admin, "wrong").render())
        await _due_now(world)
        async with world.client_with(await world.rotator_token("db/url")) as client:
            assert (await _poll(client)).failed == 1
        headers = {"Authorization": "Bearer scrape-me-0123456789"}
        async with aiohttp.ClientSession() as http, http.get(world.h.store_url + "/metrics", headers=headers) as r:
            text = await r.text()
    counted = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("cvault_rotation_steps_total{")
    }
    assert counted == {
        'cvault_rotation_steps_total{outcome="ok",step="create"}': 1.0,
        'cvault_rotation_steps_total{outcome="error",step="set"}': 1.0,
    }
