"""Response headers on every reply of both services.

``Cache-Control: no-store`` (replies carry sessions, tokens, bundles, discharges and
secrets; caches along the way must keep none of them), ``X-Content-Type-Options:
nosniff``, no ``Server`` version string, ``WWW-Authenticate`` on 401, ``Allow`` on 405.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import PASSWORD, Harness


def _check_common(resp: aiohttp.ClientResponse) -> None:
    assert resp.headers.get("Cache-Control") == "no-store", (resp.url, dict(resp.headers))
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", (resp.url, dict(resp.headers))
    server = resp.headers.get("Server", "")
    assert "aiohttp" not in server and "Python" not in server and not any(ch.isdigit() for ch in server), server


async def _request(
    h: Harness, method: str, url: str, auth: str | None = None, json: object = None
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    async with h.http.request(method, url, headers=headers, json=json) as resp:
        await resp.read()
        return resp


async def test_every_authority_reply_has_the_security_headers(world: EnrolledOrg) -> None:
    w = world
    h = w.h
    a = h.authority_url
    replies = [
        await _request(h, "POST", a + "/v1/sessions", json={"email": w.owner.email, "password": PASSWORD}),
        await _request(h, "POST", a + "/v1/sessions", json={"email": w.owner.email, "password": "wrong password"}),
        await _request(h, "POST", a + "/v1/tokens", w.owner.session, {"org": w.org}),
        await _request(h, "GET", a + "/v1/me", w.owner.session),
        await _request(h, "GET", a + "/v1/me"),
        await _request(h, "GET", a + "/no/such/route"),
        await _request(h, "GET", a + "/openapi.json"),
        await _request(h, "GET", a + "/healthz"),
    ]
    for resp in replies:
        _check_common(resp)
    assert [r.status for r in replies[:6]] == [201, 401, 201, 200, 401, 404]


async def test_every_store_reply_has_the_security_headers(world: EnrolledOrg) -> None:
    w = world
    h = w.h
    s = h.store_url
    assert (await h.store("PUT", w.secret("a"), w.bundle, {"value": "x"})).status == 200
    replies = [
        await _request(h, "GET", s + w.secret("a"), w.bundle),
        await _request(h, "POST", s + w.path("/tokens"), w.bundle, {"mask": "r"}),
        await _request(h, "GET", s + w.path("/enroll")),
        await _request(h, "GET", s + w.path("/vaults")),
        await _request(h, "GET", s + "/vault/v1/acme/prod/data/a"),
        await _request(h, "GET", s + "/openapi.json"),
    ]
    for resp in replies:
        _check_common(resp)
    assert [r.status for r in replies[:3]] == [200, 201, 200]


@pytest.mark.parametrize("service", ["authority", "store"])
async def test_a_401_names_the_scheme_in_www_authenticate(world: EnrolledOrg, service: str) -> None:
    h = world.h
    url = h.authority_url + "/v1/me" if service == "authority" else h.store_url + world.path("/vaults")
    resp = await _request(h, "GET", url)
    assert resp.status == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(resp.headers)


@pytest.mark.parametrize("service", ["authority", "store"])
async def test_a_405_lists_the_allowed_methods(world: EnrolledOrg, service: str) -> None:
    h = world.h
    url = h.authority_url + "/v1/sessions" if service == "authority" else h.store_url + world.path("/enroll")
    resp = await _request(h, "PATCH", url)
    assert resp.status == 405
    assert resp.content_type == "application/json"
    allowed = {m.strip() for m in resp.headers.get("Allow", "").split(",")}
    assert allowed >= ({"POST"} if service == "authority" else {"GET", "POST"}), dict(resp.headers)
