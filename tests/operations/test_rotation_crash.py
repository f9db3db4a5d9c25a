"""kill -9 of the rotator between each pair of steps (docs/rotation.md, "Crashes"): a real ``cvault serve rotator``
process pauses after reporting a step (a test-only option), is killed there, and another rotator finishes the
rotation once the dead one's lease has expired (the services' clocks are moved past it, not waited through).
Readers get a working credential throughout (alternating strategy; with the single strategy the credential is stale
from set until promote, which is why that strategy is for targets that can afford it), and the end state is one
rotation: no pending version left, the role's password the current version's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import rotation
from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.rotation import Clocks, RotationWorld, can_connect, current
from vault.cli.rotator import Rotator, RotatorSettings

pg, rw = rotation.pg, rotation.rw  # the fixtures: a password-checking cluster, the world

LEASE = 6
BOUND = 60.0


def _start_rotator(rw: RotationWorld, token: str, tmp: Path, pause_after: str) -> tuple[subprocess.Popen[bytes], Path]:
    pause_file = tmp / "paused"
    env = cvault_env(
        {
            "HOME": str(tmp),
            "CVAULT_STORE_URL": rw.h.store_url,
            "CVAULT_AUTHORITY_URL": rw.h.authority_url,
            "CVAULT_STORE_TOKEN": token,
            "CVAULT_AUTH_TOKEN": rw.service_token,
        }
    )
    args = ["serve", "rotator", "--vault", "prod", "--interval", "0.2", "--lease", str(LEASE), "--timeout", "2"]
    args += ["--holder", "doomed", "--pause-after", pause_after, "--pause-file", str(pause_file)]
    log = (tmp / "rotator.log").open("wb")
    process = subprocess.Popen(cvault_command(*args), env=env, stdout=log, stderr=log)
    return process, pause_file


async def _wait_for(path: Path, process: subprocess.Popen[bytes], tmp: Path) -> None:
    started = time.monotonic()
    while not path.exists():
        if process.poll() is not None or time.monotonic() - started > BOUND:
            raise AssertionError((tmp / "rotator.log").read_text())
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("strategy", "step"),
    [
        ("alternating", "create"),
        ("alternating", "set"),
        ("alternating", "test"),
        ("alternating", "promote"),
        ("single", "set"),
        ("single", "test"),
    ],
)
async def test_kill_9_between_steps_then_another_rotator_finishes_one_consistent_rotation(
    rw: RotationWorld, tmp_path: Path, strategy: str, step: str
) -> None:
    first_version, original = await current(rw)
    async with rw.owner_client() as c:
        await c.rotation.set_policy(
            "prod", "db/url", target="postgres", every_seconds=86400, admin_secret="db/admin", strategy=strategy
        )
        await c.rotation.rotate_now("prod", "db/url")
    token = await rw.rotator_token("db/url")
    process, paused = _start_rotator(rw, token, tmp_path, step)
    try:
        await _wait_for(paused, process, tmp_path)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    async with rw.owner_client() as c:
        at_kill = await c.rotation.show("prod", "db/url")
    reader_version, reader = await current(rw)
    if strategy == "alternating" or step == "create":
        assert await can_connect(reader)  # what readers get works, even with the rotator dead mid-way
    if step == "promote":
        assert at_kill.rotations == 1 and reader_version > first_version
    else:
        assert at_kill.step == {"create": "created", "set": "set", "test": "tested"}[step]
        assert reader_version == first_version

    # Another rotator: nothing to take while the dead one's lease lasts, then it finishes the rotation. The
    # services' clocks are moved past the lease rather than waited through.
    clocks = Clocks(rw)
    async with rw.client_with(token) as client:
        rotator = Rotator(client, RotatorSettings(vaults=("prod",), holder="survivor", lease_seconds=LEASE, timeout=2))
        assert await rotator.run_once() == 0
        clocks.shift(LEASE + 1)
        started = time.monotonic()
        while (step != "promote" and rotator.promoted == 0) and time.monotonic() - started < BOUND:
            await rotator.run_once()
            await asyncio.sleep(0.2)
        await rotator.close()
        assert rotator.failed == 0 and rotator.abandoned == 0

    version, doc = await current(rw)
    async with rw.owner_client() as c:
        status = await c.rotation.show("prod", "db/url")
        meta = await c.store.metadata("prod", "db/url")
        promotes = (await c.store.audit(secret="db/url", action="rotation.step.promote"))["events"]
    assert status.rotations == 1 and status.step is None and status.pending_version is None
    assert len(promotes) == 1 and version > first_version
    assert [v.version for v in meta.versions if v.stage == "pending"] == []  # no orphaned pending version
    if step == "test":
        assert version == at_kill.pending_version  # tested before the crash: promoted as it was
    assert await can_connect(doc)  # the role's password is the current version's
    if strategy == "single":
        assert not await can_connect(original)
    else:
        assert doc.user == rw.roles.clone and await can_connect(original)  # the previous still works
