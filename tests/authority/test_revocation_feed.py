"""The authority's revocation feed (docs/revocation.md): who may read it, what it says, the long poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.enrolled_org import EnrolledOrg, world
from tests.support.harness import Harness, Reply, harness
from vault.authority.revocation_feed import new_feed_token
from vault.macaroon import decode_token, encode_bundle

__all__ = ["harness", "world"]

FEED = "/v1/revocations/feed"


async def feed(h: Harness, cursor: int = 0, *, wait: int = 0, token: str | None = None) -> Reply:
    return await h.authority("GET", f"{FEED}?cursor={cursor}&wait={wait}", h.feed_token if token is None else token)


def kinds(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e.get("token_id") or e.get("session_id") or (e.get("org"), e.get("user_id"))) for e in events]


async def test_feed_refuses_callers_without_a_feed_token(world: EnrolledOrg) -> None:
    h = world.h
    assert (await h.authority("GET", FEED)).status == 401
    assert (await feed(h, token=new_feed_token()[0])).status == 401  # well-formed, not configured
    assert (await feed(h, token=world.owner.session)).status == 401  # a session is not a feed token
    assert (await feed(h, token=world.auth)).status == 401  # nor is a permission bundle
    refused = await feed(h, token=h.feed_token + "x")
    assert refused.status == 401 and refused.code == "unauthenticated"
    assert h.feed_token not in str(refused.body)
    ok = await feed(h)
    assert ok.status == 200, ok
    assert ok.body == {"events": [], "cursor": 0}


async def test_feed_lists_tokens_with_their_lineage_sessions_and_membership_cut_offs(world: EnrolledOrg) -> None:
    h, org = world.h, world.org
    reader = await h.add_member(world.owner, org, "reader@example.com", "reader")
    operator = await h.add_member(world.owner, org, "operator@example.com", "operator")
    # A permission token and the service token stripped from it: revoking the parent names both.
    r = await h.authority("POST", "/v1/tokens", world.owner.session, {"org": org})
    parent = decode_token(r.body["token"])
    d = await h.discharge(f"{h.authority_url}/login", parent, world.owner.session)
    stripped = await h.authority("POST", "/v1/tokens/strip", encode_bundle([parent, decode_token(d.body["discharge"])]))
    assert stripped.status == 201, stripped
    child = stripped.body["id"]

    assert (await h.authority("POST", f"/v1/tokens/{parent.token_id}/revoke", world.owner.session)).status == 200
    assert (
        await h.authority("PATCH", f"/v1/orgs/{org}/members/{operator.id}", world.owner.session, {"role": "owner"})
    ).status == 200
    assert (
        await h.authority("PATCH", f"/v1/orgs/{org}/members/{operator.id}", world.owner.session, {"role": "reader"})
    ).status == 200
    await h.remove_member(world.owner, org, reader)
    assert (await h.authority("DELETE", "/v1/sessions/current", operator.session)).status == 204

    r = await feed(h)
    assert r.status == 200, r
    events = r.body["events"]
    # An upgrade (operator -> owner) narrows nothing, so it is not on the feed.
    assert sorted(kinds(events[:2])) == sorted([("token", parent.token_id), ("token", child)])
    assert kinds(events[2:]) == [
        ("role_downgraded", (org, operator.id)),
        ("member_removed", (org, reader.id)),
        ("session", events[4]["session_id"]),
    ]
    assert events[4]["user_id"] == operator.id
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert r.body["cursor"] == events[-1]["seq"]
    assert all(e["revoked_at"].endswith("+00:00") for e in events)

    # Resuming from a cursor gives what came after it, and nothing when nothing did.
    later = await feed(h, events[2]["seq"])
    assert later.body["events"] == events[3:]
    assert (await feed(h, r.body["cursor"])).body == {"events": [], "cursor": r.body["cursor"]}


async def test_long_poll_answers_as_soon_as_a_revocation_commits(world: EnrolledOrg) -> None:
    h = world.h
    cursor = (await feed(h)).body["cursor"]
    waiting = asyncio.create_task(feed(h, cursor, wait=25))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    reader = await h.add_member(world.owner, world.org, "reader@example.com", "reader")
    await h.remove_member(world.owner, world.org, reader)
    reply = await asyncio.wait_for(waiting, 20)
    # Generous: the reply comes on the notification, not at the end of the 25 s wait.
    assert time.monotonic() - started < 10
    assert kinds(reply.body["events"]) == [("member_removed", (world.org, reader.id))]


async def test_feed_rejects_bad_parameters(world: EnrolledOrg) -> None:
    h = world.h
    for query in ("cursor=-1", "cursor=x", "wait=26", "limit=0", "limit=1001", f"cursor={2**63}"):
        r = await h.authority("GET", f"{FEED}?{query}", h.feed_token)
        assert r.status == 400 and r.code == "bad_request", (query, r)


async def test_logout_stops_its_login_discharges_at_the_org_discharger_at_once(world: EnrolledOrg) -> None:
    h = world.h
    member = await h.add_member(world.owner, world.org, "op@example.com", "operator")
    auth = await h.authority_bundle(member, world.org)
    assert (await h.org_discharge(world.root, auth)).status == 201
    assert (await h.authority("DELETE", "/v1/sessions/current", member.session)).status == 204
    refused = await h.org_discharge(world.root, auth)
    assert refused.status == 401, refused
    assert "log in again" in refused.body["error"]["message"]
    # Strip and minting with the bundle stop too; another session of the same user still works.
    assert (await h.authority("POST", "/v1/tokens/strip", auth)).status == 401
    again = await h.login(member.email, member.id)
    assert (await h.org_discharge(world.root, await h.authority_bundle(again, world.org))).status == 201
