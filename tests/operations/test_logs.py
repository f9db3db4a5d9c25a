"""Logs: JSON and text formats, an access line per request, and never a credential or secret value."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiohttp.test_utils import unused_port

from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.harness import PASSWORD, running_services
from tests.support.log_guard import _Guard, leaks
from vault.config import load_config
from vault.errors import ConfigError
from vault.logs import make_handler

SECRET_VALUE = "log-test-secret-value-7c1d"


@contextmanager
def captured(log_format: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = make_handler(stream, log_format)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _journey(database_url: str) -> list[str]:
    """The main journeys with known credentials and values; returns every credential seen."""
    async with running_services(database_url) as h:
        owner, org, auth, root, bundle = await h.enrolled_vault("logs@example.com", "logs")
        path = f"/v1/orgs/{org}/vaults/prod/secrets/api/key"
        assert (await h.store("PUT", path, bundle, {"value": SECRET_VALUE})).status == 200
        read = await h.store("GET", path, bundle)
        assert read.body["value"] == SECRET_VALUE
        # Failures log too: a wrong password, a broken token, a token in a query string.
        await h.authority("POST", "/v1/sessions", None, {"email": "logs@example.com", "password": "wrong-" + PASSWORD})
        await h.store("GET", path, bundle[:-8] + "AAAAAAAA")
        await h.store("GET", path + f"?token={bundle}", None)
        await h.store("GET", "/vault/v1/logs/prod/data/api/key", bundle)
        return [owner.session, auth, root, bundle, PASSWORD, SECRET_VALUE]


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_access_lines_and_no_credentials_in_either_format(database_url: str, log_format: str) -> None:
    with captured(log_format) as stream:
        secrets = await _journey(database_url)
    lines = stream.getvalue().splitlines()
    access = [line for line in lines if "cvault.access" in line]
    # Each request of the journey has its line (the harness makes about 20).
    assert len(access) >= 12, lines
    for line in lines:
        for secret in secrets:
            assert secret not in line
        assert not leaks(line), line
    if log_format == "json":
        entries = [json.loads(line) for line in lines]
        access_entries = [e for e in entries if e["logger"] == "cvault.access"]
        for entry in access_entries:
            assert set(entry) >= {"time", "level", "logger", "message", "request_id", "route", "method", "status"}
            assert isinstance(entry["status"], int) and isinstance(entry["duration_ms"], float)
        routes = {(e["method"], e["route"], e["status"]) for e in access_entries}
        assert ("PUT", "/v1/orgs/{org}/vaults/{vault}/secrets/{name}", 200) in routes
        assert ("POST", "/v1/sessions", 401) in routes
    else:
        assert all(" INFO cvault.access: " in line for line in access)


def test_the_guard_catches_a_leak() -> None:
    guard = _Guard()
    logger = logging.getLogger("test.guard")
    logger.addHandler(guard)
    logger.propagate = False  # the planted leak must not reach the session's own guard
    try:
        logger.warning("token %s", "cv1_abc")
        logger.warning("fine")
    finally:
        logger.removeHandler(guard)
    assert len(guard.leaked) == 1 and guard.lines == 2


def test_log_format_is_validated() -> None:
    assert load_config({"CVAULT_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="CVAULT_LOG_FORMAT must be text or json"):
        load_config({"CVAULT_LOG_FORMAT": "xml"})


async def test_serve_writes_json_lines_with_request_fields(database_url: str) -> None:
    port = unused_port()
    env = cvault_env(
        {
            "CVAULT_DATABASE_URL": database_url,
            "CVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CVAULT_AUTHORITY_LISTEN": f"127.0.0.1:{port}",
            "CVAULT_AUTHORITY_URL": f"http://127.0.0.1:{port}",
            "CVAULT_LOG_FORMAT": "json",
        }
    )
    process = await asyncio.create_subprocess_exec(
        *cvault_command("serve", "authority"), env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        while b"listening" not in await asyncio.wait_for(process.stderr.readline(), 60):
            pass
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz?token=cv1_secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await reader.read()
        writer.close()
    finally:
        process.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
        await process.wait()
    entries = [json.loads(line) for line in rest.splitlines() if line.strip()]
    [access] = [e for e in entries if e["logger"] == "cvault.access"]
    assert access["route"] == "/healthz" and access["status"] == 200 and access["method"] == "GET"
    assert access["request_id"] and "cv1_" not in json.dumps(entries)
