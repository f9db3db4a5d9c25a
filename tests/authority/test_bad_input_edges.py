"""Odd input at the authority's HTTP surface that once produced a 500 (or widened a token): each refused cleanly."""

from __future__ import annotations

import json

from tests.authority.test_bad_input import _expect_4xx
from tests.support.authority_app import (
    AUTHORITY_URL,
    Client,
    bearer,
    bootstrap_owner,
    call,
    login_discharge,
    permission_token,
)
from vault.macaroon import ALL, READ, decode_token, encode_bundle
from vault.macaroon.caveats import IfPresent, Secrets


async def test_unicode_digits_in_path_ids_are_a_400(client: Client) -> None:
    # "²" passes str.isdigit() but int() refuses it.
    owner = await bootstrap_owner(client)
    headers = bearer(owner.session)
    await _expect_4xx(client, "GET", "/v1/orgs/%C2%B2/members", headers=headers)
    await _expect_4xx(client, "DELETE", f"/v1/orgs/{owner.org_id}/members/%C2%B2", headers=headers)


async def test_deeply_nested_json_is_a_400(client: Client) -> None:
    owner = await bootstrap_owner(client)
    body = b"[" * 100_000 + b"]" * 100_000
    await _expect_4xx(client, "POST", "/v1/sessions", data=body[: 200 * 1024])
    nested = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    await _expect_4xx(client, "POST", "/v1/orgs", data=nested, headers=bearer(owner.session))


async def test_minting_with_a_bundle_keeps_its_store_restrictions(client: Client) -> None:
    # An IfPresent whose else branch allows C passes the tokens.mint check; the minted
    # token must not shed the restriction on secrets, or minting would widen the bundle.
    owner = await bootstrap_owner(client)
    own_token = await permission_token(client, owner.session, owner.org_id, ttl=600)
    discharge = await login_discharge(client, owner.session, own_token)
    only_db = IfPresent((Secrets((("db/", READ),)),), ALL)
    narrowed = own_token.attenuate([only_db])
    reply = await call(
        client,
        "POST",
        "/v1/tokens",
        json={"org": owner.org_id},
        headers=bearer(encode_bundle([narrowed, discharge])),
        expect=201,
    )
    assert only_db in decode_token(reply["token"]).unverified_caveats


async def test_a_key_id_beyond_bigint_is_an_invalid_token(client: Client) -> None:
    # The kid is read before any signature can be checked; a row id the database's
    # bigint cannot hold must be an invalid token, not a 500.
    from vault.macaroon import Macaroon, encode_token
    from vault.macaroon.caveats import Organization

    owner = await bootstrap_owner(client)
    for kid in (b"\xff" * 8, b"\x80" + b"\x00" * 7):
        forged = Macaroon.mint(kid, AUTHORITY_URL, b"k" * 32, [Organization(owner.org_id, ALL)])
        reply = await client.post(
            "/v1/tokens", json={"org": owner.org_id}, headers={"Authorization": f"Bearer {encode_token(forged)}"}
        )
        assert reply.status == 401, await reply.text()
        assert (await reply.json())["error"]["code"] == "invalid_token"


async def test_login_with_nul_or_surrogates_in_the_email_is_a_4xx(client: Client) -> None:
    await bootstrap_owner(client)
    for email in ("a\u0000b@example.com", "\ud800@example.com", "x" * 5000):
        await _expect_4xx(
            client,
            "POST",
            "/v1/sessions",
            data=json.dumps({"email": email, "password": "pw"}).encode(),
            headers={"Content-Type": "application/json"},
        )
