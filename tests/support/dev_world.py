"""One ``cvault dev`` per test module, an operator logged in and a workload's credentials: the README's journeys.

Every step is a real ``python -m vault.cli`` process (``DevWorld.cvault``), each
bounded by a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from vault.storage.database import create_database, drop_database, with_database

from .cvault_command import PROJECT_ROOT, cvault_command, cvault_env

READY_BOUND = 90.0
STEP_BOUND = 60.0
SECRETS = {"db/url": "postgres://app:hunter2@db/app", "api/key": "k-8f3a9c"}


@dataclass
class Result:
    status: int
    out: str
    err: str


def clean_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """Nothing inherited but PATH and where the code is: a fresh shell's view of the world."""
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(home), **extra}


def run_cvault(*args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = STEP_BOUND) -> Result:
    done = subprocess.run(
        cvault_command(*args),
        env=dict(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class DevWorld:
    tmp: Path
    exports: dict[str, str]
    password: str
    data_dir: Path
    database_url: str
    op: dict[str, str] = field(default_factory=dict)
    wl: dict[str, str] = field(default_factory=dict)
    workload_store: dict[str, str] = field(default_factory=dict)
    service: dict[str, str] = field(default_factory=dict)

    def cvault(self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
        return run_cvault(*args, env=self.op if env is None else env, stdin=stdin)


def start_dev(
    database_url: str, tmp: Path, extra: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[str], list[str]]:
    home = tmp / "dev-home"
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{unused_port()}",
            "CVAULT_STORE_LISTEN": f"127.0.0.1:{unused_port()}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            **(extra or {}),
        }
    )
    # stderr (the access log) to a file: a pipe nobody reads would fill and stall the services.
    tmp.mkdir(parents=True, exist_ok=True)
    with (tmp / "dev.stderr").open("w") as log:
        process = subprocess.Popen(
            cvault_command("dev", "--data-dir", str(tmp / "dev-data")),
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return process, []


def stop_dev(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=READY_BOUND)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def read_until_ready(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        raw = process.stdout.readline()
        if not raw:
            raise AssertionError(f"cvault dev exited early: {lines} (its stderr is in dev.stderr)")
        lines.append(raw.rstrip("\n"))
        if lines[-1].startswith("# then"):
            return lines


def make_dev_world(
    postgres_server: str,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    dev_env: Mapping[str, str] | None = None,
) -> Iterator[DevWorld]:
    """For a module-scoped fixture: ``yield from make_dev_world(...)``."""
    name = f"cvault_cli_{secrets.token_hex(6)}"
    asyncio.run(create_database(postgres_server, name, template=template_database))
    tmp = tmp_path_factory.mktemp("world")
    database_url = with_database(postgres_server, name)
    process, _ = start_dev(database_url, tmp, dev_env)
    try:
        lines = read_until_ready(process)
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "\n".join(lines), re.M))
        password = json.loads((tmp / "dev-data" / "dev.json").read_text())["password"]
        w = DevWorld(tmp, exports, password, tmp / "dev-data", database_url)
        urls = {k: exports[k] for k in ("CVAULT_AUTHORITY_URL", "CVAULT_STORE_URL")}
        w.op = clean_env(
            tmp / "operator",
            {**urls, "CVAULT_STORE_TOKEN": exports["CVAULT_STORE_TOKEN"], "XDG_CONFIG_HOME": str(tmp / "operator")},
        )
        r = w.cvault("login", "--email", "owner@cvault.dev", "--password-stdin", stdin=password + "\n")
        assert r.status == 0, r
        assert w.cvault("vaults", "create", "prod").status == 0
        for secret, value in SECRETS.items():
            r = w.cvault("secrets", "set", secret, "--vault", "prod", stdin=value)
            assert r.status == 0, r
        r = w.cvault("store", "tokens", "mint", "--mask", "r", "--vault", "prod", "--json")
        assert r.status == 0, r
        w.workload_store = json.loads(r.out)
        r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service", "--json")
        assert r.status == 0, r
        w.service = json.loads(r.out)
        w.wl = clean_env(
            tmp / "workload",
            {**urls, "CVAULT_STORE_TOKEN": w.workload_store["token"], "CVAULT_AUTH_TOKEN": w.service["token"]},
        )
        yield w
    finally:
        stop_dev(process)
        asyncio.run(drop_database(postgres_server, name))
