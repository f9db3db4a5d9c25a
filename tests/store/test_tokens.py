"""Store tokens: enrolment, minting no wider than the caller, revocation seen by every node."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestServer

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import Harness, attenuate
from vault.macaroon import decode_token
from vault.macaroon.caveats import ClientCIDR, Operations, Organization
from vault.storage.pool import Pool
from vault.web.store import create_store_app


async def test_enrolment_challenge_is_worthless_without_discharge(harness: Harness, pool: Pool) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    r = await h.store("GET", f"/v1/orgs/{org}/enroll")
    challenge = r.body["challenge"]
    caveats = decode_token(challenge).unverified_caveats
    assert Operations(("enroll",)) in caveats
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", challenge, {"slug": "acme"})
    assert r.status == 401 and r.code == "discharge_required"
    # Not enrolled: every other route is 404, whatever the token.
    r = await h.store("GET", f"/v1/orgs/{org}/vaults", challenge)
    assert r.status == 404
    assert summary(await audit_since(pool, 0)) == [("enroll", "denied", None, None)]


async def test_enrolment_needs_control(harness: Harness) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    reader = await h.add_member(owner, org, "reader@example.com", "reader")
    reader_auth = await h.authority_bundle(reader, org)
    challenge = (await h.store("GET", f"/v1/orgs/{org}/enroll")).body["challenge"]
    bundle = await h.store_bundle(challenge, reader_auth)  # the authority grants only 'r'
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", bundle, {"slug": "acme"})
    assert r.status == 403, r


async def test_enrolment_mints_a_fresh_root_token_each_time(harness: Harness, pool: Pool) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    auth = await h.authority_bundle(owner, org)
    first, second = await h.enroll(auth, org, "acme"), await h.enroll(auth, org, "acme")
    assert decode_token(first).token_id != decode_token(second).token_id
    assert Organization(org, 0b111111) in decode_token(first).unverified_caveats
    rows = await pool.fetch("SELECT kind, mask, actor FROM store.tokens ORDER BY created_at")
    assert [(r["kind"], r["mask"], r["actor"]) for r in rows] == [("root", "rwcdCa", str(owner.id))] * 2
    events = await audit_since(pool, 0)
    assert summary(events) == [("enroll", "ok", None, None)] * 2
    assert [e["detail"]["minted"] for e in events] == [decode_token(first).token_id, decode_token(second).token_id]


async def test_a_challenge_opens_nothing_but_enrolment(world: EnrolledOrg) -> None:
    h = world.h
    challenge = (await h.store("GET", world.path("/enroll"))).body["challenge"]
    bundle = await h.store_bundle(challenge, world.auth)
    r = await h.store("GET", world.path("/vaults"), bundle)
    assert r.status == 403


async def test_mint_cannot_widen(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    narrow = await h.store_bundle(await h.mint(world.bundle, world.org, mask="rC"), world.auth)
    seq = await audit_head(pool)
    r = await h.store("POST", world.path("/tokens"), narrow, {"mask": "rw"})
    assert r.status == 403 and "cannot mint 'rw'" in r.body["error"]["message"]
    assert (await h.store("POST", world.path("/tokens"), narrow, {"mask": "r"})).status == 201
    assert summary(await audit_since(pool, seq)) == [
        ("tokens.mint", "denied", None, None),
        ("tokens.mint", "ok", None, None),
    ]


async def test_minted_token_keeps_the_callers_restrictions(world: EnrolledOrg) -> None:
    h = world.h
    fenced = attenuate(world.root, [ClientCIDR(("127.0.0.0/8",))])
    bundle = await h.store_bundle(fenced, world.auth)
    minted = await h.mint(bundle, world.org, mask="r", vaults={"prod": "r"}, secrets={"db/": "r"}, ttl=600)
    caveats = decode_token(minted).unverified_caveats
    assert ClientCIDR(("127.0.0.0/8",)) in caveats
    assert any(c.NAME == "Vaults" for c in caveats) and any(c.NAME == "Secrets" for c in caveats)
    assert any(c.NAME == "ValidityWindow" for c in caveats)


async def test_revoked_token_refused_on_every_node(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    r = await h.store("PUT", world.secret("db/url"), world.bundle, {"value": "v"})
    assert r.status == 200
    reader = await h.mint(world.bundle, world.org, mask="r")
    reader_bundle = await h.store_bundle(reader, world.auth)
    # A second store node on the same database.
    other = TestServer(create_store_app(h.store_config), host="127.0.0.1")
    await other.start_server()
    try:
        url = f"http://127.0.0.1:{other.port}" + world.secret("db/url")
        headers = {"Authorization": f"Bearer {reader_bundle}"}
        async with h.http.get(url, headers=headers) as resp:
            assert resp.status == 200
        reader_id = decode_token(reader).token_id
        r = await h.store("POST", world.path(f"/tokens/{reader_id}/revoke"), world.bundle)
        assert r.status == 200 and r.body["revoked"] == reader_id
        assert (await h.store("GET", world.secret("db/url"), reader_bundle)).status == 401
        for _ in range(100):  # the other node learns within a second; allow a slow machine ten
            async with h.http.get(url, headers=headers) as resp:
                if resp.status == 401:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the second store node never saw the revocation")
    finally:
        await other.close()
    # Only that token: the root still works.
    assert (await h.store("GET", world.secret("db/url"), world.bundle)).status == 200


async def test_revoking_a_token_revokes_those_minted_from_it(world: EnrolledOrg) -> None:
    h = world.h
    parent = await h.mint(world.bundle, world.org, mask="rC")
    parent_bundle = await h.store_bundle(parent, world.auth)
    child = await h.mint(parent_bundle, world.org, mask="r")
    parent_id, child_id = decode_token(parent).token_id, decode_token(child).token_id
    r = await h.store("POST", world.path(f"/tokens/{parent_id}/revoke"), world.bundle)
    assert sorted(r.body["with_descendants"]) == sorted([parent_id, child_id])
    child_bundle = await h.store_bundle(child, world.auth)
    assert (await h.store("GET", world.path("/vaults"), child_bundle)).status == 401
