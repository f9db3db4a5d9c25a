"""Malformed requests: no credential in any log or error body, whatever the request looks like.

aiohttp's own parser once logged the whole header line (bundle or session) at ERROR
with a traceback and answered text/plain. The requests here are raw bytes on a socket,
to both services behind the runner ``cvault serve`` uses; every log record of the run
(aiohttp's loggers included) and every reply byte is searched for the credential.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from urllib.parse import urlsplit

import pytest

from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import Harness
from vault.macaroon import decode_token
from vault.macaroon.caveats import Operations
from vault.macaroon.wire import MAX_TOKEN_BYTES

SESSION = "cvs_" + "S3cr3tSess10n" * 3 + "AAA"


async def _raw(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 30)
        return status, headers, body
    finally:
        writer.close()


def _request(path: str, authorization: bytes, *, method: bytes = b"GET") -> bytes:
    return method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization + b"\r\n\r\n"


def _assert_quiet(caplog: pytest.LogCaptureFixture, secret: str, *replies: bytes) -> None:
    # A piece of it is enough to leak it: search for a 16-character window of the credential.
    needle = secret[-40:-24]
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert needle not in text, (record.name, record.levelname, text[:300])
    for reply in replies:
        assert needle.encode() not in reply


def _json_error(status: int, headers: dict[str, str], body: bytes) -> str:
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:200])
    code: str = json.loads(body)["error"]["code"]
    return code


@pytest.mark.parametrize("service", ["authority", "store"])
async def test_a_bad_byte_in_authorization_is_a_json_400_and_logs_nothing_of_it(
    world: EnrolledOrg, caplog: pytest.LogCaptureFixture, service: str
) -> None:
    caplog.set_level(logging.DEBUG)
    h = world.h
    secret, base, path = (
        (SESSION, h.authority_url, "/v1/me")
        if service == "authority"
        else (world.bundle, h.store_url, world.path("/vaults"))
    )
    status, headers, body = await _raw(base, _request(path, b"Bearer " + secret.encode() + b"\x7f"))
    assert status == 400
    assert _json_error(status, headers, body) == "bad_request"
    assert headers.get("cache-control") == "no-store"
    assert len(headers.get("x-request-id", "")) == 16  # like every other reply (docs/api.md)
    _assert_quiet(caplog, secret, body)


@pytest.mark.parametrize("service", ["authority", "store"])
async def test_a_header_beyond_any_token_is_a_json_400_and_logs_nothing_of_it(
    world: EnrolledOrg, caplog: pytest.LogCaptureFixture, service: str
) -> None:
    caplog.set_level(logging.DEBUG)
    h = world.h
    huge = "cv1_" + secrets.token_urlsafe(225_000)
    base = h.authority_url if service == "authority" else h.store_url
    status, headers, body = await _raw(base, _request("/v1/me", b"Bearer " + huge.encode()))
    assert status == 400
    assert _json_error(status, headers, body) == "bad_request"
    _assert_quiet(caplog, huge, body)


async def test_a_session_header_over_8190_bytes_reaches_the_app(
    world: EnrolledOrg, caplog: pytest.LogCaptureFixture
) -> None:
    # Over aiohttp's default line limit, under cvault's: the app answers (a wrong session is a 401).
    caplog.set_level(logging.DEBUG)
    long_session = "cvs_" + "x" * 12_000
    status, headers, body = await _raw(world.h.authority_url, _request("/v1/me", b"Bearer " + long_session.encode()))
    assert status == 401
    assert _json_error(status, headers, body) == "unauthenticated"
    _assert_quiet(caplog, long_session, body)


async def test_a_token_at_the_32_kib_cap_can_be_presented(world: EnrolledOrg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = world
    h: Harness = w.h
    assert (await h.store("PUT", w.secret("a"), w.bundle, {"value": "x"})).status == 200
    token = decode_token(w.root)
    # Pad with allowed operation names until the token is just under the cap.
    filler = tuple(f"secrets.read.{i:05d}" + "x" * 100 for i in range(268))
    big = token.attenuate([Operations(("secrets.read", *filler))])
    assert MAX_TOKEN_BYTES - 1024 < len(big.encode()) <= MAX_TOKEN_BYTES, len(big.encode())
    bundle = await h.store_bundle(big, w.auth)
    assert len(bundle) > 8190 * 4
    status, _headers, body = await _raw(h.store_url, _request(w.secret("a"), b"Bearer " + bundle.encode()))
    assert status == 200, body[:300]
    assert json.loads(body)["value"] == "x"
