"""``cvault vault-token``: the real command in a subprocess, and a Vault client (hvac) living off its sink.

The org discharge lifetime is shortened to a few seconds (``org_discharge_ttl``)
so that "longer than three discharge lifetimes" takes seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.support.cvault_command import cvault_command, cvault_env, run_cvault
from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import running_services
from tests.vault_api.test_kv_hvac import MOUNT, call
from vault.cli.vault_token import VAULT_OPERATIONS, bundle_expiry, write_atomically
from vault.errors import ConfigError
from vault.macaroon import decode_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DISCHARGE_TTL = 6


@pytest.fixture
async def short_world(database_url: str) -> AsyncIterator[EnrolledOrg]:
    async with running_services(database_url, org_discharge_ttl=DISCHARGE_TTL) as h:
        yield await world_of(h)


def _env(w: EnrolledOrg) -> dict[str, str]:
    return cvault_env(
        {
            "CVAULT_STORE_TOKEN": w.root,
            "CVAULT_AUTH_TOKEN": w.auth,
            "CVAULT_AUTHORITY_URL": w.h.authority_url,
            "CVAULT_STORE_URL": w.h.store_url,
            "HOME": os.environ.get("HOME", "/tmp"),
        }
    )


def _kv(token: str, w: EnrolledOrg) -> Any:
    return hvac.Client(url=w.h.store_url + "/vault", token=token).secrets.kv.v2


async def test_vault_token_prints_a_bundle_narrowed_to_the_vault_api(short_world: EnrolledOrg) -> None:
    w = short_world
    status, out, err = await run_cvault("vault-token", env=_env(w))
    assert status == 0, err
    bundle = out.strip()
    assert "\n" not in bundle and bundle.startswith("cv1_") and "valid until" in err and bundle not in err
    assert 0 < bundle_expiry(bundle) - time.time() <= DISCHARGE_TTL
    kv = _kv(bundle, w)
    await call(kv.create_or_update_secret, "db/creds", {"password": "x"}, mount_point=MOUNT)
    read = await call(kv.read_secret_version, "db/creds", mount_point=MOUNT, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "x"}
    # Narrowed to the Vault API: the native API's other operations are refused.
    r = await w.h.store("POST", f"/v1/orgs/{w.org}/tokens", bundle, {"mask": "r"})
    assert r.status == 403 and "tokens.mint" in str(r.body)
    assert "tokens.mint" not in VAULT_OPERATIONS
    # --vault confines it further.
    status, out, err = await run_cvault("vault-token", "--vault", "staging", env=_env(w))
    assert status == 0, err
    with pytest.raises(hvac.exceptions.Forbidden):
        await call(
            _kv(out.strip(), w).read_secret_version, "db/creds", mount_point=MOUNT, raise_on_deleted_version=True
        )


async def test_vault_token_without_credentials_says_what_to_set(tmp_path: Path) -> None:
    status, out, err = await run_cvault("vault-token", env=cvault_env({"HOME": str(tmp_path)}))
    assert status != 0 and out == "" and "CVAULT_STORE_TOKEN" in err


async def test_the_sink_keeps_a_vault_client_reading_past_three_discharge_lifetimes(
    short_world: EnrolledOrg, tmp_path: Path
) -> None:
    w = short_world
    sink = tmp_path / "bundle"
    await call(_kv(w.bundle, w).create_or_update_secret, "app/key", {"k": "v"}, mount_point=MOUNT)
    process = await asyncio.create_subprocess_exec(
        *cvault_command("vault-token", "--sink", str(sink)),
        env=_env(w),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):  # the first bundle, within a generous bound
            if sink.exists():
                break
            await asyncio.sleep(0.1)
        assert sink.exists(), "the sink never wrote its file"
        assert stat.S_IMODE(sink.stat().st_mode) == 0o600
        seen: set[str] = set()
        reads = failures = unavailable = 0
        started = time.monotonic()
        # As Vault Agent's token_file method does: read the file, use the token in it.
        while time.monotonic() - started < 3.5 * DISCHARGE_TTL:
            token = sink.read_text().strip()
            seen.add(token)
            try:
                got = await call(
                    _kv(token, w).read_secret_version, "app/key", mount_point=MOUNT, raise_on_deleted_version=True
                )
                assert got["data"]["data"] == {"k": "v"}
                reads += 1
            except hvac.exceptions.VaultDown:
                # 503: the store could not commit the read's audit event in time (a loaded
                # machine); not the token's doing, and a Vault client retries it.
                unavailable += 1
            except hvac.exceptions.VaultError:
                failures += 1
            await asyncio.sleep(0.25)
        assert failures == 0 and reads > 10 * unavailable, (reads, unavailable)
        # Each bundle lived one discharge lifetime at most, so the file was rewritten several times.
        assert len(seen) >= 4, len(seen)
    finally:
        process.terminate()
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]
    # Checked once the sink has stopped: while it runs, a rewrite may be between its write and its rename.
    assert not [p for p in tmp_path.iterdir() if p.name != "bundle"]  # no temporary file left behind
    assert b"wrote" in err and w.root.encode() not in err


async def test_the_sink_stops_when_the_store_refuses_its_bundle(short_world: EnrolledOrg, tmp_path: Path) -> None:
    w = short_world
    sink = tmp_path / "bundle"
    process = await asyncio.create_subprocess_exec(
        *cvault_command("vault-token", "--sink", str(sink)),
        env=_env(w),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if sink.exists():
                break
            await asyncio.sleep(0.1)
        assert sink.exists(), "the sink never wrote its file"
        # The authority still discharges a store token the store revoked; the sink asks the store.
        root_id = decode_token(w.root).token_id
        r = await w.h.store("POST", f"/v1/orgs/{w.org}/tokens/{root_id}/revoke", w.bundle)
        assert r.status == 200, r
        _out, err = await asyncio.wait_for(process.communicate(), 60)  # within one lifetime, generously
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode != 0 and b"the store refuses the bundle" in err
    assert sink.exists()  # the last bundle stays until it expires


def test_write_atomically_replaces_the_file_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.write_text("old")
    target.chmod(0o644)
    write_atomically(target, "cv1_new")
    assert target.read_text() == "cv1_new\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="cannot write the sink file"):
        write_atomically(tmp_path / "missing-dir" / "bundle", "cv1_x")


async def test_each_sink_rewrite_carries_a_fresh_bundle(short_world: EnrolledOrg, tmp_path: Path) -> None:
    """Every rewrite holds a newly discharged bundle: no rewrite keeps the previous one's expiry."""
    process = await asyncio.create_subprocess_exec(
        *cvault_command("vault-token", "--sink", str(tmp_path / "bundle")),
        env=_env(short_world),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    expiries: list[str] = []
    try:
        while len(expiries) < 4:
            line = (await asyncio.wait_for(process.stderr.readline(), 6 * DISCHARGE_TTL)).decode()
            assert line, "the sink stopped"
            if "wrote" in line:
                expiries.append(line.rsplit("valid until ", 1)[1].rstrip(")\n"))
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 30)
    # Written at half of each lifetime, a fresh discharge's end is later than the one before it.
    assert expiries == sorted(set(expiries)), expiries


async def test_the_vault_api_says_why_a_bundle_is_refused(short_world: EnrolledOrg) -> None:
    w = short_world
    path = "/vault/v1/acme/prod/data/app/key"
    r = await w.h.store("POST", path, w.bundle, {"data": {"k": "v"}})
    assert r.status == 200, r
    w.h.store_clock.offset = DISCHARGE_TTL + 5  # the org discharge has expired
    try:
        r = await w.h.store("GET", path, w.bundle)
    finally:
        w.h.store_clock.offset = 0
    assert r.status == 403 and r.body == {"errors": ["permission denied", "discharge expired"]}, r
    bundle = await w.h.store_bundle(w.root, w.auth)
    root_id = decode_token(w.root).token_id
    assert (await w.h.store("POST", f"/v1/orgs/{w.org}/tokens/{root_id}/revoke", bundle)).status == 200
    r = await w.h.store("GET", path, bundle)
    assert r.status == 403 and r.body == {"errors": ["permission denied", "token revoked"]}, r
    r = await w.h.store("GET", path, "cv1_garbage")
    assert r.status == 403 and r.body == {"errors": ["permission denied"]}, r  # other reasons stay in the audit log
