"""The client's transport against small real HTTP servers: retries, timeouts, caps, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from vault import errors
from vault.client import HTTP, RetryPolicy
from vault.client.errors import error_classes, error_from_reply


class Script:
    """A server answering each request with the next reply of a script."""

    def __init__(self, replies: list[Callable[[], web.StreamResponse]]) -> None:
        self.replies = replies
        self.hits = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        reply = self.replies[min(self.hits, len(self.replies) - 1)]
        self.hits += 1
        return reply()


def error(status: int, code: str, message: str) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response({"error": {"code": code, "message": message}}, status=status)


def ok(body: object) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response(body)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], TestServer]]:
    servers: list[TestServer] = []

    def start(script: Script) -> TestServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", script.handle)
        server = TestServer(app, host="127.0.0.1")
        servers.append(server)
        return server

    yield start
    for s in servers:
        await s.close()


async def _url(server: TestServer) -> str:
    await server.start_server()
    return str(server.make_url(""))


def _http(**kw: object) -> tuple[HTTP, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return HTTP(retry=RetryPolicy(attempts=4, base=0.1, cap=1.0), sleep=sleep, uniform=lambda: 1.0, **kw), sleeps  # type: ignore[arg-type]


async def test_retries_503_with_backoff_then_succeeds(serve: Callable[[Script], TestServer]) -> None:
    script = Script([error(503, "unavailable", "db down"), error(503, "unavailable", "db down"), ok({"x": 1})])
    url = await _url(serve(script))
    http, sleeps = _http()
    try:
        assert await http.request("POST", url + "/v1/thing", body={}) == {"x": 1}
    finally:
        await http.close()
    assert script.hits == 3
    assert sleeps == [0.1, 0.2]  # full jitter scaled by uniform() == 1.0: the cap of each step


async def test_gives_up_after_bounded_attempts(serve: Callable[[Script], TestServer]) -> None:
    script = Script([error(503, "unavailable", "database unavailable; nothing was changed")])
    url = await _url(serve(script))
    http, sleeps = _http()
    try:
        with pytest.raises(errors.Unavailable) as err:
            await http.request("GET", url + "/x")
    finally:
        await http.close()
    assert script.hits == 4 and len(sleeps) == 3
    assert err.value.message == "database unavailable; nothing was changed"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "bad_request", errors.BadRequest),
        (401, "discharge_required", errors.MissingDischarge),
        (403, "unauthorized", errors.Unauthorized),
        (404, "not_found", errors.NotFound),
        (409, "conflict", errors.Conflict),
        (429, "rate_limited", errors.RateLimited),
    ],
)
async def test_never_retries_4xx_and_keeps_the_servers_words(
    serve: Callable[[Script], TestServer], status: int, code: str, cls: type[errors.VaultError]
) -> None:
    script = Script([error(status, code, f"the server says {code}")])
    url = await _url(serve(script))
    http, sleeps = _http()
    try:
        with pytest.raises(cls) as err:
            await http.request("POST", url + "/x", body={})
    finally:
        await http.close()
    assert script.hits == 1 and sleeps == []
    assert err.value.code == code and err.value.message == f"the server says {code}"


async def test_unknown_code_keeps_the_server_code(serve: Callable[[Script], TestServer]) -> None:
    script = Script([error(403, "token_revoked", "token 1234 was revoked")])
    url = await _url(serve(script))
    http, _ = _http()
    try:
        with pytest.raises(errors.Unauthorized) as err:
            await http.request("GET", url + "/x")
    finally:
        await http.close()
    assert err.value.code == "token_revoked" and err.value.message == "token 1234 was revoked"


async def test_connection_refused_is_retried_then_connection_failed() -> None:
    port = unused_port()
    http, sleeps = _http()
    try:
        with pytest.raises(errors.ConnectionFailed) as err:
            await http.request("POST", f"http://127.0.0.1:{port}/x", body={})
    finally:
        await http.close()
    assert len(sleeps) == 3
    assert f"127.0.0.1:{port}" in err.value.message and err.value.code == "connection_failed"


async def test_reply_size_is_capped(serve: Callable[[Script], TestServer]) -> None:
    script = Script([ok({"blob": "x" * 5000})])
    url = await _url(serve(script))
    http, _ = _http(max_reply_bytes=1000)
    try:
        with pytest.raises(errors.VaultError) as err:
            await http.request("GET", url + "/x")
    finally:
        await http.close()
    assert err.value.code == "bad_reply" and script.hits == 1


def test_every_error_class_maps_back_from_its_code() -> None:
    classes = error_classes()
    for cls in classes.values():
        err = error_from_reply(cls.status, {"error": {"code": cls.code, "message": "m"}}, service="s")
        assert type(err) is cls and err.message == "m"
    assert {"unavailable", "connection_failed", "discharge_required", "invalid_token"} <= set(classes)


async def test_deeply_nested_reply_is_a_bad_reply(serve: Callable[[Script], TestServer]) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    script = Script([lambda: web.Response(text=nested, content_type="application/json")])
    url = await _url(serve(script))
    http, _ = _http()
    try:
        with pytest.raises(errors.VaultError) as err:
            await http.request("GET", url + "/x")
    finally:
        await http.close()
    assert err.value.code == "bad_reply"
