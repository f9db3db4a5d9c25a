"""The store follows the authority's revocation feed: an existing bundle stops within a second (docs/revocation.md).

Each test revokes something at the authority over HTTP and polls the store with the bundle it already had until the
store refuses it. The bound polled for is generous (the machine is shared); bench/revocation.py measures the delay.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.support.enrolled_org import EnrolledOrg, world
from tests.support.harness import Harness, Reply, User, harness, running_services
from vault.authority.revocation_feed import new_feed_token
from vault.config import load_config
from vault.errors import ConfigError
from vault.macaroon import ALL, decode_token, encode_bundle
from vault.macaroon.caveats import LoginSession, Organization, TokenLineage, UserID, ValidityWindow
from vault.web.store import create_store_app

__all__ = ["harness", "world"]

REFUSED_WITHIN = 5.0  # functional bound; the measured figure is in docs/revocation.md


async def read(h: Harness, world: EnrolledOrg, bundle: str, base: str | None = None) -> Reply:
    if base is None:
        return await h.store("GET", world.path("/vaults"), bundle)
    async with h.http.get(base + world.path("/vaults"), headers={"Authorization": f"Bearer {bundle}"}) as resp:
        return Reply(resp.status, await resp.json())


async def refused_after(h: Harness, world: EnrolledOrg, bundle: str, *, within: float = REFUSED_WITHIN) -> Reply:
    """Poll the store with ``bundle`` until it refuses; fail if it still serves it after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        r = await read(h, world, bundle)
        if r.status != 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert r.status == 401, f"the store still serves the bundle {within} s after the revocation: {r}"
    assert r.code == "discharge_required", r
    return r


async def member_bundle(world: EnrolledOrg, email: str, role: str) -> tuple[User, str, str]:
    """A member, their authority bundle, and the root store token discharged with it."""
    h = world.h
    member = await h.add_member(world.owner, world.org, email, role)
    auth = await h.authority_bundle(member, world.org)
    bundle = await h.store_bundle(world.root, auth)
    assert (await read(h, world, bundle)).status == 200
    return member, auth, bundle


async def service_token(world: EnrolledOrg, user: User) -> tuple[str, str]:
    """``(permission token id, service token bundle)``: a service token stripped from a fresh permission token."""
    h = world.h
    auth = await h.authority_bundle(user, world.org)
    stripped = await h.authority("POST", "/v1/tokens/strip", auth)
    assert stripped.status == 201, stripped
    return decode_token(auth.split(",")[0]).token_id, stripped.body["token"]


async def test_revoking_a_service_token_stops_its_bundle_at_the_store(world: EnrolledOrg) -> None:
    h = world.h
    _parent, service = await service_token(world, world.owner)
    bundle = await h.store_bundle(world.root, service)
    assert (await read(h, world, bundle)).status == 200
    token_id = decode_token(service).token_id
    assert (await h.authority("POST", f"/v1/tokens/{token_id}/revoke", world.owner.session)).status == 200
    r = await refused_after(h, world, bundle)
    assert token_id in r.body["error"]["message"] and "revoked" in r.body["error"]["message"]
    # The owner's other bundle is untouched.
    assert (await read(h, world, world.bundle)).status == 200


async def test_revoking_the_parent_stops_the_service_tokens_bundle(world: EnrolledOrg) -> None:
    h = world.h
    parent, service = await service_token(world, world.owner)
    bundle = await h.store_bundle(world.root, service)
    assert (await read(h, world, bundle)).status == 200
    assert (await h.authority("POST", f"/v1/tokens/{parent}/revoke", world.owner.session)).status == 200
    await refused_after(h, world, bundle)
    assert (await read(h, world, world.bundle)).status == 200


async def test_removing_a_member_stops_their_existing_bundle(world: EnrolledOrg) -> None:
    h = world.h
    member, _auth, bundle = await member_bundle(world, "op@example.com", "operator")
    await h.remove_member(world.owner, world.org, member)
    r = await refused_after(h, world, bundle)
    assert "membership" in r.body["error"]["message"]
    assert (await read(h, world, world.bundle)).status == 200


async def test_downgrading_a_role_stops_discharges_issued_before_it(world: EnrolledOrg) -> None:
    h = world.h
    member, auth, bundle = await member_bundle(world, "op@example.com", "operator")
    assert (await h.store("PUT", world.secret("db/url"), bundle, {"value": "v1"})).status == 200
    r = await h.authority("PATCH", f"/v1/orgs/{world.org}/members/{member.id}", world.owner.session, {"role": "reader"})
    assert r.status == 200
    await refused_after(h, world, bundle)
    # A discharge issued after the change (a second later: cut-offs are compared in whole seconds) has the new mask.
    # Both services' clocks move on; the cut-off is the database's clock, which stays.
    h.authority_clock.offset = h.store_clock.offset = 1.1
    fresh = await h.store_bundle(world.root, auth)
    assert (await h.store("GET", world.secret("db/url"), fresh)).status == 200
    assert (await h.store("PUT", world.secret("db/url"), fresh, {"value": "v2"})).status == 403


async def test_an_upgrade_leaves_existing_bundles_alone(world: EnrolledOrg) -> None:
    h = world.h
    member, _auth, bundle = await member_bundle(world, "reader@example.com", "reader")
    r = await h.authority(
        "PATCH", f"/v1/orgs/{world.org}/members/{member.id}", world.owner.session, {"role": "operator"}
    )
    assert r.status == 200
    # A revocation after the upgrade: once the store refuses its bundle, it has read the upgrade's place in the feed.
    _other, _auth, later = await member_bundle(world, "op@example.com", "operator")
    await h.remove_member(world.owner, world.org, _other)
    await refused_after(h, world, later)
    assert (await read(h, world, bundle)).status == 200


async def test_logging_out_stops_the_bundles_of_that_session(world: EnrolledOrg) -> None:
    h = world.h
    member, _auth, bundle = await member_bundle(world, "op@example.com", "operator")
    assert (await h.authority("DELETE", "/v1/sessions/current", member.session)).status == 204
    r = await refused_after(h, world, bundle)
    assert "session" in r.body["error"]["message"]
    assert (await read(h, world, world.bundle)).status == 200


async def test_a_restarted_store_reads_the_feed_from_the_start(world: EnrolledOrg) -> None:
    h = world.h
    member, _auth, removed_bundle = await member_bundle(world, "op@example.com", "operator")
    _parent, service = await service_token(world, world.owner)
    service_bundle = await h.store_bundle(world.root, service)
    # Revoked while the "restarted" node was down: a node started afterwards must know both at once.
    await h.remove_member(world.owner, world.org, member)
    await refused_after(h, world, removed_bundle)
    restarted = TestServer(create_store_app(h.store_config), host="127.0.0.1")
    await restarted.start_server()
    try:
        base = f"http://127.0.0.1:{restarted.port}"
        assert (await read(h, world, removed_bundle, base)).status == 401
        assert (await read(h, world, service_bundle, base)).status == 200
        # And it keeps following from where its first read ended.
        token_id = decode_token(service).token_id
        assert (await h.authority("POST", f"/v1/tokens/{token_id}/revoke", world.owner.session)).status == 200
        deadline = time.monotonic() + REFUSED_WITHIN
        while (r := await read(h, world, service_bundle, base)).status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert r.status == 401, r
    finally:
        await restarted.close()


@pytest.fixture
async def short_lag(database_url: str) -> AsyncIterator[Harness]:
    async with running_services(database_url, revocation_feed_max_lag=2) as h:
        yield h


async def test_an_unreachable_feed_fails_closed_for_discharges_older_than_the_bound(short_lag: Harness) -> None:
    h = short_lag
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    auth = await h.authority_bundle(owner, org)
    root = await h.enroll(auth, org, "acme")
    bundle = await h.store_bundle(root, auth)
    path = f"/v1/orgs/{org}/vaults"
    # While the feed answers, a discharge older than the bound (by the store's clock) is still good.
    h.store_clock.offset = 2.5
    assert (await h.store("GET", path, bundle)).status == 200
    info = decode_token(auth.split(",")[1])
    [user] = [c for c in info.unverified_caveats if isinstance(c, UserID)]
    [session] = [c for c in info.unverified_caveats if isinstance(c, LoginSession)]

    await h.authority_server.close()  # the feed is gone
    deadline = time.monotonic() + 10
    while (r := await h.store("GET", path, bundle)).status == 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert r.status == 401 and r.code == "discharge_required", r
    assert "revocation feed" in r.body["error"]["message"]
    # A discharge issued within the bound still passes (the authority checked it when it issued it).
    now = int(h.store_clock())
    fresh = h.forge_org_discharge(
        root,
        [
            ValidityWindow(now, now + 60),
            Organization(org, ALL),
            user,
            TokenLineage(decode_token(auth.split(",")[0]).token_id, ()),
            session,
        ],
        bind=True,
    )
    fresh_bundle = encode_bundle([decode_token(root), fresh])
    assert (await h.store("GET", path, fresh_bundle)).status == 200


def test_the_store_refuses_to_start_without_a_feed_token() -> None:
    key = base64.b64encode(bytes(32)).decode()
    with pytest.raises(ConfigError, match="CVAULT_REVOCATION_FEED_TOKEN"):
        create_store_app(load_config({}, authority_org_public_key=key))
    # Only an explicit "no feed" (a benchmark without an authority) starts without one.
    create_store_app(load_config({}, authority_org_public_key=key, revocation_feed=False))


def test_feed_settings_are_checked_without_echoing_the_token() -> None:
    token, digest = new_feed_token()
    config = load_config({"CVAULT_REVOCATION_FEED_TOKEN": token, "CVAULT_REVOCATION_FEED_TOKEN_SHA256": digest})
    assert config.revocation_feed_token == token and config.revocation_feed_token_sha256 == (digest,)
    assert token not in repr(config)
    with pytest.raises(ConfigError, match="CVAULT_REVOCATION_FEED_TOKEN") as bad:
        load_config({"CVAULT_REVOCATION_FEED_TOKEN": token + "\n" + "x"})
    assert token not in str(bad.value)
    with pytest.raises(ConfigError, match="SHA-256"):
        load_config({"CVAULT_REVOCATION_FEED_TOKEN_SHA256": digest[:-1]})


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"revocation_feed_url": "http://10.1.2.3:8201/v1/revocations/feed"}, True),
        ({"authority_url": "http://authority.internal:8201"}, True),
        ({"revocation_feed_url": "https://authority.internal:8201/v1/revocations/feed"}, False),
        ({"revocation_feed_url": "http://127.0.0.1:8201/v1/revocations/feed"}, False),
        ({"authority_url": "http://localhost:8201"}, False),
    ],
)
def test_a_plain_http_feed_to_another_machine_is_refused(settings: dict[str, str], refused: bool) -> None:
    # The feed token would cross the network in clear, and a forged empty feed would keep the store "synced".
    token, _ = new_feed_token()
    config = load_config(
        {}, authority_org_public_key=base64.b64encode(bytes(32)).decode(), revocation_feed_token=token, **settings
    )
    if refused:
        with pytest.raises(ConfigError, match="plain HTTP to another machine") as bad:
            create_store_app(config)
        assert token not in str(bad.value)
    else:
        create_store_app(config)
