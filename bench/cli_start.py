"""Whole-process time of ``cvault`` commands against ``python -c pass`` and ``python -c "import aiohttp"``.

Usage (PostgreSQL from ``CVAULT_TEST_DATABASE_URL``)::

    PYTHONPATH=$PWD python bench/cli_start.py [--runs 15]

What it does: creates a fresh database, starts ``cvault dev`` on it (free ports),
logs in, writes 100 secrets to a vault, mints a read-only store token and a
service token for a workload; then runs each command ``--runs`` times as a new
process (the way a shell or a container entry point starts it), alternating the
commands within each round so that a busy machine slows all of them alike, and
prints median and p90 wall time per command with its ratio to the two baselines
measured in the same run. The issue's targets (issue 16): ``--help`` and
``--version`` at most 100 ms, ``cvault run`` fetching 100 secrets at most 200 ms,
other client commands at most 250 ms plus their round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vault.client import Client, Credentials
from vault.storage.database import create_database, drop_database, with_database
from vault.storage.migrations import migrate
from vault.storage.pool import close_pool, create_pool

PY = sys.executable
SECRET_COUNT = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def _cvault(*args: str) -> list[str]:
    return [PY, "-m", "vault.cli", *args]


async def _prepare(admin: str, name: str) -> str:
    await create_database(admin, name)
    url = with_database(admin, name)
    pool = await create_pool(url, max_size=1)
    try:
        await migrate(pool)
    finally:
        await close_pool(pool)
    return url


async def _fill(exports: dict[str, str], session_env: dict[str, str]) -> None:
    async with Client(
        store_url=exports["CVAULT_STORE_URL"],
        authority_url=exports["CVAULT_AUTHORITY_URL"],
        credentials=Credentials.from_text(store_token=exports["CVAULT_STORE_TOKEN"], session=session_env["session"]),
    ) as c:
        await c.store.create_vault("bench")
        for n in range(SECRET_COUNT):
            await c.store.write_secret("bench", f"app/s{n:03d}", secrets.token_urlsafe(24))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    admin = os.environ.get("CVAULT_TEST_DATABASE_URL")
    if not admin:
        raise SystemExit("set CVAULT_TEST_DATABASE_URL (a PostgreSQL DSN whose role may CREATE DATABASE)")
    name = f"cvault_bench_cli_{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="cvault-bench-cli-"))
    url = asyncio.run(_prepare(admin, name))
    base = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    base.update({"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config")})
    dev_env = {
        **base,
        "CVAULT_DATABASE_URL": url,
        "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{_free_port()}",
        "CVAULT_STORE_LISTEN": f"127.0.0.1:{_free_port()}",
    }
    dev = subprocess.Popen(
        _cvault("dev", "--data-dir", str(tmp / "data")),
        env=dev_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its access log
        text=True,
    )
    try:
        assert dev.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("# then")):
            line = dev.stdout.readline()
            if not line:
                raise SystemExit("cvault dev exited: " + "\n".join(lines))
            lines.append(line.rstrip("\n"))
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "\n".join(lines), re.M))
        saved = json.loads((tmp / "config" / "cvault" / "session.json").read_text())
        asyncio.run(_fill(exports, saved))
        op = {**base, **exports}
        mint = subprocess.run(
            _cvault("store", "tokens", "mint", "--mask", "r", "--vault", "bench", "--json"),
            env=op, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        service = subprocess.run(
            _cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service", "--json"),
            env=op, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        wl = {
            **base,
            "HOME": str(tmp / "workload"),
            "XDG_CONFIG_HOME": str(tmp / "workload" / "config"),
            "CVAULT_AUTHORITY_URL": exports["CVAULT_AUTHORITY_URL"],
            "CVAULT_STORE_URL": exports["CVAULT_STORE_URL"],
            "CVAULT_STORE_TOKEN": json.loads(mint.stdout)["token"],
            "CVAULT_AUTH_TOKEN": json.loads(service.stdout)["token"],
            "CVAULT_VAULT": "bench",
        }
        commands: list[tuple[str, list[str], dict[str, str], float | None]] = [
            ("python -c pass", [PY, "-c", "pass"], base, None),
            ('python -c "import aiohttp"', [PY, "-c", "import aiohttp"], base, None),
            ("cvault --help", _cvault("--help"), base, 0.100),
            ("cvault --version", _cvault("--version"), base, 0.100),
            (f"cvault run -- true ({SECRET_COUNT} secrets)", _cvault("run", "--", "true"), wl, 0.200),
            ("cvault secrets list", _cvault("secrets", "list"), wl, 0.250),
            ("cvault secrets get app/s042", _cvault("secrets", "get", "app/s042"), wl, 0.250),
        ]
        times: dict[str, list[float]] = {label: [] for label, *_ in commands}
        for _label, cmd, env, _target in commands:  # warm the page cache once
            _time(cmd, env)
        for _ in range(opts.runs):
            for label, cmd, env, _target in commands:
                times[label].append(_time(cmd, env))
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
        asyncio.run(drop_database(admin, name))

    pass_median = statistics.median(times["python -c pass"])
    aiohttp_median = statistics.median(times['python -c "import aiohttp"'])
    print(f"{opts.runs} runs each, interleaved; wall time of the whole process")
    print(f"{'command':42} {'median':>8} {'p90':>8} {'x pass':>7} {'x aiohttp':>9} {'target':>7}")
    for label, _cmd, _env, target in commands:
        ts = sorted(times[label])
        median = statistics.median(ts)
        p90 = ts[min(len(ts) - 1, int(len(ts) * 0.9))]
        goal = f"{target * 1000:.0f} ms" if target else ""
        print(
            f"{label:42} {median * 1000:6.1f}ms {p90 * 1000:6.1f}ms {median / pass_median:7.2f} "
            f"{median / aiohttp_median:9.2f} {goal:>7}"
        )


if __name__ == "__main__":
    main()
