"""Revocation: a token and everything stripped from it, seen by every node within a second."""

from __future__ import annotations

import asyncio
import time

from tests.support.authority_app import (
    AppFactory,
    add_member,
    authority_services,
    bearer,
    bootstrap_owner,
    call,
    login_discharge,
    make_store,
    org_discharge,
    permission_token,
    pool_of,
    strip,
)
from vault.macaroon import encode_bundle


async def test_revocation_reaches_second_node_within_1s(make_client: AppFactory) -> None:
    node1 = await make_client()
    node2 = await make_client()
    owner = await bootstrap_owner(node1)
    token = await permission_token(node1, owner.session, owner.org_id)
    child = await strip(node1, token, await login_discharge(node1, owner.session, token))
    grandchild_bundle = encode_bundle([child])
    store = await make_store(node2)
    store_token = store.token(owner.org_id)
    await org_discharge(node2, store_token, grandchild_bundle)

    reply = await call(node1, "POST", f"/v1/tokens/{token.token_id}/revoke", headers=bearer(owner.session), expect=200)
    assert set(reply["revoked"]) == {token.token_id, child.token_id}

    watcher2 = authority_services(node2).revocations
    started = time.monotonic()
    while not watcher2.is_revoked(child.token_id) and time.monotonic() - started < 1.0:
        await asyncio.sleep(0.01)
    assert watcher2.is_revoked(child.token_id), "node 2 did not learn of the revocation within 1 s"
    refused = await org_discharge(node2, store_token, grandchild_bundle, expect=401)
    assert "revoked" in refused["error"]["message"]
    refused = await org_discharge(node1, store_token, grandchild_bundle, expect=401)
    assert "revoked" in refused["error"]["message"]


async def test_reconcile_heals_a_missed_notification(make_client: AppFactory) -> None:
    node1 = await make_client()
    node2 = await make_client(reconcile_interval=0.05)
    owner = await bootstrap_owner(node1)
    token = await permission_token(node1, owner.session, owner.org_id)
    # Written behind every watcher's back: no NOTIFY, only the periodic reconcile can find it.
    await pool_of(node1).execute("INSERT INTO authority.revocations (token_id) VALUES ($1::uuid)", token.token_id)
    watcher2 = authority_services(node2).revocations
    started = time.monotonic()
    while not watcher2.is_revoked(token.token_id) and time.monotonic() - started < 1.0:
        await asyncio.sleep(0.01)
    assert watcher2.is_revoked(token.token_id)


async def test_revoked_token_is_listed_and_published(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    child = await strip(client, token, await login_discharge(client, owner.session, token))
    feed = await call(client, "GET", "/v1/revocations?since=0", expect=200)
    start = feed["next"]

    # Revoking the child leaves the parent alone.
    reply = await call(client, "POST", f"/v1/tokens/{child.token_id}/revoke", headers=bearer(owner.session), expect=200)
    assert reply["revoked"] == [child.token_id]
    # Again: nothing left to revoke, and the reply says so (an empty list), not the same ids again.
    again = await call(client, "POST", f"/v1/tokens/{child.token_id}/revoke", headers=bearer(owner.session), expect=200)
    assert again["revoked"] == []
    listed = await call(client, "GET", "/v1/tokens", headers=bearer(owner.session), expect=200)
    by_id = {t["id"]: t for t in listed["tokens"]}
    assert by_id[child.token_id]["revoked_at"] is not None
    assert by_id[token.token_id]["revoked_at"] is None

    feed = await call(client, "GET", f"/v1/revocations?since={start}", expect=200)
    assert [r["token_id"] for r in feed["revocations"]] == [child.token_id]
    assert feed["next"] > start
    again = await call(client, "GET", f"/v1/revocations?since={feed['next']}", expect=200)
    assert again["revocations"] == [] and again["next"] == feed["next"]

    # The revoked child cannot strip or discharge; the parent still strips.
    await strip(client, token, await login_discharge(client, owner.session, token))


async def test_only_the_user_or_an_owner_may_revoke(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await bootstrap_owner(client)
    _reader_id, reader_session = await add_member(client, owner, "r@example.com", "reader")
    owners_token = await permission_token(client, owner.session, owner.org_id)
    readers_token = await permission_token(client, reader_session, owner.org_id)
    refused = await call(
        client, "POST", f"/v1/tokens/{owners_token.token_id}/revoke", headers=bearer(reader_session), expect=403
    )
    assert "only the token's user or an owner" in refused["error"]["message"]
    # An owner may revoke a member's token.
    await call(client, "POST", f"/v1/tokens/{readers_token.token_id}/revoke", headers=bearer(owner.session), expect=200)
    await call(
        client,
        "POST",
        "/v1/tokens/00000000-0000-0000-0000-000000000000/revoke",
        headers=bearer(owner.session),
        expect=404,
    )
