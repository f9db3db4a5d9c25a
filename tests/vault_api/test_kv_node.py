"""Real npm Vault clients (node-vault, node-vault-client, vault-api) against the store's Vault API.

Each runs as a small script under the machine's Node.js (``tests/node/*.js``), with
the packages ``scripts/install-test-deps`` installs from ``tests/node/package-lock.json``
(``npm ci``). A missing Node.js or package fails these tests: it never skips them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.enrolled_org import EnrolledOrg

NODE = "/usr/bin/node"
SCRIPTS = Path(__file__).resolve().parents[1] / "node"


async def run_node(w: EnrolledOrg, script: str) -> dict[str, Any]:
    assert Path(NODE).exists(), f"{NODE} is missing: install Node.js (scripts/install-test-deps)"
    assert (SCRIPTS / "node_modules").is_dir(), "tests/node/node_modules is missing: run scripts/install-test-deps"
    env = {
        "VAULT_ADDR": w.h.store_url + "/vault",
        "VAULT_TOKEN": w.bundle,
        "MOUNT": "acme/prod",
        "VAULT_NAME": "prod",
        "PATH": "/usr/bin:/bin",
    }
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPTS / script),
        cwd=SCRIPTS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    lines = out.decode().strip().splitlines()
    assert process.returncode == 0, (lines[-1] if lines else "") + err.decode()[-3000:]
    report: dict[str, Any] = json.loads(lines[-1])
    return report


async def test_node_vault(world: EnrolledOrg) -> None:
    r = await run_node(world, "node_vault.js")
    assert (r["write"], r["write2"]) == (1, 2)
    assert r["read"] == {"user": "app", "password": "two"} and r["read_v1"] == {"user": "app", "password": "one"}
    assert r["patch"] == 3  # PATCH, application/merge-patch+json
    assert r["list"] == ["s"]
    assert r["metadata"] == {"current": 3, "versions": ["1", "2", "3"]}
    assert r["delete"] == 404  # DELETE data/: the current version
    assert r["undelete"] == {"user": "app", "extra": "x"}
    assert r["delete_versions"] == 404
    assert r["destroy"] is True
    assert r["metadata_write"] == {"max_versions": 5, "custom_metadata": {"team": "a"}}
    assert r["delete_metadata"] == 404
    assert r["lookup_self"] == {"same": True, "renewable": False}
    assert r["health"] == {"initialized": True, "sealed": False} and r["status"] is False
    assert r["mounts"] == ["acme/prod/", "prod/"]  # the two-segment mount and the one-segment one


async def test_node_vault_client(world: EnrolledOrg) -> None:
    # Its token auth does lookup-self and then sends data.id: every call below used that.
    r = await run_node(world, "node_vault_client.js")
    assert (r["write"], r["write2"]) == (1, 2)
    assert r["read"] == {"password": "two"}
    assert r["list"] == ["s"] and r["metadata"] == ["1", "2"]
    assert r["delete_versions"] == 404 and r["undelete"] == {"password": "two"}
    assert r["destroy"] is True and r["metadata_write"] == {"team": "b"}


async def test_vault_api(world: EnrolledOrg) -> None:
    r = await run_node(world, "vault_api.js")
    assert (r["write"], r["write2"]) == (1, 2)
    assert r["read"] == {"user": "app", "password": "two", "version": 2} and r["read_v1"] == "one"
    assert r["patch"] == 3 and r["list"] == ["s"] and r["metadata"] == ["1", "2", "3"]
    assert r["metadata_write"] == 4
    assert r["delete"] == 404 and r["undelete"] == "three"
    assert r["delete_versions"] == 404 and r["destroy"] is True
    assert r["config"] == 7 and r["delete_metadata"] == 404


@pytest.mark.parametrize("package", ["node-vault", "node-vault-client", "vault-api"])
def test_the_packages_are_pinned_by_the_lock_file(package: str) -> None:
    lock = json.loads((SCRIPTS / "package-lock.json").read_text())
    wanted = json.loads((SCRIPTS / "package.json").read_text())["dependencies"][package]
    assert lock["packages"][f"node_modules/{package}"]["version"] == wanted
