"""The real OpenBao CLI (``bao``, the open-source Vault CLI) against the store's Vault-compatible API.

Each test runs ``bao`` commands one by one, as a user of the Vault CLI would, with a
store bundle as ``BAO_TOKEN`` and ``<store>/vault`` as ``BAO_ADDR``: the two-segment
mount ``acme/prod`` (org slug, vault) and the one-segment mount ``prod`` (the token's org).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bao import Bao
from tests.support.enrolled_org import EnrolledOrg

MOUNT = "acme/prod"


@pytest.fixture
def bao(world: EnrolledOrg, tmp_path: Path) -> Bao:
    return Bao(world.h.store_url + "/vault", world.bundle, tmp_path)


async def test_status_and_token_commands(world: EnrolledOrg, bao: Bao) -> None:
    out = await bao.ok("status")
    assert "Sealed          false" in out and "cvault" in out
    me = await bao.json("token", "lookup", "-format=json")
    assert me["data"]["id"] == world.bundle and me["data"]["renewable"] is False
    status, _out, err = await bao.run("token", "renew")
    assert status == 2 and "lease is not renewable" in err
    # `bao token capabilities` asks sys/capabilities-self; the answer comes from the token's caveats.
    caps = await bao.ok("token", "capabilities", f"{MOUNT}/data/db")
    assert caps.strip() == "create, delete, patch, read, update"
    reader = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="r"), world.auth)
    assert (await bao.ok("token", "capabilities", f"{MOUNT}/data/db", token=reader)).strip() == "read"
    assert (await bao.ok("token", "capabilities", "prod/metadata/db", token=reader)).strip() == "list, read"
    assert (await bao.ok("token", "capabilities", "nope/x/data/db", token=reader)).strip() == "deny"


async def test_kv_commands(world: EnrolledOrg, bao: Bao) -> None:
    await bao.ok("kv", "put", f"-mount={MOUNT}", "db/creds", "password=one")
    put = await bao.json("kv", "put", "-format=json", f"{MOUNT}/db/creds", "password=two")  # no -mount
    assert put["data"]["version"] == 2
    got = await bao.json("kv", "get", "-format=json", f"-mount={MOUNT}", "db/creds")
    assert got["data"]["data"] == {"password": "two"}
    got = await bao.json("kv", "get", "-format=json", "-version=1", f"{MOUNT}/db/creds")
    assert got["data"]["data"] == {"password": "one"}
    assert await bao.json("kv", "list", "-format=json", MOUNT) == ["db/"]
    assert await bao.json("kv", "list", "-format=json", f"{MOUNT}/db") == ["creds"]
    # kv patch: PATCH with a merge patch; -method=rw reads then writes.
    assert (await bao.json("kv", "patch", "-format=json", f"-mount={MOUNT}", "db/creds", "user=app"))["data"][
        "version"
    ] == 3
    await bao.ok("kv", "patch", "-method=rw", f"-mount={MOUNT}", "db/creds", "host=db1")
    got = await bao.json("kv", "get", "-format=json", f"-mount={MOUNT}", "db/creds")
    assert got["data"]["data"] == {"password": "two", "user": "app", "host": "db1"}
    # kv rollback: version 1's data as a new version.
    await bao.ok("kv", "rollback", "-version=1", f"-mount={MOUNT}", "db/creds")
    got = await bao.json("kv", "get", "-format=json", f"-mount={MOUNT}", "db/creds")
    assert got["data"]["data"] == {"password": "one"} and got["data"]["metadata"]["version"] == 5
    # delete, undelete, destroy.
    await bao.ok("kv", "delete", f"-mount={MOUNT}", "db/creds")
    # kv get of a deleted version prints its metadata and exits 0, as against OpenBao.
    deleted = await bao.ok("kv", "get", f"-mount={MOUNT}", "db/creds")
    assert "deletion_time" in deleted and "== Data ==" not in deleted
    await bao.ok("kv", "undelete", "-versions=5", f"-mount={MOUNT}", "db/creds")
    await bao.ok("kv", "delete", "-versions=1,2", f"-mount={MOUNT}", "db/creds")
    await bao.ok("kv", "destroy", "-versions=1", f"-mount={MOUNT}", "db/creds")
    meta = await bao.json("kv", "metadata", "get", "-format=json", f"-mount={MOUNT}", "db/creds")
    versions = meta["data"]["versions"]
    assert versions["1"]["destroyed"] is True and versions["2"]["deletion_time"] and not versions["5"]["deletion_time"]
    # subkeys: the value's keys, not its values.
    sub = await bao.json("read", "-format=json", f"{MOUNT}/subkeys/db/creds")
    assert sub["data"]["subkeys"] == {"password": None}


async def test_kv_metadata_commands(world: EnrolledOrg, bao: Bao) -> None:
    await bao.ok("kv", "put", f"-mount={MOUNT}", "app/key", "k=v")
    await bao.ok(
        "kv", "metadata", "put", "-max-versions=5", "-delete-version-after=1h", "-custom-metadata=team=a",
        f"-mount={MOUNT}", "app/key",
    )  # fmt: skip
    # kv metadata patch: PATCH metadata/ (a merge patch: custom_metadata is merged, not replaced).
    await bao.ok("kv", "metadata", "patch", "-max-versions=6", "-custom-metadata=owner=b", f"-mount={MOUNT}", "app/key")
    meta = (await bao.json("kv", "metadata", "get", "-format=json", f"-mount={MOUNT}", "app/key"))["data"]
    assert meta["max_versions"] == 6 and meta["custom_metadata"] == {"team": "a", "owner": "b"}
    assert meta["delete_version_after"] == "1h0m0s"
    # `bao write` sends every field as a string: max_versions="7".
    await bao.ok("write", f"{MOUNT}/metadata/app/key", "max_versions=7")
    assert (await bao.json("read", "-format=json", f"{MOUNT}/metadata/app/key"))["data"]["max_versions"] == 7
    # The mount's config, through raw write/read (changing it needs 'C', which the root bundle has).
    await bao.ok("write", f"{MOUNT}/config", "max_versions=8", "cas_required=false")
    assert (await bao.json("read", "-format=json", f"{MOUNT}/config"))["data"]["max_versions"] == 8
    # raw list.
    assert await bao.json("list", "-format=json", f"{MOUNT}/metadata") == ["app/"]
    # cas_required: kv put and kv patch without -cas are refused, with -cas accepted.
    await bao.ok("kv", "metadata", "put", "-cas-required=true", f"-mount={MOUNT}", "app/key")
    status, _out, err = await bao.run("kv", "patch", f"-mount={MOUNT}", "app/key", "k=w")
    assert status == 2 and "check-and-set parameter required" in err
    status, _out, err = await bao.run("kv", "put", f"-mount={MOUNT}", "app/key", "k=w")
    assert status == 2 and "check-and-set parameter required" in err
    await bao.ok("kv", "patch", "-cas=1", f"-mount={MOUNT}", "app/key", "k=w")
    # metadata delete: the secret for good; deleting what is not there is done too (Vault's 204).
    await bao.ok("kv", "metadata", "delete", f"-mount={MOUNT}", "app/key")
    await bao.ok("kv", "metadata", "delete", f"-mount={MOUNT}", "app/key")
    status, _out, _err = await bao.run("kv", "metadata", "get", f"-mount={MOUNT}", "app/key")
    assert status == 2


async def test_one_segment_mount(world: EnrolledOrg, bao: Bao) -> None:
    """``prod`` is the token's org's vault: what CLIs that take the first segment as the mount need."""
    await bao.ok("kv", "put", "-mount=prod", "one", "a=1")
    assert (await bao.json("kv", "get", "-format=json", "prod/one"))["data"]["data"] == {"a": "1"}
    await bao.ok("kv", "delete", "-mount=prod", "one")
    # The Vault CLI's undelete takes the last path segment of -mount as the mount, both here and in OpenBao.
    await bao.ok("kv", "undelete", "-versions=1", "-mount=prod", "one")
    got = await bao.json("kv", "get", "-format=json", f"-mount={MOUNT}", "one")  # the same secret
    assert got["data"]["data"] == {"a": "1"}
    mounts = await bao.json("secrets", "list", "-format=json")
    assert {"acme/prod/", "prod/"} <= set(mounts)
    # The Vault API's own top-level paths cannot be vaults: creating one says why.
    for name in ("sys", "auth", "identity", "cubbyhole"):
        r = await world.h.store("POST", f"/v1/orgs/{world.org}/vaults", world.bundle, {"name": name})
        assert r.status == 400 and "reserved" in r.body["error"]["message"], r
    # An unknown vault, an unknown slug: Vault's 403 for a path under no mount.
    for path in ("staging/data/x", "acme/staging/data/x", "nope/prod/data/x"):
        status, _out, err = await bao.run("read", path)
        assert status == 2 and "Code: 403" in err, (path, err)


async def test_a_read_only_token(world: EnrolledOrg, bao: Bao) -> None:
    await bao.ok("kv", "put", f"-mount={MOUNT}", "db", "a=1")
    reader = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="r"), world.auth)
    assert (await bao.json("kv", "get", "-format=json", f"-mount={MOUNT}", "db", token=reader))["data"]["data"] == {
        "a": "1"
    }
    # The mount table is for operators (Vault's sys/mounts needs a policy on it): 403.
    status, _out, err = await bao.run("secrets", "list", token=reader)
    assert status == 2 and "Code: 403" in err
    status, _out, err = await bao.run("kv", "put", f"-mount={MOUNT}", "db", "a=2", token=reader)
    assert status == 2 and "Code: 403" in err
