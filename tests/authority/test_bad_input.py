"""Bad input on every route gets a 4xx JSON error: never a 500, never a stack trace."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from tests.support.authority_app import Client, Owner, bootstrap_owner

JUNK_TOKEN = "cv1_" + base64.urlsafe_b64encode(os.urandom(90)).decode().rstrip("=")
HUGE = json.dumps({"slug": "x" * (300 * 1024)}).encode()

BODIES: list[bytes] = [
    b"{not json",
    b"[]",
    b"",
    b'"a string"',
    b"\xff\xfe\x00",
    HUGE,
    json.dumps(
        {
            "email": 5,
            "password": [],
            "slug": 7,
            "role": 1,
            "org": "x",
            "mask": 5,
            "ttl": "x",
            "ticket": 5,
            "binding_id": 5,
        }
    ).encode(),
    json.dumps(
        {"email": "a", "password": "", "slug": "", "role": "king", "org": True, "mask": "xyz", "ttl": -1}
    ).encode(),
    json.dumps({"org": 2**70, "ttl": 10**12, "mask": ""}).encode(),
    json.dumps({"ticket": "!!!", "binding_id": "AAAA"}).encode(),
    json.dumps({"ticket": base64.b64encode(os.urandom(80)).decode(), "binding_id": "AAAA"}).encode(),
    json.dumps(
        {
            "ticket": base64.b64encode(b"\x01" + os.urandom(80)).decode(),
            "binding_id": base64.b64encode(bytes(16)).decode(),
        }
    ).encode(),
]

AUTHS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer cvs_short"},
    {"Authorization": "Bearer cvs_" + "A" * 43},
    {"Authorization": "Bearer " + JUNK_TOKEN},
    {"Authorization": "Bearer cv1_!!!!"},
    {"Authorization": "Bearer fm2_notbase64***"},
    {"Authorization": "Bearer " + ",".join([JUNK_TOKEN] * 20)},
    {"Authorization": "Bearer " + "x" * 7000},
    {"Authorization": "Bearer " + JUNK_TOKEN + ",cvs_" + "A" * 43},
]

# method, path template, credential kind ("session", "bundle", "either" or None), takes a body
ROUTES: list[tuple[str, str, str | None, bool]] = [
    ("POST", "/v1/sessions", None, True),
    ("DELETE", "/v1/sessions/current", "session", False),
    ("GET", "/v1/me", "session", False),
    ("POST", "/v1/orgs", "session", True),
    ("GET", "/v1/orgs", "session", False),
    ("GET", "/v1/orgs/{org}/members", "session", False),
    ("POST", "/v1/orgs/{org}/invitations", "session", True),
    ("GET", "/v1/invitations", "session", False),
    ("POST", "/v1/invitations/{invitation}/accept", "session", True),
    ("PATCH", "/v1/orgs/{org}/members/{user}", "session", True),
    ("DELETE", "/v1/orgs/{org}/members/{user}", "session", False),
    ("POST", "/v1/tokens", "either", True),
    ("GET", "/v1/tokens", "session", False),
    ("POST", "/v1/tokens/strip", "bundle", False),
    ("POST", "/v1/tokens/{token}/revoke", "session", False),
    ("GET", "/v1/revocations", None, False),
    ("POST", "/login/.well-known/macfly/3p", "session", True),
    ("POST", "/org/.well-known/macfly/3p", "bundle", True),
    ("GET", "/.well-known/cvault/keys", None, False),
]

BAD_PATHS = {
    "{org}": ["abc", "0", "-1", "99999999999999999999999", "1e5"],
    "{user}": ["abc", "0", "18446744073709551616"],
    "{token}": ["not-a-uuid", "1234", "%00"],
    "{invitation}": ["not-a-uuid", "1234", "%00"],
}


async def _expect_4xx(client: Client, method: str, path: str, **kwargs: Any) -> None:
    response = await client.request(method, path, **kwargs)
    text = await response.text()
    where = f"{method} {path} {kwargs.get('headers', {})} {str(kwargs.get('data', b''))[:60]}"
    assert 400 <= response.status < 500, (where, response.status, text[:300])
    assert response.content_type == "application/json", (where, text[:300])
    body = json.loads(text)
    assert set(body["error"]) == {"code", "message"}, where
    assert body["error"]["code"] and body["error"]["message"]
    assert "Traceback" not in text and 'File "' not in text, where
    assert response.headers.get("X-Request-Id")


def _fill(path: str, owner: Owner) -> str:
    return path.format(
        org=owner.org_id,
        user=owner.user_id,
        token="00000000-0000-0000-0000-000000000000",
        invitation="00000000-0000-0000-0000-000000000000",
    )


def _credential(kind: str | None, owner: Owner) -> dict[str, str]:
    return {"Authorization": f"Bearer {owner.session}"} if kind in ("session", "either") else {}


@pytest.mark.parametrize(("method", "path", "kind", "has_body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_bad_input_gets_a_4xx_json_error(
    client: Client, method: str, path: str, kind: str | None, has_body: bool
) -> None:
    owner = await bootstrap_owner(client)
    url = _fill(path, owner)
    if has_body:
        for body in BODIES:
            headers = {"Content-Type": "application/json", **_credential(kind, owner)}
            if kind == "bundle":
                headers["Authorization"] = f"Bearer {JUNK_TOKEN}"
            await _expect_4xx(client, method, url, data=body, headers=headers)
    if kind is not None:
        for auth in AUTHS:
            if kind in ("session", "either") and auth.get("Authorization", "").endswith(owner.session):
                continue
            await _expect_4xx(client, method, url, json={"org": owner.org_id}, headers=auth)
        if kind == "bundle":
            # A session where a token bundle belongs.
            await _expect_4xx(client, method, url, json={}, headers={"Authorization": f"Bearer {owner.session}"})
    for placeholder, values in BAD_PATHS.items():
        if placeholder in path:
            for value in values:
                bad = path.replace(placeholder, value)
                await _expect_4xx(
                    client, method, _fill(bad, owner), json={"role": "reader"}, headers=_credential(kind, owner)
                )
    if path == "/v1/revocations":
        for query in ("since=abc", "since=-1", "since=99999999999999999999999", "limit=0", "limit=x"):
            await _expect_4xx(client, method, f"{url}?{query}")


async def test_unknown_route_and_method_are_json(client: Client) -> None:
    await _expect_4xx(client, "GET", "/v1/nothing-here")
    await _expect_4xx(client, "PUT", "/v1/sessions")


WORKLOAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("workload-issuers", {"issuer": "https://a.example", "algorithms": [{}]}),
    ("workload-issuers", {"issuer": "https://a.example", "algorithms": [["RS256"]]}),
    ("workload-issuers", {"issuer": "https://a.example", "algorithms": [None]}),
    ("workload-issuers", {"issuer": "https://a.example", "jwks": {"keys": [{"kty": "RSA", "n": "a\u0000b"}]}}),
    ("workloads", {"name": "b", "issuer": "https://a.example", "mask": "r", "claims": {"sub": 5}}),
    ("workloads", {"name": "b", "issuer": "https://a.example", "mask": "r", "claims": {"sub": "x"}, "ttl": 10**40}),
]


@pytest.mark.parametrize(("route", "body"), WORKLOAD_BODIES, ids=[f"{r} {b}" for r, b in WORKLOAD_BODIES])
async def test_hostile_workload_bodies_get_a_4xx_json_error(client: Client, route: str, body: dict[str, Any]) -> None:
    owner = await bootstrap_owner(client)
    headers = {"Authorization": f"Bearer {owner.session}"}
    await _expect_4xx(client, "POST", f"/v1/orgs/{owner.org_id}/{route}", json=body, headers=headers)
