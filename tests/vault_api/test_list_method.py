"""Vault's ``LIST`` method reaches the handlers: aiohttp's pure-Python parser, chosen where cvault serves.

``cvault serve`` and ``cvault dev`` set ``AIOHTTP_NO_EXTENSIONS`` before aiohttp's first import
(:data:`vault.cli.main.SERVING`); this suite sets it in ``tests/__init__.py``. Each test fails if
``LIST`` gets llhttp's 400 again: in a fresh process that goes through the CLI's entry point as
``cvault serve`` does, and in this one.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.cvault_command import PROJECT_ROOT
from tests.vault_api.test_kv_units import H, _exchange, _serve

# A `cvault serve store` process up to its command's import (the --help exits there), then a server
# on its runner, asked LIST on a raw socket.
_SERVED_BY_THE_CLI = """
import asyncio, contextlib
from vault.cli.main import main
with contextlib.suppress(SystemExit):
    main(["serve", "store", "--help"])
from aiohttp import web
from vault.web.app_runner import VaultAppRunner

async def echo(request):
    return web.Response(text=request.method)

async def ask():
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = VaultAppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"LIST /v1/x/metadata/ HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    print("REPLY", (await reader.read()).split(b"\\r\\n")[0].decode(), (await reader.read()).decode())
    await runner.cleanup()

asyncio.run(ask())
"""


def test_the_cli_serves_list_without_being_told() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIOHTTP_NO_EXTENSIONS"}  # as a shell starts it
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _SERVED_BY_THE_CLI], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REPLY HTTP/1.1 200 OK" in done.stdout, done.stdout


async def test_pipelined_list_requests_are_each_answered() -> None:
    runner, port = await _serve()
    try:
        replies = await _exchange(
            port,
            [
                b"".join(
                    m + b" /" + p + b" HTTP/1.1\r\n" + H + b"\r\n"
                    for m, p in [(b"LIST", b"a"), (b"LIST", b"b"), (b"GET", b"c")]
                ),
                b"UN",
                b"LIST /d HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
            ],
        )
        # "UN" + "LIST" is the method UNLIST: a method like any other to the parser, routed as such.
        assert replies == ["200 LIST /a 0", "200 LIST /b 0", "200 GET /c 0", "200 UNLIST /d 0"]
    finally:
        await runner.cleanup()
