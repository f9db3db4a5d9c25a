"""Two nodes of each service on one real database: what one node changes, the other sees, through NOTIFY alone.

Every follower polls once an hour here (:func:`tests.support.nodes.notify_only`), so a change seen within the test's
bound was delivered by LISTEN/NOTIFY. The bound is generous (shared machines); the measured latency is recorded
as a test property (``--junitxml``) and printed (``-s``). Key rotation and retirement across nodes are the key
rotation tests' (docs/keys.md).
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness, Reply, running_services
from tests.support.nodes import Node, another_authority, another_store, notify_only, wait_until
from vault.macaroon import decode_token, parse_bundle

Recorder = Any  # pytest's record_property


@pytest.fixture
async def nodes(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Harness, Node, Node]]:
    """The harness's authority and store (node A of each), a second store and a second authority (node B)."""
    notify_only(monkeypatch)
    async with running_services(database_url) as h, another_store(h) as store_b, another_authority(h) as authority_b:
        yield h, store_b, authority_b


def _report(record_property: Recorder, name: str, seconds: float) -> None:
    record_property(name, f"{seconds:.4f}")
    print(f"\n{name}: {seconds * 1000:.1f} ms")


async def test_a_store_token_revoked_on_one_node_is_refused_by_the_other(
    nodes: tuple[Harness, Node, Node], record_property: Recorder
) -> None:
    h, store_b, _ = nodes
    world = await world_of(h)
    assert (await h.store("PUT", world.secret("app/db"), world.bundle, {"value": "v1"})).status == 200
    r = await h.store("POST", world.path("/tokens"), world.bundle, {"mask": "r"})
    assert r.status == 201, r
    reader = await h.store_bundle(r.body["token"], world.auth)
    assert (await store_b.call("GET", world.secret("app/db"), reader)).status == 200

    assert (await h.store("POST", world.path(f"/tokens/{r.body['id']}/revoke"), world.bundle)).status == 200

    async def refused_by_b() -> bool:
        reply = await store_b.call("GET", world.secret("app/db"), reader)
        assert reply.status in (200, 401), reply
        return reply.status == 401

    _report(record_property, "store_revocation_latency", await wait_until(refused_by_b))
    refused = await store_b.call("GET", world.secret("app/db"), reader)
    assert "revoked" in refused.body["error"]["message"], refused
    # The owner's token, not revoked, still reads there.
    assert (await store_b.call("GET", world.secret("app/db"), world.bundle)).status == 200


async def _org_discharge_at(node: Node, h: Harness, store_token: str, credentials: str) -> Reply:
    """Ask ``node`` (an authority) for the org discharge of ``store_token``'s ticket, as :meth:`Harness.discharge`."""
    token = decode_token(store_token)
    [caveat] = token.third_party_tickets(h.org_location)
    body = {
        "ticket": base64.b64encode(caveat.ticket).decode(),
        "binding_id": base64.b64encode(token.binding_id()).decode(),
    }
    return await node.call("POST", "/org/.well-known/macfly/3p", credentials, body)


async def test_a_permission_token_revoked_on_one_authority_gets_no_discharge_from_the_other(
    nodes: tuple[Harness, Node, Node], record_property: Recorder
) -> None:
    h, _, authority_b = nodes
    world = await world_of(h)
    auth = await h.authority_bundle(world.owner, world.org)
    assert (await _org_discharge_at(authority_b, h, world.root, auth)).status == 201
    token_id = parse_bundle(auth).tokens[0].token_id

    r = await h.authority("POST", f"/v1/tokens/{token_id}/revoke", world.owner.session)
    assert r.status == 200, r

    async def refused_by_b() -> bool:
        reply = await _org_discharge_at(authority_b, h, world.root, auth)
        assert reply.status in (201, 401), reply
        return reply.status == 401

    _report(record_property, "authority_revocation_latency", await wait_until(refused_by_b))
    refused = await _org_discharge_at(authority_b, h, world.root, auth)
    assert "revoked" in refused.body["error"]["message"], refused


async def _mount(node: Node, slug: str, bundle: str) -> int:
    reply = await node.call("GET", f"/vault/v1/sys/internal/ui/mounts/{slug}/prod", bundle)
    assert reply.status in (200, 403), reply
    return reply.status


async def test_an_enrolment_on_one_store_is_seen_by_the_other(
    nodes: tuple[Harness, Node, Node], record_property: Recorder, database_url: str
) -> None:
    h, store_b, _ = nodes
    world = await world_of(h)
    assert await _mount(store_b, "acme", world.bundle) == 200  # node B holds slug "acme" in memory now

    # A re-enrolment that renames the org (renamed at the authority first: the store takes the slug the org
    # discharge attests): B answers from memory, so only the notification can change its answer.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE authority.orgs SET slug = 'acme-renamed' WHERE id = $1", world.org)
    finally:
        await conn.close()
    renamed = await h.enroll(world.auth, world.org, "acme-renamed")

    async def renamed_on_b() -> bool:
        return await _mount(store_b, "acme", world.bundle) == 403

    _report(record_property, "org_rename_latency", await wait_until(renamed_on_b))
    assert await _mount(store_b, "acme-renamed", world.bundle) == 200

    # A new org enrolled on A: B verifies its tokens (a root key it has never seen) and knows its slug.
    other: EnrolledOrg = EnrolledOrg(h, *await h.enrolled_vault("other@example.com", "beta"))
    assert (await h.store("PUT", other.secret("app/db"), other.bundle, {"value": "b1"})).status == 200
    r = await store_b.call("GET", other.secret("app/db"), other.bundle)
    assert (r.status, r.body["value"]) == (200, "b1"), r
    assert await _mount(store_b, "beta", other.bundle) == 200
    assert renamed != world.root


async def test_check_and_set_writes_from_both_stores_have_one_winner_per_version(
    nodes: tuple[Harness, Node, Node],
) -> None:
    h, store_b, _ = nodes
    world = await world_of(h)
    path = world.secret("app/counter")
    r = await h.store("PUT", path, world.bundle, {"value": "0", "cas": 0})
    assert (r.status, r.body["version"]) == (200, 1), r
    rounds = 40
    wins: Counter[str] = Counter()
    for version in range(1, rounds + 1):
        a, b = await asyncio.gather(
            h.store("PUT", path, world.bundle, {"value": f"a{version}", "cas": version}),
            store_b.call("PUT", path, world.bundle, {"value": f"b{version}", "cas": version}),
        )
        outcomes = sorted([("a", a.status), ("b", b.status)], key=lambda o: o[1])
        assert [status for _, status in outcomes] == [200, 409], (version, a, b)
        winner = a if a.status == 200 else b
        assert winner.body["version"] == version + 1, (version, winner)
        wins[outcomes[0][0]] += 1

    assert sum(wins.values()) == rounds
    print(f"\ncheck-and-set rounds: {rounds}, won by node a: {wins['a']}, by node b: {wins['b']}")
    # No version was lost or doubled: the last round's winner wrote the current version, seen from either node.
    r = await store_b.call("GET", world.path("/vaults/prod/metadata/app/counter"), world.bundle)
    assert r.status == 200 and r.body["current_version"] == rounds + 1, r
    kept = [v["version"] for v in r.body["versions"]]
    assert kept == sorted(set(kept)) or kept == sorted(set(kept), reverse=True), kept
    got = await h.store("GET", path, world.bundle)
    assert got.status == 200 and got.body["value"] in (f"a{rounds}", f"b{rounds}"), got
