"""The privilege-separation matrix: a store token opens nothing without the authority's live say-so.

Each case is one test, and each asserts the exact audit events it leaves.
"""

from __future__ import annotations

import time

from tests.support.audit_rows import audit_head, audit_since, summary
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import attenuate
from vault.macaroon import ALL, decode_token, encode_bundle
from vault.macaroon.caveats import Organization, Secrets, UserID, ValidityWindow
from vault.storage.pool import Pool


async def _put(w: EnrolledOrg, name: str, value: str) -> None:
    r = await w.h.store("PUT", w.secret(name), w.bundle, {"value": value})
    assert r.status == 200, r


async def test_store_token_alone_is_401(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "postgres://prod")
    seq = await audit_head(pool)
    r = await world.h.store("GET", world.secret("db/url"), world.root)
    assert r.status == 401 and r.code == "discharge_required"
    assert world.h.org_location in r.body["error"]["message"]
    assert "postgres" not in str(r.body)
    events = await audit_since(pool, seq)
    assert summary(events) == [("secrets.read", "denied", "db/url", None)]
    assert events[0]["token_id"] is not None and events[0]["detail"]["code"] == "discharge_required"


async def test_discharge_from_other_org_member_is_403(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "db/url", "postgres://prod")
    mallory = await h.new_user("mallory@example.com")
    other_org = await h.create_org(mallory, "evil")
    mallory_auth = await h.authority_bundle(mallory, other_org)
    # The authority refuses to discharge acme's store token for a member of another org.
    refused = await h.org_discharge(world.root, mallory_auth)
    assert refused.status == 403, refused
    # Mallory's own org, enrolled and discharged, does not open acme's secrets either.
    evil_root = await h.enroll(mallory_auth, other_org, "evil")
    evil_bundle = await h.store_bundle(evil_root, mallory_auth)
    seq = await audit_head(pool)
    r = await h.store("GET", world.secret("db/url"), evil_bundle)
    assert r.status == 403 and r.code == "unauthorized", r
    assert summary(await audit_since(pool, seq)) == [("secrets.read", "denied", "db/url", None)]


async def test_unbound_discharge_is_401(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "postgres://prod")
    now = int(time.time())
    forged = world.h.forge_org_discharge(
        world.root, [ValidityWindow(now, now + 60), Organization(world.org, ALL), UserID(world.owner.id)], bind=False
    )
    seq = await audit_head(pool)
    bundle = world.root + "," + encode_bundle([forged])
    r = await world.h.store("GET", world.secret("db/url"), bundle)
    assert r.status == 401 and r.code == "discharge_required", r
    assert "not bound" in r.body["error"]["message"]
    assert summary(await audit_since(pool, seq)) == [("secrets.read", "denied", "db/url", None)]


async def test_discharge_bound_to_other_token_is_401(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "db/url", "postgres://prod")
    reader = await h.mint(world.bundle, world.org, mask="r")
    # A discharge for the reader token's ticket, but bound to the root token.
    d = await h.org_discharge(reader, world.auth, binding_id=decode_token(world.root).binding_id())
    assert d.status == 201, d
    seq = await audit_head(pool)
    r = await h.store("GET", world.secret("db/url"), reader + "," + d.body["discharge"])
    assert r.status == 401 and r.code == "discharge_required", r
    assert "bound to a different token" in r.body["error"]["message"]
    assert summary(await audit_since(pool, seq)) == [("secrets.read", "denied", "db/url", None)]


async def test_expired_discharge_is_401(world: EnrolledOrg, pool: Pool) -> None:
    await _put(world, "db/url", "postgres://prod")
    # The discharge is valid for org_discharge_ttl seconds; move the store past it.
    world.h.store_clock.offset = world.h.store_config.org_discharge_ttl + 60
    seq = await audit_head(pool)
    r = await world.h.store("GET", world.secret("db/url"), world.bundle)
    assert r.status == 401 and r.code == "discharge_required", r
    assert "expired" in r.body["error"]["message"]
    assert summary(await audit_since(pool, seq)) == [("secrets.read", "denied", "db/url", None)]


async def test_read_token_cannot_write(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "db/url", "postgres://prod")
    reader = await h.store_bundle(await h.mint(world.bundle, world.org, mask="r"), world.auth)
    assert (await h.store("GET", world.secret("db/url"), reader)).status == 200
    seq = await audit_head(pool)
    r = await h.store("PUT", world.secret("db/url"), reader, {"value": "evil"})
    assert r.status == 403 and r.code == "unauthorized", r
    assert summary(await audit_since(pool, seq)) == [("secrets.write", "denied", "db/url", None)]
    r = await h.store("GET", world.secret("db/url"), world.bundle)
    assert r.body["value"] == "postgres://prod" and r.body["version"] == 1


async def test_write_only_token_cannot_read(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    writer = await h.store_bundle(await h.mint(world.bundle, world.org, mask="wc"), world.auth)
    seq = await audit_head(pool)
    assert (await h.store("PUT", world.secret("db/url"), writer, {"value": "v1"})).status == 200
    r = await h.store("GET", world.secret("db/url"), writer)
    assert r.status == 403 and r.code == "unauthorized", r
    assert "v1" not in str(r.body)
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.write", "ok", "db/url", 1),
        ("secrets.read", "denied", "db/url", None),
    ]


async def test_removed_member_next_discharge_refused(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    await _put(world, "db/url", "postgres://prod")
    bob = await h.add_member(world.owner, world.org, "bob@example.com", "operator")
    bob_auth = await h.authority_bundle(bob, world.org)
    reader = await h.mint(world.bundle, world.org, mask="r")
    bob_bundle = await h.store_bundle(reader, bob_auth)
    r = await h.store("GET", world.secret("db/url"), bob_bundle)
    assert r.status == 200 and r.body["value"] == "postgres://prod"
    await h.remove_member(world.owner, world.org, bob)
    refused = await h.org_discharge(reader, bob_auth)
    assert refused.status == 403, refused
    # The store saw Bob's read, attributed to him through the discharge's attestation.
    [read] = [e for e in await audit_since(pool, 0) if e["action"] == "secrets.read" and e["actor"] == str(bob.id)]
    assert read["outcome"] == "ok" and read["version"] == 1


async def test_token_attenuated_to_one_secret(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    for name in ("db/url", "db/url2", "db/password"):
        await _put(world, name, f"value of {name}")
    narrowed = attenuate(world.root, [Secrets((("db/url$", 1),))])
    bundle = await h.store_bundle(narrowed, world.auth)
    seq = await audit_head(pool)
    r = await h.store("GET", world.secret("db/url"), bundle)
    assert r.status == 200 and r.body["value"] == "value of db/url"
    for other in ("db/url2", "db/password"):
        r = await h.store("GET", world.secret(other), bundle)
        assert r.status == 403, r
        assert "value of" not in str(r.body)
    r = await h.store("PUT", world.secret("db/url"), bundle, {"value": "x"})
    assert r.status == 403
    assert summary(await audit_since(pool, seq)) == [
        ("secrets.read", "ok", "db/url", 1),
        ("secrets.read", "denied", "db/url2", None),
        ("secrets.read", "denied", "db/password", None),
        ("secrets.write", "denied", "db/url", None),
    ]
