"""``cvault run --watch`` with a live child across three managed rotations (docs/rotation.md, "Workloads
follow"), every step a real ``cvault`` process: the operator sets the policy and mints the rotator's token with
``cvault rotation``, ``cvault serve rotator`` rotates, ``cvault run --watch`` restarts the child on each
promotion. The alternating strategy keeps the credential the child holds working until the child has the next
one: the child's statements and its new connections never fail."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import rotation
from tests.support.cvault_command import cvault_command
from tests.support.dev_world import DevWorld, clean_env, make_dev_world
from tests.support.rotation import PasswordCluster, create_roles, drop_roles

pg = rotation.pg  # the fixture: a password-checking cluster

BOUND = 60.0

CHILD = """
import asyncio, os, sys, asyncpg
url, log = os.environ["DB_URL"], open(sys.argv[1], "a")
def say(text): log.write(f"{os.getpid()} {text}\\n"); log.flush()
async def main():
    conn = await asyncpg.connect(url)
    say("connected " + (await conn.fetchval("SELECT current_user")))
    worked = False
    while True:
        for what, work in (("statement", lambda: conn.fetchval("SELECT 1")), ("connect", lambda: new())):
            try:
                await work()
            except Exception as exc:
                say(f"FAILED {what}: {type(exc).__name__}")
        if not worked:
            worked = True
            say("worked")
        await asyncio.sleep(0.2)
async def new():
    c = await asyncpg.connect(url)
    await c.close()
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


def _wait_for(check: Callable[[], bool], what: str, logs: Path) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > BOUND:
            said = {p.name: p.read_text(errors="replace")[-2000:] for p in sorted(logs.glob("*.log"))}
            raise AssertionError(f"timed out waiting for {what}; logs: {said}")
        time.sleep(0.2)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _worked(out: Path) -> int:
    """How many children have worked with their credential: a statement and a new connection each."""
    return sum(line.endswith(" worked") for line in _lines(out))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_run_watch_follows_three_alternating_rotations_without_a_failed_connection(
    w: DevWorld, pg: PasswordCluster, tmp_path: Path
) -> None:
    roles = asyncio.run(create_roles(pg))
    rotator = watcher = None
    try:
        app = roles.doc(roles.app, roles.app_password).render()
        admin = roles.doc(roles.admin, roles.admin_password).render()
        for name, value in (("db/url", app), ("db/admin", admin)):
            assert w.cvault("secrets", "set", name, "--vault", "prod", stdin=value).status == 0
        r = w.cvault(
            "rotation", "set", "db/url", "--vault", "prod", "--postgres", "--every", "30d",
            "--strategy", "alternating", "--admin-secret", "db/admin",
        )  # fmt: skip
        assert r.status == 0, r
        r = w.cvault("rotation", "token", "db/url", "--vault", "prod")
        assert r.status == 0, r
        rotator_token = r.out.strip()
        r = w.cvault("tokens", "create", "--org", "dev", "--mask", "rw", "--service", "--json")
        assert r.status == 0, r
        urls = {k: w.exports[k] for k in ("CVAULT_AUTHORITY_URL", "CVAULT_STORE_URL")}
        rotator_env = clean_env(
            tmp_path / "rotator",
            {**urls, "CVAULT_STORE_TOKEN": rotator_token, "CVAULT_AUTH_TOKEN": json.loads(r.out)["token"]},
        )
        rotator_log = (tmp_path / "rotator.log").open("wb")
        rotator = subprocess.Popen(
            cvault_command("serve", "rotator", "--vault", "prod", "--interval", "0.3"),
            env=rotator_env,
            stdout=rotator_log,
            stderr=rotator_log,
        )
        out = tmp_path / "child.log"
        run = ["run", "--vault", "prod", "--only", "db/url", "--watch", "--interval", "1"]
        watcher = subprocess.Popen(
            cvault_command(*run, "--", sys.executable, "-c", CHILD, str(out)),
            env={**w.wl, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "run.log").open("wb"),
        )
        _wait_for(lambda: _worked(out) == 1, "the first child's work", tmp_path)
        for n in (1, 2, 3):
            assert w.cvault("rotation", "now", "db/url", "--vault", "prod").status == 0

            def rotated(n: int = n) -> bool:
                shown = w.cvault("rotation", "show", "db/url", "--vault", "prod", "--json")
                return shown.status == 0 and json.loads(shown.out)["rotations"] == n

            _wait_for(rotated, f"rotation {n}", tmp_path)
            _wait_for(lambda n=n: sum("connected" in line for line in _lines(out)) == n + 1, f"child {n + 1}", tmp_path)
            # The new child has worked with the new credential: a statement and a new connection.
            _wait_for(lambda n=n: _worked(out) == n + 1, f"child {n + 1}'s work", tmp_path)
        connected = [line.split() for line in _lines(out) if "connected" in line]
        assert [user for _pid, _, user in connected] == [roles.app, roles.clone, roles.app, roles.clone]
        assert len({pid for pid, _, _ in connected}) == 4  # restarted each time
        assert [line for line in _lines(out) if "FAILED" in line] == []
        status = w.cvault("rotation", "status", "--vault", "prod")
        assert status.status == 0 and "db/url" in status.out and "never" not in status.out
        assert roles.app_password not in (tmp_path / "run.log").read_text()
    finally:
        for process in (watcher, rotator):
            if process is not None:
                _stop(process)
        asyncio.run(drop_roles(pg, roles))
