"""``cvault dev`` end to end: embedded PostgreSQL, migrate, ready, Ctrl-C, restart on the same data."""

from __future__ import annotations

import asyncio
import re
import signal
import stat
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from tests.support.cvault_command import cvault_command, cvault_env
from vault.config import default_sql_dir, read_master_key_file
from vault.crypto.keyring import MasterKey
from vault.storage.keys import PgKeyRepository
from vault.storage.migrations import load_migrations
from vault.storage.pool import close_pool, create_pool
from vault.storage.schema import SCHEMAS

# The target is 10 s; the bound is generous so a loaded CI machine does not flake.
# The measured figure is printed by `cvault dev` itself and reported below.
READY_BOUND = 60.0


class DevProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def wait_for_line(self, pattern: str) -> re.Match[str]:
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), READY_BOUND)
            if not raw:
                raise AssertionError(f"cvault dev exited before printing {pattern!r}: {self.lines}")
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    async def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(self.process.communicate(), READY_BOUND)
        assert self.process.returncode is not None
        return self.process.returncode, rest.decode()


async def _start(data_dir: Path) -> DevProcess:
    # No CVAULT_DATABASE_URL and no master key: the command must bring its own.
    # Free ports, and a private config dir for the session `cvault dev` saves.
    home = data_dir.parent / "home"
    env = cvault_env(
        {
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{unused_port()}",
            "CVAULT_STORE_LISTEN": f"127.0.0.1:{unused_port()}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
    )
    process = await asyncio.create_subprocess_exec(
        *cvault_command("dev", "--data-dir", str(data_dir)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return DevProcess(process)


async def _run_until_ready(data_dir: Path) -> tuple[DevProcess, str, float]:
    dev = await _start(data_dir)
    try:
        dsn = (await dev.wait_for_line(r"CVAULT_DATABASE_URL='([^']+)'")).group(1)
        seconds = float((await dev.wait_for_line(r"ready in ([0-9.]+) s")).group(1))
    except BaseException:
        dev.process.kill()
        await dev.process.wait()
        raise
    return dev, dsn, seconds


async def test_dev_starts_embedded_database_and_reuses_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"

    dev, dsn, first_ready = await _run_until_ready(data_dir)
    try:
        assert any("created master key" in line for line in dev.lines)
        shipped = sum(len(load_migrations(default_sql_dir(), schema)) for schema in SCHEMAS)
        assert any(f"{shipped} migration(s) applied" in line for line in dev.lines)
        # The first start bootstraps an owner, org and vault and prints the exports.
        await dev.wait_for_line(r"^export CVAULT_STORE_TOKEN=cv1_")
        key_file = data_dir / "master.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        master_key = MasterKey(read_master_key_file(key_file))
        # Leave something in the database to find after the restart.
        pool = await create_pool(dsn, max_size=1)
        try:
            key_id, key = await (await PgKeyRepository.open(pool, "store", master_key)).generate("data-key")
        finally:
            await close_pool(pool)
    finally:
        status, rest = await dev.interrupt()
    assert status == 0
    assert "stopped" in rest
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the embedded server is still running"

    dev, dsn, second_ready = await _run_until_ready(data_dir)
    try:
        assert any("using master key" in line for line in dev.lines)
        assert any("0 migration(s) applied" in line for line in dev.lines)
        assert read_master_key_file(key_file) == master_key.key
        pool = await create_pool(dsn, max_size=1)
        try:
            assert await (await PgKeyRepository.open(pool, "store", master_key)).get(key_id, "data-key") == key
        finally:
            await close_pool(pool)
    finally:
        status, rest = await dev.interrupt()
    assert status == 0
    # The second start bootstraps nothing; no start ever prints a session secret.
    assert not any("bootstrapped owner" in line for line in dev.lines)
    assert "cvs_" not in rest and not any("cvs_" in line for line in dev.lines)

    with capsys.disabled():
        print(f"\ncvault dev ready: first start {first_ready:.2f} s, second start {second_ready:.2f} s")
