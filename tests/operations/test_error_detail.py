"""A database's connect error (hosts, ports, users) goes to the server log, never into the reply."""

from __future__ import annotations

import logging

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vault.cli.errors import report_error
from vault.errors import Unavailable
from vault.storage.pool import database_errors
from vault.web.common import middlewares

# Port 1 on localhost: nothing listens, so the connection is refused at once and the error quotes the address.
_REFUSED = "postgresql://cvault:hunter2@127.0.0.1:1/none"


async def _refused() -> None:
    with database_errors():
        await asyncpg.connect(_REFUSED, timeout=5)


async def test_a_refused_database_connection_is_unavailable_without_its_address() -> None:
    with pytest.raises(Unavailable) as info:
        await _refused()
    assert "127.0.0.1" not in info.value.message and "('" not in info.value.message
    assert info.value.detail is not None and "127.0.0.1" in info.value.detail
    assert "hunter2" not in info.value.detail


async def test_the_reply_leaves_the_detail_out_and_the_server_log_keeps_it(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: web.Request) -> web.Response:
        await _refused()
        raise AssertionError("unreachable")

    app = web.Application(middlewares=middlewares())
    app.router.add_get("/x", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        with caplog.at_level(logging.WARNING, logger="cvault.web"):
            async with aiohttp.ClientSession() as session, session.get(server.make_url("/x")) as resp:
                status, body = resp.status, await resp.text()
    finally:
        await server.close()
    assert status == 503
    assert '"unavailable"' in body
    assert "127.0.0.1', 1" not in body and "Connect call failed" not in body
    assert any("Connect call failed" in record.getMessage() for record in caplog.records)


def test_a_local_command_shows_the_operator_the_detail(capsys: pytest.CaptureFixture[str]) -> None:
    error = Unavailable("database unavailable; nothing was changed, try again")
    error.detail = 'database "cvault_x" does not exist'
    report_error(error, json_output=False)
    assert 'database "cvault_x" does not exist' in capsys.readouterr().err
