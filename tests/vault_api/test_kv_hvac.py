"""The real ``hvac`` client against the running store's Vault-compatible API (``<store>/vault``).

hvac is synchronous (requests); each call runs in a thread while the store serves
on a real port in the test's loop. The mount is ``acme/prod``: org slug ``acme``,
vault ``prod`` (the ``world`` fixture).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import pytest

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from vault.storage.pool import Pool
from vault.web.store.vault_kv import CAS_MISMATCH

T = TypeVar("T")
MOUNT = "acme/prod"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def client(w: EnrolledOrg, token: str | None = None, **options: Any) -> hvac.Client:
    return hvac.Client(url=w.h.store_url + "/vault", token=w.bundle if token is None else token, **options)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    def run() -> T:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return fn(*args, **kwargs)

    return await asyncio.to_thread(run)


def kv(c: hvac.Client) -> Any:
    return c.secrets.kv.v2


async def put(c: hvac.Client, path: str, secret: dict[str, Any], cas: int | None = None) -> Any:
    return await call(kv(c).create_or_update_secret, path, secret, cas=cas, mount_point=MOUNT)


async def raw(
    w: EnrolledOrg, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, str, Any]:
    headers = {"X-Vault-Token": w.bundle if token is None else token} if token != "" else {}
    url = w.h.store_url + "/vault" + path
    async with w.h.http.request(method, url, json=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, resp.headers.get("Content-Type", ""), (await resp.json()) if text else None


# -- the hvac calls of the acceptance list ----------------------------------------------


async def test_is_authenticated_and_lookup_self(world: EnrolledOrg) -> None:
    c = client(world)
    assert await call(c.is_authenticated) is True
    info = (await call(c.lookup_token))["data"]
    assert info["policies"] == ["rwcdCa"]
    assert info["meta"]["org"] == str(world.org)
    assert info["renewable"] is False
    # data.id is the token as sent (Vault Agent and node-vault-client send it on); accessor its id.
    assert info["id"] == world.bundle
    assert len(info["accessor"]) == 36 and info["accessor"] != info["id"]
    assert info["type"] == "service"
    # The bundle's org discharge has a validity window: the token expires with it.
    assert info["expire_time"] and 0 < info["ttl"] <= world.h.store_config.org_discharge_ttl


async def test_bad_token_is_not_authenticated(world: EnrolledOrg) -> None:
    root_only = world.root  # the store token without its org discharge
    for token in ("cv1_garbage", root_only, world.auth):
        assert await call(client(world, token).is_authenticated) is False, token
    status, content_type, body = await raw(world, "GET", "/v1/auth/token/lookup-self", "cv1_garbage")
    assert (status, content_type, body) == (403, "application/json", {"errors": ["permission denied"]})
    status, content_type, body = await raw(world, "GET", "/v1/auth/token/lookup-self", "")
    assert (status, body) == (403, {"errors": ["permission denied"]})


async def test_create_or_update_secret_with_and_without_cas(world: EnrolledOrg) -> None:
    c = client(world)
    first = await put(c, "db/creds", {"user": "app", "password": "one"})
    assert first["data"]["version"] == 1 and first["data"]["destroyed"] is False
    second = await put(c, "db/creds", {"user": "app", "password": "two"}, cas=1)
    assert second["data"]["version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter did not match"):
        await put(c, "db/creds", {"password": "three"}, cas=1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        await put(c, "db/new", {"a": "b"}, cas=5)
    assert (await put(c, "db/new", {"a": "b"}, cas=0))["data"]["version"] == 1
    status, content_type, body = await raw(
        world, "POST", f"/v1/{MOUNT}/data/db/creds", body={"options": {"cas": 1}, "data": {"x": "y"}}
    )
    assert (status, content_type) == (400, "application/json")
    assert body == {"errors": ["check-and-set parameter did not match the current version"]}


async def test_read_secret_version_latest_and_pinned(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "api/key", {"token": "v1"})
    await put(c, "api/key", {"token": "v2"})
    latest = await call(kv(c).read_secret_version, "api/key", mount_point=MOUNT)
    assert latest["data"]["data"] == {"token": "v2"}
    assert latest["data"]["metadata"]["version"] == 2
    assert latest["data"]["metadata"]["deletion_time"] == ""
    pinned = await call(kv(c).read_secret_version, "api/key", version=1, mount_point=MOUNT)
    assert pinned["data"]["data"] == {"token": "v1"} and pinned["data"]["metadata"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidPath):
        await call(kv(c).read_secret_version, "api/missing", mount_point=MOUNT)
    status, content_type, body = await raw(world, "GET", f"/v1/{MOUNT}/data/api/missing")
    assert (status, content_type, body) == (404, "application/json", {"errors": []})


async def test_list_secrets_with_the_list_method_and_with_get(world: EnrolledOrg) -> None:
    c = client(world)
    for name in ("app/db", "app/api/key", "app/api/cert", "top"):
        await put(c, name, {"v": name})
    # hvac's default sends the HTTP method LIST; strict_http sends GET ?list=true.
    for cl in (c, client(world, strict_http=True)):
        assert (await call(kv(cl).list_secrets, "", mount_point=MOUNT))["data"]["keys"] == ["app/", "top"]
        assert (await call(kv(cl).list_secrets, "app", mount_point=MOUNT))["data"]["keys"] == ["api/", "db"]
        assert (await call(kv(cl).list_secrets, "app/api/", mount_point=MOUNT))["data"]["keys"] == ["cert", "key"]
        with pytest.raises(hvac.exceptions.InvalidPath):
            await call(kv(cl).list_secrets, "nothing", mount_point=MOUNT)


async def test_read_secret_metadata(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "meta/s", {"v": "1"})
    await put(c, "meta/s", {"v": "2"})
    meta = (await call(kv(c).read_secret_metadata, "meta/s", mount_point=MOUNT))["data"]
    assert meta["current_version"] == 2 and meta["oldest_version"] == 1
    assert meta["max_versions"] == 10 and meta["cas_required"] is False and meta["custom_metadata"] is None
    assert set(meta["versions"]) == {"1", "2"}
    assert meta["versions"]["1"]["deletion_time"] == "" and meta["versions"]["1"]["destroyed"] is False
    assert meta["created_time"].endswith("Z") and meta["updated_time"].endswith("Z")


async def test_delete_and_undelete_secret_versions(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "dv/s", {"v": "1"})
    await put(c, "dv/s", {"v": "2"})
    assert (await call(kv(c).delete_secret_versions, "dv/s", [1], mount_point=MOUNT)).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        await call(kv(c).read_secret_version, "dv/s", version=1, mount_point=MOUNT)
    meta = (await call(kv(c).read_secret_metadata, "dv/s", mount_point=MOUNT))["data"]
    assert meta["versions"]["1"]["deletion_time"] != "" and meta["versions"]["2"]["deletion_time"] == ""
    assert (await call(kv(c).undelete_secret_versions, "dv/s", [1], mount_point=MOUNT)).status_code == 204
    back = await call(kv(c).read_secret_version, "dv/s", version=1, mount_point=MOUNT)
    assert back["data"]["data"] == {"v": "1"}


async def test_destroy_secret_versions(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "ds/s", {"v": "1"})
    await put(c, "ds/s", {"v": "2"})
    assert (await call(kv(c).destroy_secret_versions, "ds/s", [1], mount_point=MOUNT)).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        await call(kv(c).read_secret_version, "ds/s", version=1, mount_point=MOUNT)
    meta = (await call(kv(c).read_secret_metadata, "ds/s", mount_point=MOUNT))["data"]
    assert meta["versions"]["1"]["destroyed"] is True and meta["versions"]["2"]["destroyed"] is False
    # Undeleting a destroyed version brings nothing back.
    await call(kv(c).undelete_secret_versions, "ds/s", [1], mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.InvalidPath):
        await call(kv(c).read_secret_version, "ds/s", version=1, mount_point=MOUNT)


async def test_delete_metadata_and_all_versions(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "gone/s", {"v": "1"})
    await put(c, "gone/s", {"v": "2"})
    assert (await call(kv(c).delete_metadata_and_all_versions, "gone/s", mount_point=MOUNT)).status_code == 204
    for fn in (kv(c).read_secret_version, kv(c).read_secret_metadata):
        with pytest.raises(hvac.exceptions.InvalidPath):
            await call(fn, "gone/s", mount_point=MOUNT)
    r = await world.h.store("GET", world.secret("gone/s"), world.bundle)
    assert r.status == 404


# -- the data mapping, audit, caveats ----------------------------------------------------------


async def test_values_map_between_vault_and_native(world: EnrolledOrg) -> None:
    h, c = world.h, client(world)
    # A plain string written natively reads as {"value": ...}; a JSON object as itself.
    assert (await h.store("PUT", world.secret("plain"), world.bundle, {"value": "hunter2"})).status == 200
    assert (await h.store("PUT", world.secret("obj"), world.bundle, {"value": '{"a": 1}'})).status == 200
    assert (await call(kv(c).read_secret_version, "plain", mount_point=MOUNT))["data"]["data"] == {"value": "hunter2"}
    assert (await call(kv(c).read_secret_version, "obj", mount_point=MOUNT))["data"]["data"] == {"a": 1}
    # {"value": s} is stored as s; anything else as JSON text; every object round-trips.
    cases: list[tuple[dict[str, Any], str]] = [
        ({"value": "x"}, "x"),
        ({"value": '{"a":1}'}, '{"value":"{\\"a\\":1}"}'),
        ({"value": "x", "other": "y"}, '{"value":"x","other":"y"}'),
        ({"n": 1, "nested": {"k": [1, "two"]}}, '{"n":1,"nested":{"k":[1,"two"]}}'),
        ({"value": 5}, '{"value":5}'),
    ]
    for i, (data, stored) in enumerate(cases):
        await put(c, f"map/{i}", data)
        assert (await h.store("GET", world.secret(f"map/{i}"), world.bundle)).body["value"] == stored
        assert (await call(kv(c).read_secret_version, f"map/{i}", mount_point=MOUNT))["data"]["data"] == data


async def test_audit_events_match_the_native_api(world: EnrolledOrg, pool: Pool) -> None:
    c = client(world)
    await put(c, "aud/s", {"v": "1"})
    seq = await audit_head(pool)
    await call(kv(c).read_secret_version, "aud/s", mount_point=MOUNT)
    r = await world.h.store("GET", world.secret("aud/s"), world.bundle)
    assert r.status == 200
    assert await call(client(world, world.root).is_authenticated) is False  # no discharge: denied, audited
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(kv(client(world, world.root)).read_secret_version, "aud/s", mount_point=MOUNT)
    events = await audit_since(pool, seq)
    assert summary(events) == [
        ("secrets.read", "ok", "aud/s", 1),
        ("secrets.read", "ok", "aud/s", 1),
        ("tokens.lookup", "denied", None, None),
        ("secrets.read", "denied", "aud/s", None),
    ]
    vault_api, native = events[0], events[1]
    for key in ("org", "vault", "token_id", "lineage", "actor", "client_addr"):
        assert vault_api[key] == native[key], key
    assert events[3]["detail"]["code"] == "discharge_required"


async def test_caveats_apply_a_read_only_bundle_cannot_write(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await put(client(world), "ro/s", {"v": "1"})
    read_only = await h.store_bundle(await h.mint(world.bundle, world.org, mask="r"), world.auth)
    c = client(world, read_only)
    assert await call(c.is_authenticated) is True
    assert (await call(c.lookup_token))["data"]["policies"] == ["r"]
    assert (await call(kv(c).read_secret_version, "ro/s", mount_point=MOUNT))["data"]["data"] == {"v": "1"}
    seq = await audit_head(pool)
    with pytest.raises(hvac.exceptions.Forbidden):
        await put(c, "ro/s", {"v": "2"})
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(kv(c).destroy_secret_versions, "ro/s", [1], mount_point=MOUNT)
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.write", "denied", "ro/s", None),
        ("secrets.destroy", "denied", "ro/s", None),
    ]
    # A token scoped to another vault passes lookup-self but reads nothing here.
    other = await h.store_bundle(await h.mint(world.bundle, world.org, mask="r", vaults={"staging": "r"}), world.auth)
    assert await call(client(world, other).is_authenticated) is True
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(kv(client(world, other)).read_secret_version, "ro/s", mount_point=MOUNT)


async def test_mounts_paths_and_methods(world: EnrolledOrg) -> None:
    status, _, body = await raw(world, "GET", "/v1/sys/internal/ui/mounts/acme/prod/db/url")
    assert status == 200 and body["data"]["options"] == {"version": "2"} and body["data"]["path"] == "acme/prod/"
    # An org slug no enrolment recorded is no mount: Vault's 403, token or not.
    for token in (None, ""):
        status, _, body = await raw(world, "GET", "/v1/sys/internal/ui/mounts/nosuchorg/prod/db/url", token)
        assert (status, body) == (403, {"errors": ["permission denied"]})
    # A path under no mount (no such slug, no such vault) is Vault's 403 for a token without access there; a
    # slug this token's org does not have is the same 403 as for a token of another org: mounts do not tell
    # enrolled slugs apart (tests/store/test_org_slugs.py).
    for path in ("/v1/nosuchorg/prod/data/x", "/v1/acme/nosuchvault/data/x", "/v1/nosuchvault/data/x"):
        status, content_type, body = await raw(world, "GET", path)
        assert (status, content_type, body) == (403, "application/json", {"errors": ["permission denied"]}), path
    status, _, body = await raw(world, "GET", "/v1/acme/prod/nope/x")
    assert (status, body) == (404, {"errors": []})
    status, _, body = await raw(world, "OPTIONS", "/v1/acme/prod/data/x")
    assert (status, body) == (405, {"errors": ["unsupported operation"]})
    status, _, body = await raw(world, "PATCH", "/v1/acme/prod/data/x", body={"data": {}})
    assert (status, body) == (415, {"errors": ["PATCH needs Content-Type: application/merge-patch+json"]})
    status, _, body = await raw(world, "POST", "/v1/acme/prod/data/x", body={"data": "not an object"})
    assert status == 400 and body == {"errors": ["request body: Expected `object`, got `str` - at `$.data`"]}
    # The native API keeps its own error shape.
    r = await world.h.store("GET", world.secret("missing"), world.bundle)
    assert r.status == 404 and r.code == "not_found"


# -- issue 15: the rest of KV version 2 ----------------------------------------------------------


async def test_versions_as_strings_and_comma_separated(world: EnrolledOrg) -> None:
    # The Vault CLI sends `kv delete -versions=1` as {"versions": ["1"]}; Vault's field takes "1,2" too.
    c = client(world)
    for v in range(4):
        await put(c, "vs/s", {"v": str(v)})
    assert (await raw(world, "POST", f"/v1/{MOUNT}/delete/vs/s", body={"versions": ["1"]}))[0] == 204
    assert (await raw(world, "PUT", f"/v1/{MOUNT}/delete/vs/s", body={"versions": "2,3"}))[0] == 204
    meta = (await call(kv(c).read_secret_metadata, "vs/s", mount_point=MOUNT))["data"]["versions"]
    assert [bool(meta[str(n)]["deletion_time"]) for n in (1, 2, 3, 4)] == [True, True, True, False]
    assert (await raw(world, "POST", f"/v1/{MOUNT}/undelete/vs/s", body={"versions": ["1,2", 3]}))[0] == 204
    assert (await raw(world, "POST", f"/v1/{MOUNT}/destroy/vs/s", body={"versions": ["4"]}))[0] == 204
    meta = (await call(kv(c).read_secret_metadata, "vs/s", mount_point=MOUNT))["data"]["versions"]
    assert [meta[str(n)]["deletion_time"] for n in (1, 2, 3)] == ["", "", ""] and meta["4"]["destroyed"] is True
    for bad in (["x"], [], "", ["1", None], [True], ["-1"], "1;2"):
        status, _, body = await raw(world, "POST", f"/v1/{MOUNT}/delete/vs/s", body={"versions": bad})
        assert status == 400 and "versions must be" in body["errors"][0], bad


async def test_delete_latest_version_and_the_deleted_read_body(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "dl/s", {"v": "1"})
    await put(c, "dl/s", {"v": "2"})
    before = (await call(kv(c).read_secret_metadata, "dl/s", mount_point=MOUNT))["data"]
    assert (await call(kv(c).delete_latest_version_of_secret, "dl/s", mount_point=MOUNT)).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        await call(kv(c).read_secret_version, "dl/s", mount_point=MOUNT, raise_on_deleted_version=True)
    # raise_on_deleted_version=False: Vault's 404 body, with the version's real deletion time.
    deleted = await call(kv(c).read_secret_version, "dl/s", mount_point=MOUNT, raise_on_deleted_version=False)
    md = deleted["data"]["metadata"]
    assert deleted["data"]["data"] is None and md["version"] == 2 and md["destroyed"] is False
    assert md["deletion_time"].endswith("Z")
    assert dt.datetime.fromisoformat(md["deletion_time"]) >= dt.datetime.fromisoformat(before["updated_time"])
    meta = (await call(kv(c).read_secret_metadata, "dl/s", mount_point=MOUNT))["data"]
    assert meta["versions"]["2"]["deletion_time"] == md["deletion_time"]
    status, content_type, body = await raw(world, "GET", f"/v1/{MOUNT}/data/dl/s?version=2")
    assert (status, content_type) == (404, "application/json") and body["data"]["metadata"] == md
    # Version 1 is untouched; a destroyed version is a 404 with destroyed: true.
    assert (await call(kv(c).read_secret_version, "dl/s", version=1, mount_point=MOUNT))["data"]["data"] == {"v": "1"}
    await call(kv(c).destroy_secret_versions, "dl/s", [1], mount_point=MOUNT)
    status, _, body = await raw(world, "GET", f"/v1/{MOUNT}/data/dl/s?version=1")
    assert status == 404 and body["data"]["metadata"]["destroyed"] is True
    # A version that never existed is the plain 404.
    assert await raw(world, "GET", f"/v1/{MOUNT}/data/dl/s?version=9") == (404, "application/json", {"errors": []})
    # Deleting a secret that is not there is done, as in OpenBao (tests/vault_api/test_conformance.py).
    assert (await call(kv(c).delete_latest_version_of_secret, "dl/none", mount_point=MOUNT)).status_code == 204


async def test_patch_merges_into_the_current_version(world: EnrolledOrg, pool: Pool) -> None:
    c = client(world)
    await put(c, "pt/s", {"user": "app", "password": "one", "nested": {"a": 1, "b": 2}})
    # hvac's patch: read, merge, write.
    assert (await call(kv(c).patch, "pt/s", {"password": "two"}, mount_point=MOUNT))["data"]["version"] == 2
    # Vault's PATCH: an RFC 7386 merge patch (null removes), with cas.
    url = world.h.store_url + f"/vault/v1/{MOUNT}/data/pt/s"
    headers = {"X-Vault-Token": world.bundle, "Content-Type": "application/merge-patch+json"}
    body = json.dumps({"data": {"user": None, "nested": {"b": None, "c": 3}}, "options": {"cas": 2}})
    seq = await audit_head(pool)
    async with world.h.http.patch(url, data=body, headers=headers) as resp:
        assert resp.status == 200 and (await resp.json())["data"]["version"] == 3
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.read", "ok", "pt/s", 2),
        ("secrets.write", "ok", "pt/s", 3),
    ]
    latest = await call(kv(c).read_secret_version, "pt/s", mount_point=MOUNT, raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "two", "nested": {"a": 1, "c": 3}}
    async with world.h.http.patch(url, data=body, headers=headers) as resp:  # cas 2 is stale now
        assert resp.status == 400 and (await resp.json()) == {"errors": [CAS_MISMATCH]}
    async with world.h.http.patch(url.replace("pt/s", "pt/none"), data=body, headers=headers) as resp:
        assert resp.status == 404
    # A write-only token cannot patch: a patch reads.
    write_only = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="w"), world.auth)
    async with world.h.http.patch(url, data=body, headers={**headers, "X-Vault-Token": write_only}) as resp:
        assert resp.status == 403


async def test_update_metadata_and_cas_required(world: EnrolledOrg) -> None:
    c = client(world)
    await put(c, "md/s", {"v": "1"})
    await call(
        kv(c).update_metadata,
        "md/s",
        max_versions=3,
        cas_required=True,
        delete_version_after="1h30m",
        custom_metadata={"owner": "team-a"},
        mount_point=MOUNT,
    )
    meta = (await call(kv(c).read_secret_metadata, "md/s", mount_point=MOUNT))["data"]
    assert (meta["max_versions"], meta["cas_required"], meta["delete_version_after"]) == (3, True, "1h30m0s")
    assert meta["custom_metadata"] == {"owner": "team-a"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        await put(c, "md/s", {"v": "2"})
    for n in (2, 3, 4, 5):
        await put(c, "md/s", {"v": str(n)}, cas=n - 1)
    meta = (await call(kv(c).read_secret_metadata, "md/s", mount_point=MOUNT))["data"]
    assert sorted(meta["versions"]) == ["3", "4", "5"]  # max_versions trims on the next writes
    # PUT, partial: only the fields given change; custom_metadata is replaced when given.
    status, _, _ = await raw(world, "PUT", f"/v1/{MOUNT}/metadata/md/s", body={"cas_required": False})
    assert status == 204
    meta = (await call(kv(c).read_secret_metadata, "md/s", mount_point=MOUNT))["data"]
    assert (meta["max_versions"], meta["cas_required"], meta["custom_metadata"]) == (3, False, {"owner": "team-a"})
    # A metadata write for a new secret creates it without versions (External Secrets' PushSecret does).
    assert (await raw(world, "POST", f"/v1/{MOUNT}/metadata/md/new", body={"custom_metadata": {"a": "b"}}))[0] == 204
    meta = (await call(kv(c).read_secret_metadata, "md/new", mount_point=MOUNT))["data"]
    assert meta["current_version"] == 0 and meta["versions"] == {} and meta["custom_metadata"] == {"a": "b"}
    assert (await put(c, "md/new", {"x": "y"}))["data"]["version"] == 1
    for bad in (
        {"max_versions": -1},
        {"max_versions": "3x"},
        {"cas_required": "yes"},
        {"delete_version_after": "1d"},
        {"custom_metadata": {"k": 1}},
        {"custom_metadata": {f"k{i}": "v" for i in range(65)}},
    ):
        status, _, body = await raw(world, "POST", f"/v1/{MOUNT}/metadata/md/s", body=bad)
        assert status == 400 and body["errors"], bad


async def test_mount_config_read_and_write(world: EnrolledOrg) -> None:
    c = client(world)
    config = (await call(kv(c).read_configuration, mount_point=MOUNT))["data"]
    assert config == {"cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    await call(kv(c).configure, max_versions=2, cas_required=True, delete_version_after="90s", mount_point=MOUNT)
    config = (await call(kv(c).read_configuration, mount_point=MOUNT))["data"]
    assert config == {"cas_required": True, "delete_version_after": "1m30s", "max_versions": 2}
    # The mount's cas_required applies to every secret; its max_versions to new ones.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        await put(c, "cfg/s", {"v": "1"})
    for n in range(3):
        await put(c, "cfg/s", {"v": str(n)}, cas=n)
    meta = (await call(kv(c).read_secret_metadata, "cfg/s", mount_point=MOUNT))["data"]
    assert meta["max_versions"] == 2 and sorted(meta["versions"]) == ["2", "3"]
    # Configuring a mount is control ('C'); an operator token ('rwcd') may read it but not change it.
    operator = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="rwcd"), world.auth)
    assert (await call(kv(client(world, operator)).read_configuration, mount_point=MOUNT))["data"]["max_versions"] == 2
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(kv(client(world, operator)).configure, max_versions=5, mount_point=MOUNT)
