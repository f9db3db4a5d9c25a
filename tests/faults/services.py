"""The services of a fault test: the authority in the test's process, the store as a real ``cvault serve store``.

The store is a child process so ``kill -9`` is real: no ``finally`` runs, no
connection is closed politely, a transaction in flight is cut wherever it is.
The authority only hands out tokens and discharges before the faults start; it
runs in-process so the test can create users directly (as ``tests/support/harness.py``
does). Both use one database on the test's own cluster (``cluster.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer, unused_port

from tests.support.harness import Harness, ShiftedClock, shared_settings
from vault.config import load_config
from vault.crypto.passwords import MINIMUM
from vault.web.authority import create_authority_app

__all__ = ["StoreProcess", "fault_services", "run_cli", "run_sql"]

REPO = Path(__file__).resolve().parents[2]


class StoreProcess:
    """``python -m vault.cli serve store`` with the given environment; restartable on the same port."""

    def __init__(self, env: dict[str, str], url: str, log_path: Path, args: Sequence[str] = ()) -> None:
        self.env = env
        self.url = url
        self.log_path = log_path
        self.args = tuple(args)  # more arguments of `cvault serve store` (``--workers 2``)
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, *, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vault.cli", "serve", "store", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"the store exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    async with http.get(self.url + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the store did not become ready:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def workers(self) -> set[int]:
        """The pids of the store's forked workers (``--workers N``): the parent's live children."""
        assert self.process is not None
        # From /proc, not pgrep: procps is not in every image the tests run on (scripts/apt-packages.txt).
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:  # it has just exited
                continue
            if int(fields[1]) == self.process.pid:
                children.add(int(stat.parent.name))
        return children

    def listening(self, pid: int) -> bool:
        """Whether worker ``pid`` logged that it listens (the store runs with log_level INFO for this)."""
        return f"(pid {pid}) listening on" in self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL: the process ends wherever it is."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _child_env(settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    env.update({f"CVAULT_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@asynccontextmanager
async def fault_services(
    database_url: str, workdir: Path, *, store_args: Sequence[str] = (), **store_settings: Any
) -> AsyncIterator[tuple[Harness, StoreProcess]]:
    """The authority (in-process) and the store (a child process), both ready; stopped after."""
    authority_port, store_port = unused_port(), unused_port()
    common, feed_token, feed_digest = shared_settings(database_url, authority_port, store_port)
    authority_url, store_url = common["authority_url"], common["store_url"]
    authority_config = load_config({}, revocation_feed_token_sha256=[feed_digest], **common)
    authority_app = create_authority_app(authority_config, clock=ShiftedClock(), password_cost=MINIMUM)
    async with TestServer(authority_app, host="127.0.0.1", port=authority_port), aiohttp.ClientSession() as http:
        async with http.get(authority_url + "/.well-known/cvault/keys") as resp:
            keys = await resp.json()
        settings = {
            **common,
            "store_listen": f"127.0.0.1:{store_port}",
            "authority_org_public_key": keys["org"]["public_key"],
            "revocation_feed_token": feed_token,
            "log_level": "WARNING",
            **store_settings,
        }
        store = StoreProcess(_child_env(settings), store_url, workdir / "store.log", store_args)
        await store.start()
        try:
            harness = Harness(
                authority_url,
                store_url,
                authority_config,
                load_config({}, **settings),
                http,
                authority_app,
                ShiftedClock(),
                ShiftedClock(),
            )
            yield harness, store
        finally:
            store.stop()


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``cvault`` command line (``python -m vault.cli``) against ``database_url``."""
    env = _child_env({"database_url": database_url})
    return subprocess.run(
        [sys.executable, "-m", "vault.cli", *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )


async def run_sql(database_url: str, sql: str) -> None:
    """Run ``sql`` (statements a fault test sets up: a trigger) on its own connection."""
    from vault.storage.pool import close_pool, create_pool

    pool = await create_pool(database_url, max_size=1)
    try:
        await pool.execute(sql)
    finally:
        await close_pool(pool)
