"""The client's transports against small real HTTP servers: retries, timeouts, caps, error mapping.

Each test runs with both transports: :class:`HTTP` (aiohttp) and
:class:`BlockingHTTP` (a socket, the CLI's). The server runs on its own
event loop in a thread, since the blocking transport holds the test's loop.
"""

from __future__ import annotations

import asyncio
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from vault import errors
from vault.client.blocking_http import BlockingHTTP, run_blocking
from vault.client.errors import UnknownCode, error_classes, error_from_reply
from vault.client.http import HTTP, RetryPolicy, TransportError


class Script:
    """A server answering each request with the next reply of a script."""

    def __init__(self, replies: list[Callable[[], web.StreamResponse]], *, delay: float = 0.0) -> None:
        self.replies = replies
        self.hits = 0
        self.delay = delay
        self.peers: list[object] = []
        self.queries: list[dict[str, str]] = []
        self.keys: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        reply = self.replies[min(self.hits, len(self.replies) - 1)]
        self.hits += 1
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        self.queries.append(dict(request.query))
        self.keys.append(request.headers.get("Idempotency-Key"))
        if self.delay:
            await asyncio.sleep(self.delay)
        return reply()


def error(status: int, code: str, message: str) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response({"error": {"code": code, "message": message}}, status=status)


def ok(body: object) -> Callable[[], web.StreamResponse]:
    return lambda: web.json_response(body)


Serve = Callable[[Script], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a script's server on a loop in another thread; its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def start(script: Script) -> str:
        async def go() -> str:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", script.handle)
            # A slow handler whose client timed out and hung up is cancelled, not waited for at cleanup.
            runner = web.AppRunner(app, handler_cancellation=True)
            await runner.setup()
            port = unused_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            return f"http://127.0.0.1:{port}"

        return asyncio.run_coroutine_threadsafe(go(), loop).result(30)

    yield start
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


@pytest.fixture(params=[HTTP, BlockingHTTP], ids=["aiohttp", "blocking"])
def transport(request: pytest.FixtureRequest) -> type[HTTP]:
    cls: type[HTTP] = request.param
    return cls


E = TypeVar("E", bound=errors.VaultError)


def _http(transport: type[HTTP], **kw: object) -> tuple[HTTP, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    http = transport(retry=RetryPolicy(attempts=4, base=0.1, cap=1.0), sleep=sleep, uniform=lambda: 1.0, **kw)  # type: ignore[arg-type]
    return http, sleeps


async def _failed(
    transport: type[HTTP], cls: type[E], method: str, url: str, body: object = None, **kw: object
) -> tuple[E, list[float]]:
    """The error one request ends in, and the back-off sleeps taken before it."""
    http, sleeps = _http(transport, **kw)
    try:
        with pytest.raises(cls) as err:
            await http.request(method, url, body=body)
    finally:
        await http.close()
    return err.value, sleeps


async def test_retries_503_with_backoff_then_succeeds(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([error(503, "unavailable", "db down"), error(503, "unavailable", "db down"), ok({"x": 1})])
    url = serve(script)
    http, sleeps = _http(transport)
    try:
        assert await http.request("POST", url + "/v1/thing", body={}) == {"x": 1}
    finally:
        await http.close()
    assert script.hits == 3
    assert sleeps == [0.1, 0.2]  # full jitter scaled by uniform() == 1.0: the cap of each step


async def test_outcome_unknown_is_retried_only_with_the_same_idempotency_key(
    serve: Serve, transport: type[HTTP]
) -> None:
    unknown = error(503, "outcome_unknown", "the write may have been applied")
    script = Script([unknown, ok({"version": 1})])
    url = serve(script)
    http, _sleeps = _http(transport)
    try:
        # Without a key, a write that may have committed is not sent again.
        with pytest.raises(errors.OutcomeUnknown):
            await http.request("PUT", url + "/v1/secret", body={"value": "v"})
        assert script.hits == 1 and script.keys == [None]
        script.hits = 0
        assert await http.request("PUT", url + "/v1/secret", body={"value": "v"}, idempotency_key="k-1") == {
            "version": 1
        }
    finally:
        await http.close()
    assert script.keys == [None, "k-1", "k-1"]


async def test_an_unknown_outcome_is_not_settled_by_a_later_unavailable(serve: Serve, transport: type[HTTP]) -> None:
    # The first attempt may have committed; the retries fail before the database ("nothing was changed" is
    # true of them only). The caller must hear "outcome unknown", with the key to retry with.
    unavailable = error(503, "unavailable", "database unavailable; nothing was changed, try again")
    script = Script([error(503, "outcome_unknown", "maybe"), unavailable])
    url = serve(script)
    http, sleeps = _http(transport)
    try:
        with pytest.raises(errors.OutcomeUnknown) as err:
            await http.request("PUT", url + "/v1/secret", body={"value": "v"}, idempotency_key="k-7")
        assert err.value.idempotency_key == "k-7" and "k-7" in err.value.message
        assert "nothing was changed, try again" in err.value.message  # the last attempt's words, quoted as such
        # A later answer that settles it: a 4xx after a doubtful attempt is still no proof either way.
        script.replies, script.hits = [error(503, "outcome_unknown", "maybe"), error(409, "conflict", "cas")], 0
        with pytest.raises(errors.OutcomeUnknown):
            await http.request("PUT", url + "/v1/secret", body={"value": "v"}, idempotency_key="k-8")
        # A read is never "in doubt".
        script.replies, script.hits = [error(503, "outcome_unknown", "maybe"), unavailable], 0
        with pytest.raises(errors.Unavailable):
            await http.request("GET", url + "/v1/secret")
    finally:
        await http.close()
    assert len(sleeps) == 3 + 1 + 3


async def test_the_store_client_sends_one_key_per_write(serve: Serve) -> None:
    from vault.client.store import StoreClient

    class Owner:
        def store_org(self) -> int:
            return 7

        async def store_bundle(self, caveats: object, token: object = None) -> str:
            return "cv1_x"

    script = Script([error(503, "outcome_unknown", "maybe"), ok({"name": "n", "version": 1, "stage": "current"})])
    url = serve(script)
    http, _sleeps = _http(HTTP)
    store = StoreClient(http, url, Owner())
    try:
        await store.write_secret("v", "n", "one")
        await store.write_secret("v", "n", "two")
    finally:
        await http.close()
    first, retry, second = script.keys
    assert first is not None and first == retry and second not in (None, first)


async def test_gives_up_after_bounded_attempts(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([error(503, "unavailable", "database unavailable; nothing was changed")])
    url = serve(script)
    err, sleeps = await _failed(transport, errors.Unavailable, "GET", url + "/x")
    assert script.hits == 4 and len(sleeps) == 3
    assert err.message == "database unavailable; nothing was changed"


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
    serve: Serve, transport: type[HTTP], status: int, code: str, cls: type[errors.VaultError]
) -> None:
    script = Script([error(status, code, f"the server says {code}")])
    url = serve(script)
    err, sleeps = await _failed(transport, cls, "POST", url + "/x", body={})
    assert script.hits == 1 and sleeps == []
    assert err.code == code and err.message == f"the server says {code}"


async def test_unknown_code_keeps_the_server_code(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([error(403, "token_revoked", "token 1234 was revoked")])
    url = serve(script)
    err, _ = await _failed(transport, errors.Unauthorized, "GET", url + "/x")
    assert err.code == "token_revoked" and err.message == "token 1234 was revoked"
    assert isinstance(err, UnknownCode) and err.status == 403
    assert err.reasons == ["token 1234 was revoked"]


def test_an_unknown_code_is_its_own_value_and_no_class_changes() -> None:
    """The server's code lives on the one exception: the classes (and other errors) keep theirs."""
    first = error_from_reply(403, {"error": {"code": "token_revoked", "message": "m"}}, service="store")
    second = error_from_reply(403, {"error": {"code": "org_suspended", "message": "n"}}, service="store")
    known = error_from_reply(403, {"error": {"code": "unauthorized", "message": "o"}}, service="store")
    assert (first.code, second.code, known.code) == ("token_revoked", "org_suspended", "unauthorized")
    assert type(first) is type(second) and isinstance(first, errors.Unauthorized | UnknownCode)
    assert type(known) is errors.Unauthorized and not isinstance(known, UnknownCode)
    assert errors.Unauthorized.code == "unauthorized" and UnknownCode.code == "unknown_code"
    teapot = error_from_reply(418, {"error": {"code": "teapot", "message": "short and stout"}}, service="store")
    assert type(teapot) is UnknownCode and (teapot.code, teapot.status) == ("teapot", 418)
    bare = error_from_reply(418, None, service="store")
    assert (bare.code, bare.status, bare.answered_by) == ("http_418", 418, "store") and "418" in bare.message
    no_code = error_from_reply(404, {"error": {"message": "gone"}}, service="store")
    assert isinstance(no_code, errors.NotFound) and (no_code.code, no_code.status) == ("not_found", 404)


async def test_connection_refused_is_retried_then_connection_failed(transport: type[HTTP]) -> None:
    port = unused_port()
    err, sleeps = await _failed(transport, errors.ConnectionFailed, "POST", f"http://127.0.0.1:{port}/x", body={})
    assert len(sleeps) == 3
    assert f"127.0.0.1:{port}" in err.message and err.code == "connection_failed"


async def test_reply_size_is_capped(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([ok({"blob": "x" * 5000})])
    url = serve(script)
    err, _ = await _failed(transport, errors.BadReply, "GET", url + "/x", max_reply_bytes=1000)
    assert err.code == "bad_reply" and err.status == 502 and script.hits == 1


async def test_a_reply_that_is_not_json_is_a_bad_reply_not_retried(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([lambda: web.Response(text="<html>a proxy's page</html>", content_type="text/html")])
    url = serve(script)
    err, sleeps = await _failed(transport, errors.BadReply, "GET", url + "/x")
    assert script.hits == 1 and sleeps == [] and "not JSON" in err.message


def test_every_error_class_maps_back_from_its_code() -> None:
    classes = error_classes()
    for cls in classes.values():
        err = error_from_reply(cls.status, {"error": {"code": cls.code, "message": "m"}}, service="s")
        assert type(err) is cls and err.message == "m"
    assert {"unavailable", "connection_failed", "discharge_required", "invalid_token"} <= set(classes)


async def test_deeply_nested_reply_is_a_bad_reply(serve: Serve, transport: type[HTTP]) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    script = Script([lambda: web.Response(text=nested, content_type="application/json")])
    url = serve(script)
    await _failed(transport, errors.BadReply, "GET", url + "/x")


async def test_a_slow_server_times_out_within_the_bound_and_get_is_retried(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([ok({"x": 1})], delay=5.0)
    url = serve(script)
    started = time.monotonic()
    err, sleeps = await _failed(transport, errors.ConnectionFailed, "GET", url + "/slow", timeout=0.3)
    assert "timed out" in err.message and len(sleeps) == 3
    assert time.monotonic() - started < 4.0  # four attempts of 0.3 s, not four of 5 s


async def test_a_post_that_timed_out_is_not_repeated(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([ok({"x": 1})], delay=5.0)
    url = serve(script)
    # Not "could not connect" (which promises nothing was changed): the POST may have been applied.
    err, sleeps = await _failed(transport, errors.OutcomeUnknown, "POST", url + "/write", body={}, timeout=0.3)
    assert sleeps == [] and "timed out during POST /write" in err.message and err.idempotency_key is None


async def test_query_parameters_arrive_encoded(serve: Serve, transport: type[HTTP]) -> None:
    script = Script([ok({"x": 1})])
    url = serve(script)
    http, _ = _http(transport)
    try:
        assert await http.request("GET", url + "/q", params={"prefix": "db/ x&y", "limit": "5"}) == {"x": 1}
    finally:
        await http.close()
    assert script.queries == [{"prefix": "db/ x&y", "limit": "5"}]


async def test_the_blocking_transport_keeps_one_connection_for_a_command(serve: Serve) -> None:
    script = Script([ok({"x": 1})])
    url = serve(script)
    http, _ = _http(BlockingHTTP)
    try:
        for _ in range(3):
            await http.request("POST", url + "/x", body={"n": 1})
    finally:
        await http.close()
    assert script.hits == 3 and len(set(script.peers)) == 1


# -- the blocking transport's own HTTP/1.1 reader, against replies aiohttp's server would not send ----


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], str]]:
    """A TCP server answering every connection with fixed bytes, then closing it; its base URL."""
    servers: list[socketserver.TCPServer] = []

    def start(reply: bytes) -> str:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                self.request.sendall(reply)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()  # shutdown() polls
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class Chunked(Script):
    """A server answering every request with one JSON reply sent as the chunks ``parts``."""

    def __init__(self, parts: list[bytes]) -> None:
        super().__init__([])
        self.parts = parts

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in self.parts:
            await response.write(part)
        await response.write_eof()
        return response


async def test_a_chunked_reply_is_read_whole(serve: Serve, transport: type[HTTP]) -> None:
    script = Chunked([b'{"items": [', b'"a", ', b'"b"', b"]}"])
    url = serve(script)
    http, _ = _http(transport)
    try:
        assert await http.request("GET", url + "/x") == {"items": ["a", "b"]}
        assert await http.request("GET", url + "/x") == {"items": ["a", "b"]}  # the connection is still usable
    finally:
        await http.close()
    assert script.hits == 2


async def test_a_chunked_reply_over_the_cap_is_a_bad_reply(serve: Serve) -> None:
    script = Chunked([b" " * 400] * 5 + [b"{}"])
    url = serve(script)
    await _failed(BlockingHTTP, errors.BadReply, "GET", url + "/x", max_reply_bytes=1000)
    assert script.hits == 1


async def test_an_interim_reply_is_skipped_and_a_body_may_end_with_the_connection(
    raw_server: Callable[[bytes], str],
) -> None:
    url = raw_server(b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}')
    http, _ = _http(BlockingHTTP)
    try:
        assert await http.request("POST", url + "/x", body={}) == {"a": 1}
        assert await http.request("POST", url + "/x", body={}) == {"a": 1}  # a new connection each time
    finally:
        await http.close()


async def test_an_empty_reply_is_none(raw_server: Callable[[bytes], str]) -> None:
    url = raw_server(b"HTTP/1.1 204 No Content\r\n\r\n")
    http, _ = _http(BlockingHTTP)
    try:
        assert await http.request("DELETE", url + "/x") is None
    finally:
        await http.close()


@pytest.mark.parametrize(
    "reply",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a": 1',  # closed mid-body
        b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a broken chunk size
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"",  # closed without a word
    ],
    ids=["mid-body", "not-http", "bad-chunk", "bad-header", "silent"],
)
async def test_a_broken_reply_is_a_dropped_connection_retried_only_when_safe(
    raw_server: Callable[[bytes], str], reply: bytes
) -> None:
    url = raw_server(reply)
    http, sleeps = _http(BlockingHTTP)
    try:
        with pytest.raises(errors.ConnectionFailed, match="dropped the connection"):
            await http.request("GET", url + "/x")
        assert len(sleeps) == 3  # a GET is retried
        sleeps.clear()
        with pytest.raises(errors.OutcomeUnknown, match="dropped the connection"):
            await http.request("POST", url + "/x", body={})
        assert sleeps == []  # a POST without a key is not retried, and may have been applied
    finally:
        await http.close()


async def test_an_unknown_outcome_is_not_hidden_by_a_later_untrusted_certificate(
    raw_server: Callable[[bytes], str],
) -> None:
    # The first attempt really is cut off after sending (it may have been applied); the retry meets a
    # certificate it does not trust (swapped between attempts: a rotation gone wrong, or someone in between),
    # which the transport reports as such. "Not trusted" is about that attempt only.
    class CertificateSwapped(HTTP):
        sent = 0

        async def _send(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
            self.sent += 1
            if self.sent > 1:
                raise TransportError("could not connect", opened=False, untrusted=True)
            return await super()._send(*args, **kwargs)

    url = raw_server(b"")
    http, sleeps = _http(CertificateSwapped)
    try:
        with pytest.raises(errors.OutcomeUnknown) as err:
            await http.request("PUT", url + "/v1/secret", body={"value": "v"}, idempotency_key="k-9")
    finally:
        await http.close()
    assert err.value.idempotency_key == "k-9" and "dropped the connection" in err.value.message
    assert len(sleeps) == 1


async def test_a_batch_read_cut_off_is_retried_and_never_in_doubt(raw_server: Callable[[bytes], str]) -> None:
    # A read sent as POST (its names in the body): `cvault run --fallback` falls back on Unavailable, so a dropped
    # batch read must stay one, not become an "outcome unknown" change.
    from vault.client.store import StoreClient

    class Owner:
        def store_org(self) -> int:
            return 7

        async def store_bundle(self, caveats: object, token: object = None) -> str:
            return "cv1_x"

    url = raw_server(b"")
    http, sleeps = _http(BlockingHTTP)
    try:
        with pytest.raises(errors.ConnectionFailed, match="dropped the connection"):
            await StoreClient(http, url, Owner()).batch_read("v", names=["a"])
    finally:
        await http.close()
    assert len(sleeps) == 3


def test_a_header_value_with_a_line_break_is_refused_before_sending(raw_server: Callable[[bytes], str]) -> None:
    url = raw_server(b"HTTP/1.1 204 No Content\r\n\r\n")
    http, _ = _http(BlockingHTTP)
    with pytest.raises(ValueError, match="invalid header"):
        run_blocking(http.request("GET", url + "/x", authorization="Bearer x\r\nX-Evil: 1"))
    run_blocking(http.close())
