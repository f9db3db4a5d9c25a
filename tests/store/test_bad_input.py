"""Bad input on store and Vault-API routes is a 4xx, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.support.audit_rows import audit_head, audit_since
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import attenuate
from vault.macaroon import Macaroon, encode_token
from vault.macaroon.caveats import Operations
from vault.storage.pool import Pool


async def _raw(w: EnrolledOrg, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {w.bundle}"}
    async with w.h.http.request(method, w.h.store_url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize("version", ["2147483648", "9223372036854775808", "99999999999999999999"])
async def test_read_of_a_version_beyond_any_stored_one_is_not_found(world: EnrolledOrg, version: str) -> None:
    w = world
    assert (await w.h.store("PUT", w.secret("a"), w.bundle, {"value": "x"})).status == 200
    # Reads are batched: a lookup the query cannot encode must not fail the other reads of its batch.
    assert (await _raw(w, "GET", w.secret("a") + f"?version={version}"))[0] == 404
    assert (await _raw(w, "GET", f"/vault/v1/acme/prod/data/a?version={version}"))[0] == 404
    assert (await w.h.store("GET", w.secret("a"), w.bundle)).body["value"] == "x"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("native", b'{"value": "\\ud800"}'),
        ("/vault/v1/acme/prod/data/a", b'{"data": {"value": "\\ud800"}}'),
        ("/vault/v1/acme/prod/data/a", b'{"data": {"\\udfff": 1}}'),
    ],
)
async def test_values_that_are_not_unicode_text_are_refused(world: EnrolledOrg, path: str, body: bytes) -> None:
    w = world
    method = "PUT" if path == "native" else "POST"
    status, _ = await _raw(w, method, w.secret("a") if path == "native" else path, body)
    assert status == 400


@pytest.mark.parametrize("org", ["%C2%B2", "%D9%A3", "%EF%BC%91"])
async def test_org_ids_of_non_ascii_digits_are_not_found(world: EnrolledOrg, org: str) -> None:
    assert (await _raw(world, "GET", f"/v1/orgs/{org}/vaults"))[0] == 404
    assert (await _raw(world, "GET", f"/v1/orgs/{org}/enroll"))[0] == 404


@pytest.mark.parametrize(
    "query",
    [
        "since=%C2%B2",
        "until=%D9%A3",
        "since=2026-01-31",
        "since=2026-01-31T10:00:00",
        "since=2026-01-31%2010:00:00Z",
        "until=2024-01-01T12:99:00Z",
        "until=2023-02-29T00:00:00Z",
        "until=-1",
        "secret=a%00b",
        "actor=a%00b",
        "action=a%00",
        "token=a%00",
        "cursor=9223372036854775808",
        "cursor=99999999999999999999",
    ],
)
async def test_bad_audit_query_parameters_are_400(world: EnrolledOrg, query: str) -> None:
    assert (await _raw(world, "GET", world.path(f"/audit?{query}")))[0] == 400


@pytest.mark.parametrize(
    "query",
    [
        # RFC 3339 date-times past what Python holds, once shifted to UTC: clamped to its first or last instant.
        "since=0001-01-01T00:00:00%2B01:00",
        "until=9999-12-31T23:59:59-01:00",
        "since=0000-02-29T00:00:00Z",
        "since=2016-12-31T23:59:60Z&until=2017-01-01t00:00:01.1234567z",
        "since=" + "9" * 5000,
        "since=&until=",
        "since=000&until=0001",
    ],
)
async def test_every_rfc_3339_date_time_and_unix_seconds_are_read(world: EnrolledOrg, query: str) -> None:
    assert (await _raw(world, "GET", world.path(f"/audit?{query}")))[0] == 200


@pytest.mark.parametrize("operation", ["a\x00b", "\x00"])
async def test_a_refusal_whose_reason_holds_a_nul_is_audited_and_403(
    world: EnrolledOrg, pool: Pool, operation: str
) -> None:
    w = world
    # The holder of a token may attenuate it with any caveat text; refusal reasons quote it.
    bundle = await w.h.store_bundle(attenuate(w.root, [Operations((operation,))]), w.auth)
    seq = await audit_head(pool)
    r = await w.h.store("GET", w.secret("a"), bundle)
    assert r.status == 403, r
    events = await audit_since(pool, seq)
    assert [(e["action"], e["outcome"]) for e in events] == [("secrets.read", "denied")]
    assert "\x00" not in json.dumps(events[0]["detail"])


@pytest.mark.parametrize("kid", [b"\xff" * 8, b"\x80" + b"\x00" * 7])
async def test_a_key_id_beyond_bigint_is_an_invalid_token(world: EnrolledOrg, kid: bytes) -> None:
    w = world
    # Anyone can write any kid: it is read before any signature can be checked.
    token = encode_token(Macaroon.mint(kid, w.h.store_url, bytes(32), []))
    for path, refused in ((w.secret("a"), 401), ("/vault/v1/acme/prod/data/a", 403)):
        async with w.h.http.get(w.h.store_url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == refused, path
    async with w.h.http.get(
        w.h.store_url + "/vault/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}
    ) as resp:
        assert resp.status == 403
