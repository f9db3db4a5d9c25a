"""Idle connections cannot exhaust descriptors, accept errors are rate-limited,
and ``cvault serve`` says "listening" only once its keys are open and its port is bound."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.support.cvault_command import PROJECT_ROOT, cvault_command, cvault_env
from tests.support.serving import serving
from vault.config import Config
from vault.web.connections import RateLimitedLog

# Generous bounds: the machine is shared; only "closed at all, well before aiohttp's 3,630 s" matters.
CLOSE_BOUND = 10.0
SMALL = replace(
    Config(dev=True), header_read_timeout=1, keepalive_timeout=2, max_connections=40, max_connections_per_client=8
)


@contextlib.asynccontextmanager
async def _serving(config: Config) -> AsyncIterator[str]:
    async with serving(config) as port:
        yield f"http://127.0.0.1:{port}"


async def _idle(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing (waits at most CLOSE_BOUND)."""
    return await asyncio.wait_for(reader.read(), CLOSE_BOUND)


async def test_idle_sockets_from_one_client_do_not_lock_out_a_new_client_and_are_closed() -> None:
    async with _serving(SMALL) as url:
        port = int(url.rpartition(":")[2])
        # One hostile client (127.0.0.2) opens far more idle sockets than it may keep.
        idle = [await _idle(port, "127.0.0.2") for _ in range(30)]
        started = time.monotonic()

        # Another client is still served, at once.
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
            assert resp.status == 200

        replies = await asyncio.gather(*(_closed_by_server(r) for r, _ in idle))
        elapsed = time.monotonic() - started
        refused = [r for r in replies if r.startswith(b"HTTP/1.1 503")]
        silent = [r for r in replies if r == b""]
        # The per-client cap let 8 in; the other 22 were told why and closed.
        assert len(refused) == 22 and len(silent) == 8, replies
        assert b'"code": "unavailable"' in refused[0]
        # The admitted 8 sent nothing and were closed by the header-read timeout.
        assert elapsed < CLOSE_BOUND
        for _, writer in idle:
            writer.close()


async def test_service_wide_cap_refuses_quickly_instead_of_hanging() -> None:
    config = replace(SMALL, max_connections=6, max_connections_per_client=100)
    async with _serving(config) as url:
        port = int(url.rpartition(":")[2])
        idle = [await _idle(port, f"127.0.0.{3 + i}") for i in range(6)]
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "unavailable"
        # Once the idle ones are closed (header-read timeout), new clients are served again.
        await asyncio.gather(*(_closed_by_server(r) for r, _ in idle))
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
            assert resp.status == 200
        for _, writer in idle:
            writer.close()


async def test_keepalive_timeout_closes_an_idle_connection_after_a_request() -> None:
    config = replace(SMALL, keepalive_timeout=1, header_read_timeout=5)
    async with _serving(config) as url:
        port = int(url.rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_BOUND)
        assert head.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        await asyncio.wait_for(reader.read(), CLOSE_BOUND)  # the rest of the body, then EOF
        assert time.monotonic() - started < CLOSE_BOUND
        writer.close()


async def test_slow_headers_are_cut_off() -> None:
    async with _serving(SMALL) as url:
        port = int(url.rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        assert await _closed_by_server(reader) == b""
        writer.close()


def test_rate_limited_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(__import__("logging").getLogger("test.limited"), 10, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="test.limited"):
        for _ in range(1000):
            limited.warning("cannot accept: %s", "EMFILE")
        now[0] = 11.0
        limited.warning("cannot accept: %s", "EMFILE")
    assert [r.getMessage() for r in caplog.records] == [
        "cannot accept: EMFILE",
        "cannot accept: EMFILE (999 more like this in the last 10 s)",
    ]


# A server in its own process with a low descriptor limit, so it runs out of descriptors for real.
_EMFILE_SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from dataclasses import replace
    from aiohttp import web
    from vault.config import Config
    from vault.web.runner import serve_app

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    logging.basicConfig(level="INFO", stream=sys.stderr)
    config = replace(Config(dev=True), max_connections=10000, max_connections_per_client=10000,
                     header_read_timeout=60, accept_error_log_interval=60)

    async def main():
        app = web.Application()
        app.router.add_get("/healthz", lambda r: web.json_response({}))
        await serve_app(app, "127.0.0.1:" + sys.argv[1], asyncio.Event(), config, name="test")

    asyncio.run(main())
    """
)


async def test_running_out_of_descriptors_logs_one_line_not_a_traceback_per_attempt() -> None:
    port = unused_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _EMFILE_SERVER, str(port), env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        assert b"listening" in line, line
        sockets = []
        with contextlib.suppress(OSError):
            for _ in range(150):
                sockets.append(await _idle(port, "127.0.0.1"))
        await asyncio.sleep(3.5)  # asyncio retries accept once a second: several failures
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        stderr = (await process.stderr.read()).decode()
        await process.wait()
    lines = [x for x in stderr.splitlines() if x.strip()]
    accept_lines = [x for x in lines if "cannot accept connections" in x]
    assert len(accept_lines) == 1, lines[:20]
    assert "EMFILE" in accept_lines[0]
    assert "Traceback" not in stderr
    for _, writer in sockets:
        writer.close()


# --- "listening" only after the keys are open and the port is bound (issue 20 item 6).


def _serve_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{port}",
            "CVAULT_AUTHORITY_URL": f"http://127.0.0.1:{port}",
            **extra,
        }
    )


def test_port_in_use_never_logs_listening(database_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            cvault_command("serve", "authority"),
            env=_serve_env(database_url, port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "listening" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_keys_never_log_listening(database_url: str) -> None:
    port = unused_port()
    env = _serve_env(database_url, port)
    env.pop("CVAULT_MASTER_KEY")
    result = subprocess.run(
        cvault_command("serve", "authority"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "no master key" in result.stderr
    assert "listening" not in result.stderr


async def test_listening_is_logged_once_the_port_answers(database_url: str) -> None:
    port = unused_port()
    process = await asyncio.create_subprocess_exec(
        *cvault_command("serve", "authority"), env=_serve_env(database_url, port), stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
            assert line, "cvault serve exited without saying it listens"
            if "listening" in line:
                break
        assert f"authority listening on 127.0.0.1:{port} as http://127.0.0.1:{port}" in line
        # The moment it says so, the port answers and the keys are open (readyz checks both).
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as resp:
            assert resp.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
