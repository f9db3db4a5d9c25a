"""Sessions, rate limits, orgs and members, minting rules, health, OpenAPI, logs."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.authority_app import (
    LOGIN,
    PASSWORD,
    AppFactory,
    Client,
    add_member,
    authority_services,
    b64,
    bearer,
    bootstrap_owner,
    call,
    login,
    login_discharge,
    make_config,
    permission_token,
    pool_of,
)
from vault.authority.session_secret import session_digest
from vault.cli.bootstrap import run_bootstrap
from vault.crypto.keyring import MasterKey
from vault.crypto.passwords import MINIMUM
from vault.crypto.ticket_keys import TicketKeyPair
from vault.errors import Conflict, MigrationError
from vault.macaroon import decode_token, encode_bundle, verify
from vault.macaroon.caveats import ConfineUser, MaxValidity, Organization, UserID, ValidityWindow
from vault.storage.pool import Pool, close_pool, create_pool
from vault.types import RequestContext
from vault.web.authority import create_authority_app
from vault.web.authority.app import open_authority


async def test_login_me_logout(client: Client) -> None:
    owner = await bootstrap_owner(client)
    wrong = await call(
        client, "POST", "/v1/sessions", json={"email": owner.email, "password": "wrong password"}, expect=401
    )
    assert wrong["error"]["code"] == "invalid_credentials"
    nobody = await call(
        client, "POST", "/v1/sessions", json={"email": "nobody@example.com", "password": PASSWORD}, expect=401
    )
    assert nobody == wrong
    session = await login(client, "  Owner@Example.com ")
    me = await call(client, "GET", "/v1/me", headers=bearer(session), expect=200)
    assert me["email"] == owner.email
    assert me["orgs"] == [{"id": owner.org_id, "slug": "acme", "role": "owner"}]
    # Only the digest is stored.
    stored = await pool_of(client).fetch("SELECT secret_digest FROM authority.sessions")
    assert session_digest(session) in [r["secret_digest"] for r in stored]
    assert session.encode() not in b"".join(r["secret_digest"] for r in stored)

    await call(client, "DELETE", "/v1/sessions/current", headers=bearer(session), expect=204)
    gone = await call(client, "GET", "/v1/me", headers=bearer(session), expect=401)
    assert "log in again" in gone["error"]["message"]


async def test_failed_logins_are_rate_limited_per_user_and_address(client: Client) -> None:
    owner = await bootstrap_owner(client)
    headers = {"X-Forwarded-For": "10.0.0.1"}
    for _ in range(5):
        await call(
            client,
            "POST",
            "/v1/sessions",
            json={"email": owner.email, "password": "wrong password"},
            headers=headers,
            expect=401,
        )
    response = await client.post(
        "/v1/sessions", json={"email": owner.email, "password": PASSWORD}, headers={"X-Forwarded-For": "10.0.0.2"}
    )
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "rate_limited"
    # Per address: guessing at other accounts from 10.0.0.1 is refused too.
    await call(
        client,
        "POST",
        "/v1/sessions",
        json={"email": "other@example.com", "password": PASSWORD},
        headers=headers,
        expect=429,
    )
    # Failed logins are audited.
    rows = await pool_of(client).fetch(
        "SELECT outcome FROM authority.audit_events WHERE action = 'login' AND outcome = 'denied'"
    )
    assert len(rows) == 5


async def test_session_expires(make_client: AppFactory) -> None:
    now = [1_700_000_000.0]
    client = await make_client(clock=lambda: now[0])
    owner = await bootstrap_owner(client)
    await call(client, "GET", "/v1/me", headers=bearer(owner.session), expect=200)
    now[0] += authority_services(client).config.session_ttl + 1
    expired = await call(client, "GET", "/v1/me", headers=bearer(owner.session), expect=401)
    assert "expired" in expired["error"]["message"]


async def test_login_discharge_window_is_capped_by_max_validity(make_client: AppFactory, config: Any) -> None:
    from dataclasses import replace

    client = await make_client(config=replace(config, login_discharge_ttl=30))
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    d = await login_discharge(client, owner.session, token)
    (window,) = [c for c in d.unverified_caveats if isinstance(c, ValidityWindow)]
    assert window.not_after - window.not_before == 30

    # A first party of its own, asking for at most 5 seconds.
    keys = await call(client, "GET", "/.well-known/cvault/keys", expect=200)
    import base64

    from vault.macaroon import Macaroon, add_third_party

    mine = TicketKeyPair.generate()
    login_pub = base64.b64decode(keys["login"]["public_key"])
    root = os.urandom(32)
    own = Macaroon.mint(b"k", "http://app.test", root, [Organization(1, 1)])
    own = add_third_party(
        own, LOGIN, mine.shared_key(login_pub), mine.public_key, [ConfineUser(owner.user_id), MaxValidity(5)]
    )
    ticket = own.third_party_tickets(LOGIN)[0].ticket
    reply = await call(
        client,
        "POST",
        "/login/.well-known/macfly/3p",
        json={"ticket": b64(ticket), "binding_id": b64(own.binding_id())},
        headers=bearer(owner.session),
        expect=201,
    )
    d = decode_token(reply["discharge"])
    # Checked at this discharge's own start: the first one's may be a second earlier on a busy machine.
    (window,) = [c for c in d.unverified_caveats if isinstance(c, ValidityWindow)]
    verified = verify(own, root, [d], now=window.not_before, trusted={LOGIN: [mine.shared_key(login_pub)]})
    assert window.not_after - window.not_before == 5
    assert verified.attested(UserID) == [UserID(owner.user_id)]


async def test_login_discharge_only_for_the_tickets_user(client: Client) -> None:
    owner = await bootstrap_owner(client)
    _, other_session = await add_member(client, owner, "other@example.com", "reader")
    token = await permission_token(client, owner.session, owner.org_id)
    ticket = token.third_party_tickets(LOGIN)[0].ticket
    refused = await call(
        client,
        "POST",
        "/login/.well-known/macfly/3p",
        json={"ticket": b64(ticket), "binding_id": b64(token.binding_id())},
        headers=bearer(other_session),
        expect=403,
    )
    assert f"confined to user {owner.user_id}" in refused["error"]["message"]


async def test_mask_never_exceeds_role(client: Client) -> None:
    owner = await bootstrap_owner(client)
    _, reader = await add_member(client, owner, "reader@example.com", "reader")
    refused = await call(
        client, "POST", "/v1/tokens", json={"org": owner.org_id, "mask": "rw"}, headers=bearer(reader), expect=403
    )
    assert "at most 'r'" in refused["error"]["message"]
    token = await permission_token(client, reader, owner.org_id)
    assert Organization(owner.org_id, 1) in token.unverified_caveats
    # Not a member: the org does not exist for you.
    await call(client, "POST", "/v1/tokens", json={"org": 12345}, headers=bearer(reader), expect=404)


async def test_minting_with_a_bundle_needs_control(client: Client) -> None:
    owner = await bootstrap_owner(client)
    _, operator = await add_member(client, owner, "op@example.com", "operator")
    op_token = await permission_token(client, operator, owner.org_id)
    op_bundle = encode_bundle([op_token, await login_discharge(client, operator, op_token)])
    refused = await call(
        client, "POST", "/v1/tokens", json={"org": owner.org_id}, headers=bearer(op_bundle), expect=403
    )
    assert "not 'C'" in refused["error"]["message"]

    own_token = await permission_token(client, owner.session, owner.org_id, ttl=600)
    own_bundle = encode_bundle([own_token, await login_discharge(client, owner.session, own_token)])
    reply = await call(
        client, "POST", "/v1/tokens", json={"org": owner.org_id, "mask": "r"}, headers=bearer(own_bundle), expect=201
    )
    listed = await call(client, "GET", "/v1/tokens", headers=bearer(owner.session), expect=200)
    minted = next(t for t in listed["tokens"] if t["id"] == reply["id"])
    assert minted["parent"] == own_token.token_id and minted["mask"] == "r"
    # It never outlives the token it was minted with.
    assert minted["expires_at"] <= next(t for t in listed["tokens"] if t["id"] == own_token.token_id)["expires_at"]


async def test_members_are_managed_by_owners_only(client: Client) -> None:
    owner = await bootstrap_owner(client)
    member_id, member = await add_member(client, owner, "m@example.com", "operator")
    path = f"/v1/orgs/{owner.org_id}/members"
    refused = await call(client, "GET", path, headers=bearer(member), expect=403)
    assert "owner" in refused["error"]["message"]
    await call(client, "PATCH", f"{path}/{owner.user_id}", json={"role": "reader"}, headers=bearer(member), expect=403)
    members = await call(client, "GET", path, headers=bearer(owner.session), expect=200)
    assert {m["email"]: m["role"] for m in members["members"]} == {owner.email: "owner", "m@example.com": "operator"}
    # The last owner cannot leave or be demoted.
    last = await call(
        client, "PATCH", f"{path}/{owner.user_id}", json={"role": "reader"}, headers=bearer(owner.session), expect=409
    )
    assert "at least one owner" in last["error"]["message"]
    await call(client, "DELETE", f"{path}/{owner.user_id}", headers=bearer(owner.session), expect=409)
    # Members join by invitation only (tests/authority/test_invitations.py); the old adding route is gone.
    await call(
        client,
        "POST",
        path,
        json={"email": "x@example.com", "role": "reader"},
        headers=bearer(owner.session),
        expect=405,
    )
    await call(client, "DELETE", f"{path}/{member_id}", headers=bearer(owner.session), expect=204)
    await call(client, "DELETE", f"{path}/{member_id}", headers=bearer(owner.session), expect=404)
    orgs = await call(client, "GET", "/v1/orgs", headers=bearer(member), expect=200)
    assert orgs == {"orgs": []}
    actions = [
        r["action"] for r in await pool_of(client).fetch("SELECT action FROM authority.audit_events ORDER BY seq")
    ]
    assert {"invitation.create", "invitation.accept", "member.remove"} <= set(actions)


async def test_orgs_are_created_and_listed(client: Client) -> None:
    owner = await bootstrap_owner(client)
    created = await call(client, "POST", "/v1/orgs", json={"slug": "beta-2"}, headers=bearer(owner.session), expect=201)
    assert 0 < created["id"] < 2**63
    taken = await call(client, "POST", "/v1/orgs", json={"slug": "acme"}, headers=bearer(owner.session), expect=409)
    assert "taken" in taken["error"]["message"]
    await call(client, "POST", "/v1/orgs", json={"slug": "Not A Slug"}, headers=bearer(owner.session), expect=400)
    orgs = await call(client, "GET", "/v1/orgs", headers=bearer(owner.session), expect=200)
    assert [o["slug"] for o in orgs["orgs"]] == ["acme", "beta-2"]


async def test_bootstrap_runs_once(config: Any, pool: Pool) -> None:
    done = await run_bootstrap(config, "first@example.com", "first", PASSWORD, pool=pool)
    assert done.session_secret.startswith("cvs_") and done.org.slug == "first"
    assert "cvs_" not in repr(done)
    with pytest.raises(Conflict, match="empty database"):
        await run_bootstrap(config, "second@example.com", "second", PASSWORD, pool=pool)


LOCAL: RequestContext[None] = RequestContext(client_addr="local", request_id="test")


async def test_a_bootstrap_cut_short_is_finished_by_running_it_again(config: Any, pool: Pool) -> None:
    # Cut short after the owner's account committed (a crash before the org): only the user exists.
    async with open_authority(config, pool=pool) as svc:
        owner = await svc.accounts.create_user("first@example.com", PASSWORD)
    with pytest.raises(Conflict, match="another password"):
        await run_bootstrap(config, "first@example.com", "first", PASSWORD + "-not-it", pool=pool)
    with pytest.raises(Conflict, match="empty database"):
        await run_bootstrap(config, "other@example.com", "first", PASSWORD, pool=pool)

    # Cut short after the org too (a crash before the session): the same owner and org, and a session.
    async with open_authority(config, pool=pool) as svc:
        org = await svc.accounts.create_org(owner.id, "first", LOCAL)
        with pytest.raises(Conflict, match="empty database"):  # another org is not this bootstrap's
            await run_bootstrap(config, "first@example.com", "second", PASSWORD, pool=pool)
    done = await run_bootstrap(config, "First@Example.com", "first", PASSWORD, pool=pool)
    assert (done.user.id, done.org.id) == (owner.id, org.id)
    async with open_authority(config, pool=pool) as svc:
        assert (await svc.sessions.authenticate(done.session_secret)).user_id == owner.id
        assert [m.slug for m in await svc.accounts.memberships(owner.id)] == ["first"]
    # Finished now: running it again makes no second owner session.
    with pytest.raises(Conflict, match="already finished"):
        await run_bootstrap(config, "first@example.com", "first", PASSWORD, pool=pool)
    # Nothing was made twice, and each thing made has its one event.
    actions = await pool.fetch(
        "SELECT action, count(*) AS n FROM authority.audit_events WHERE action IN ('user.create', 'org.create', "
        "'login') AND outcome = 'ok' GROUP BY action ORDER BY action"
    )
    assert [(r["action"], r["n"]) for r in actions] == [("login", 1), ("org.create", 1), ("user.create", 1)]


async def test_a_bootstrap_owner_is_not_taken_from_an_org_they_only_belong_to(config: Any, pool: Pool) -> None:
    """The one user is a member, not the owner, of the org named: not a bootstrap cut short."""
    async with open_authority(config, pool=pool) as svc:
        first = await svc.accounts.create_user("first@example.com", PASSWORD)
        await svc.accounts.create_org(first.id, "first", LOCAL)
        await pool.execute("UPDATE authority.memberships SET role = 'reader' WHERE user_id = $1", first.id)
    with pytest.raises(Conflict, match="empty database"):
        await run_bootstrap(config, "first@example.com", "first", PASSWORD, pool=pool)


async def test_health_ready_keys_and_openapi(client: Client) -> None:
    assert (await call(client, "GET", "/healthz", expect=200)) == {"status": "ok"}
    assert (await call(client, "GET", "/readyz", expect=200)) == {"status": "ready"}
    keys = await call(client, "GET", "/.well-known/cvault/keys", expect=200)
    assert keys["login"]["location"] == LOGIN and keys["login"]["public_key"] != keys["org"]["public_key"]
    spec = await call(client, "GET", "/openapi.json", expect=200)
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in client.server.app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == documented


async def test_keys_survive_restart_and_are_shared_by_nodes(make_client: AppFactory) -> None:
    node1 = await make_client()
    node2 = await make_client()
    k1 = await call(node1, "GET", "/.well-known/cvault/keys", expect=200)
    k2 = await call(node2, "GET", "/.well-known/cvault/keys", expect=200)
    assert k1 == k2
    owner = await bootstrap_owner(node1)
    token = await permission_token(node1, owner.session, owner.org_id)
    # A token minted on node 1 discharges and strips on node 2.
    d = await login_discharge(node2, owner.session, token)
    await call(node2, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([token, d])), expect=201)


async def test_unmigrated_database_is_refused(empty_database_url: str, master_key: MasterKey) -> None:
    config = make_config(empty_database_url, master_key)
    pool = await create_pool(empty_database_url)
    try:
        client: Client = TestClient(TestServer(create_authority_app(config, pool=pool, password_cost=MINIMUM)))
        with pytest.raises(MigrationError, match="cvault migrate"):
            await client.start_server()
        await client.close()
    finally:
        await close_pool(pool)


async def test_access_log_never_prints_secrets(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    owner = await bootstrap_owner(client)
    session = await login(client, owner.email)
    token = await permission_token(client, session, owner.org_id)
    d = await login_discharge(client, session, token)
    await call(client, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([token, d])), expect=201)
    await call(client, "GET", f"/v1/revocations?since=0&token={encode_bundle([token])}", expect=200)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/tokens/strip" in text
    for secret in ("cvs_", "cv1_", PASSWORD, session):
        assert secret not in text
