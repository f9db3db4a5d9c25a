"""The Vault API's ``sys/`` and ``auth/token/`` routes with the real ``hvac`` client: health, seal status,
mounts, token lookup and renewal."""

from __future__ import annotations

import asyncpg
import hvac
import hvac.exceptions
import pytest

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from tests.vault_api.test_kv_hvac import MOUNT, call, client, kv, put, raw
from vault.storage.pool import Pool
from vault.web.store.vault_sys import VERSION

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_health_and_seal_status_need_no_token(world: EnrolledOrg) -> None:
    anonymous = hvac.Client(url=world.h.store_url + "/vault")
    health = await call(anonymous.sys.read_health_status, method="GET")
    assert health["initialized"] is True and health["sealed"] is False and health["standby"] is False
    assert health["version"] == VERSION and isinstance(health["server_time_utc"], int)
    head = await call(anonymous.sys.read_health_status, method="HEAD")
    assert head.status_code == 200 and head.text == ""
    # Vault's query parameters choose the status code (load balancers use them).
    status, _, body = await raw(world, "GET", "/v1/sys/health?activecode=204&standbyok=true", "")
    assert status == 204
    status, _, body = await raw(world, "GET", "/v1/sys/health?activecode=99", "")
    assert status == 400 and body["errors"]
    assert await call(anonymous.sys.is_sealed) is False
    seal = await call(anonymous.sys.read_seal_status)
    assert (seal["sealed"], seal["initialized"], seal["t"], seal["n"], seal["type"]) == (False, True, 1, 1, "shamir")
    leader = await call(anonymous.sys.read_leader_status)
    assert leader["ha_enabled"] is False


async def test_health_reports_sealed_when_the_database_is_gone(world: EnrolledOrg, postgres_server: str) -> None:
    # The store is "sealed" exactly when it is not ready: here its database refuses every connection.
    name = world.h.store_config.database_url.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        anonymous = hvac.Client(url=world.h.store_url + "/vault")
        reply = await call(anonymous.sys.read_health_status, method="GET")  # hvac: the raw reply unless 200
        assert reply.status_code == 503 and reply.json()["sealed"] is True
        assert (await raw(world, "GET", "/v1/sys/health", ""))[0] == 503
        assert (await raw(world, "GET", "/v1/sys/health?sealedcode=200", ""))[0] == 200
        assert (await call(anonymous.sys.read_seal_status))["sealed"] is True
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_mounts_list_the_vaults_the_token_can_see(world: EnrolledOrg) -> None:
    h = world.h
    assert (await h.store("POST", f"/v1/orgs/{world.org}/vaults", world.bundle, {"name": "staging"})).status == 201
    c = client(world)
    listed = await call(c.sys.list_mounted_secrets_engines)
    # Each vault in both forms: the two-segment mount and the one-segment mount of the token's own org.
    assert set(listed["data"]) == {"acme/prod/", "acme/staging/", "prod/", "staging/"}
    assert listed["data"]["acme/prod/"]["type"] == "kv" and listed["data"]["acme/prod/"]["options"] == {"version": "2"}
    assert listed["acme/prod/"] == listed["data"]["acme/prod/"]  # Vault repeats them at the top level
    scoped = await h.store_bundle(await h.mint(world.bundle, world.org, mask="r", vaults={"staging": "r"}), world.auth)
    # sys/mounts is Vault's operator table: it needs C; sys/internal/ui/mounts lists the same for any live token.
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(client(world, scoped).sys.list_mounted_secrets_engines)
    status, _, body = await raw(world, "GET", "/v1/sys/internal/ui/mounts", scoped)
    assert status == 200 and set(body["data"]["secret"]) == {"acme/staging/", "staging/"} and body["data"]["auth"] == {}
    for token in ("", world.root, "cv1_garbage"):
        assert (await raw(world, "GET", "/v1/sys/mounts", token))[:2] == (403, "application/json")
        assert (await raw(world, "GET", "/v1/sys/internal/ui/mounts", token))[0] == 403


async def test_lookup_self_id_is_usable_as_the_token(world: EnrolledOrg) -> None:
    # What Vault Agent's token_file auto-auth and node-vault-client do: look up, then use data.id.
    info = (await call(client(world).auth.token.lookup_self))["data"]
    again = client(world, info["id"])
    await put(again, "lk/s", {"v": "1"})
    assert (await call(kv(again).read_secret_version, "lk/s", mount_point=MOUNT, raise_on_deleted_version=True))[
        "data"
    ]["data"] == {"v": "1"}
    status, _, body = await raw(world, "POST", "/v1/auth/token/lookup-self", body={})
    assert status == 200 and body["data"]["id"] == world.bundle


async def test_renew_self_answers_not_renewable(world: EnrolledOrg, pool: Pool) -> None:
    seq = await audit_head(pool)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="lease is not renewable"):
        await call(client(world).auth.token.renew_self)
    status, content_type, body = await raw(world, "PUT", "/v1/auth/token/renew-self", body={"increment": 60})
    assert (status, content_type, body) == (400, "application/json", {"errors": ["lease is not renewable"]})
    with pytest.raises(hvac.exceptions.Forbidden):  # a dead token is refused, as anywhere
        await call(client(world, world.root).auth.token.renew_self)
    assert summary(await audit_since(pool, seq)) == [
        ("tokens.renew", "error", None, None),
        ("tokens.renew", "error", None, None),
        ("tokens.renew", "denied", None, None),
    ]
