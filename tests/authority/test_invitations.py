"""Membership needs the invitee's consent, and inviting reveals nothing about accounts.

An owner invites an email; nothing changes in the org until the invitee accepts
(logged in as that email, or with the invitation code, the verification code mailed to
the email (tests/authority/test_invitation_email.py) and a new password). The
reply to an invitation is the same for a registered and an unknown email.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support.authority_app import (
    PASSWORD,
    Client,
    Owner,
    authority_services,
    bearer,
    bootstrap_owner,
    call,
    login,
    mailed_verification,
    pool_of,
)
from tests.support.cvault_command import cvault_command, cvault_env
from tests.support.harness import PASSWORD as HARNESS_PASSWORD
from tests.support.harness import Harness


async def _invite(client: Client, owner: Owner, email: str, role: str = "reader", expect: int = 201) -> dict:  # type: ignore[type-arg]
    body: dict = await call(  # type: ignore[type-arg]
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": email, "role": role},
        headers=bearer(owner.session),
        expect=expect,
    )
    return body


async def _new_user(client: Client, email: str) -> str:
    await authority_services(client).accounts.create_user(email, PASSWORD)
    return await login(client, email)


async def test_an_invited_user_is_not_a_member_until_they_accept(client: Client) -> None:
    owner = await bootstrap_owner(client)
    victim = await _new_user(client, "victim@example.com")
    invitation = await _invite(client, owner, "victim@example.com", "operator")
    me = await call(client, "GET", "/v1/me", headers=bearer(victim), expect=200)
    assert me["orgs"] == []
    members = await call(client, "GET", f"/v1/orgs/{owner.org_id}/members", headers=bearer(owner.session), expect=200)
    assert [m["email"] for m in members["members"]] == ["owner@example.com"]
    pending = await call(client, "GET", "/v1/invitations", headers=bearer(victim), expect=200)
    assert [(i["id"], i["org"], i["slug"], i["role"]) for i in pending["invitations"]] == [
        (invitation["id"], owner.org_id, "acme", "operator")
    ]
    path = f"/v1/invitations/{invitation['id']}/accept"
    # The session alone is not consent to this invitation: the code the owner handed over is needed too.
    await call(client, "POST", path, headers=bearer(victim), json={"code": "cvi_" + "A" * 43}, expect=404)
    accepted = await call(client, "POST", path, headers=bearer(victim), json={"code": invitation["code"]}, expect=200)
    assert (accepted["org"], accepted["role"]) == (owner.org_id, "operator")
    me = await call(client, "GET", "/v1/me", headers=bearer(victim), expect=200)
    assert me["orgs"] == [{"id": owner.org_id, "slug": "acme", "role": "operator"}]
    assert (await call(client, "GET", "/v1/invitations", headers=bearer(victim), expect=200))["invitations"] == []
    rows = await pool_of(client).fetch(
        "SELECT action, outcome FROM authority.audit_events WHERE action LIKE 'invitation.%' ORDER BY seq"
    )
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("invitation.create", "ok"),
        ("invitation.accept", "error"),  # the attempt without the right code
        ("invitation.accept", "ok"),
    ]


async def test_the_reply_is_the_same_for_a_registered_and_an_unknown_email(client: Client) -> None:
    owner = await bootstrap_owner(client)
    await _new_user(client, "known@example.com")
    known = await _invite(client, owner, "known@example.com")
    unknown = await _invite(client, owner, "nobody@example.com")
    assert set(known) == set(unknown) == {"id", "org", "slug", "email", "role", "expires_at", "code"}
    assert {k: v for k, v in known.items() if k not in ("id", "email", "code", "expires_at")} == {
        k: v for k, v in unknown.items() if k not in ("id", "email", "code", "expires_at")
    }
    # Inviting an existing member is no different either.
    again = await _invite(client, owner, "owner@example.com")
    assert set(again) == set(known)


async def test_only_the_invited_email_can_accept(client: Client) -> None:
    owner = await bootstrap_owner(client)
    invitation = await _invite(client, owner, "alice@example.com")
    mallory = await _new_user(client, "mallory@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    # Another email's session is refused even with the invitation's own code.
    refused = await call(client, "POST", path, headers=bearer(mallory), json={"code": invitation["code"]}, expect=404)
    assert refused["error"]["code"] == "not_found"
    assert (await call(client, "GET", "/v1/invitations", headers=bearer(mallory), expect=200))["invitations"] == []
    # The code of another invitation does not open this one.
    other = await _invite(client, owner, "carol@example.com")
    verification = await mailed_verification(client, other["id"])
    body = {"code": other["code"], "password": PASSWORD, "verification": verification}
    await call(client, "POST", path, json=body, expect=404)
    assert await authority_services(client).account_store.user_by_email("alice@example.com") is None


async def test_the_code_creates_the_account_once(client: Client) -> None:
    owner = await bootstrap_owner(client)
    invitation = await _invite(client, owner, "new@example.com", "auditor")
    path = f"/v1/invitations/{invitation['id']}/accept"
    body = {
        "code": invitation["code"],
        "password": PASSWORD,
        "verification": await mailed_verification(client, invitation["id"]),
    }
    accepted = await call(client, "POST", path, json=body, expect=200)
    session = await login(client, "new@example.com")
    me = await call(client, "GET", "/v1/me", headers=bearer(session), expect=200)
    assert me["user_id"] == accepted["user_id"]
    assert me["orgs"] == [{"id": owner.org_id, "slug": "acme", "role": "auditor"}]
    await call(client, "POST", path, json=body, expect=404)


async def test_a_code_for_an_email_with_an_account_says_log_in(client: Client) -> None:
    owner = await bootstrap_owner(client)
    await _new_user(client, "known@example.com")
    invitation = await _invite(client, owner, "known@example.com")
    path = f"/v1/invitations/{invitation['id']}/accept"
    # A 404 like a wrong code's (the inviter holds the code and must not learn that the email is registered),
    # whose message still says what an invitee with an account does.
    verification = await mailed_verification(client, invitation["id"])
    body = {"code": invitation["code"], "password": "another password", "verification": verification}
    reply = await call(client, "POST", path, json=body, expect=404)
    wrong = await call(client, "POST", path, json={**body, "code": "cvi_" + "A" * 43}, expect=404)
    assert reply == wrong and "log in" in reply["error"]["message"]


async def test_only_owners_invite_and_members_cannot_be_added_without_consent(client: Client) -> None:
    owner = await bootstrap_owner(client)
    invitation = await _invite(client, owner, "reader@example.com")
    await call(
        client,
        "POST",
        f"/v1/invitations/{invitation['id']}/accept",
        json={
            "code": invitation["code"],
            "password": PASSWORD,
            "verification": await mailed_verification(client, invitation["id"]),
        },
        expect=200,
    )
    reader = await login(client, "reader@example.com")
    refused = await call(
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": "x@example.com", "role": "owner"},
        headers=bearer(reader),
        expect=403,
    )
    assert refused["error"]["code"] == "unauthorized"
    # The old route that added anyone by email is gone.
    await call(
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/members",
        json={"email": "reader@example.com", "role": "owner"},
        headers=bearer(owner.session),
        expect=405,
    )


async def test_an_expired_invitation_cannot_be_accepted(harness: Harness) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "acme")
    await h.new_user("late@example.com")
    r = await h.authority(
        "POST", f"/v1/orgs/{org}/invitations", owner.session, {"email": "late@example.com", "role": "reader"}
    )
    assert r.status == 201, r
    h.authority_clock.offset = 8 * 86400
    invitee = await h.login("late@example.com")
    r = await h.authority("POST", f"/v1/invitations/{r.body['id']}/accept", invitee.session, {"code": r.body["code"]})
    assert r.status == 404, r


async def test_the_cli_invites_lists_and_accepts(harness: Harness, tmp_path: Path) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    await h.create_org(owner, "acme")
    await h.new_user("bob@example.com")

    def env(who: str) -> dict[str, str]:
        home = tmp_path / who
        return cvault_env(
            {
                "CVAULT_AUTHORITY_URL": h.authority_url,
                "CVAULT_STORE_URL": h.store_url,
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / "cfg"),
            }
        )

    async def cvault(who: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *cvault_command(*args),
            env=env(who),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate((stdin or "").encode()), 120)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    for who, email in (("owner", "owner@example.com"), ("bob", "bob@example.com")):
        status, out, err = await cvault(
            who, "login", "--email", email, "--password-stdin", stdin=HARNESS_PASSWORD + "\n"
        )
        assert status == 0, (out, err)
    status, out, err = await cvault("owner", "orgs", "invite", "acme", "bob@example.com", "--role", "reader", "--json")
    assert status == 0, (out, err)
    invitation = json.loads(out)
    status, out, err = await cvault("bob", "orgs", "list", "--json")
    assert status == 0 and json.loads(out) == [], (out, err)
    status, out, err = await cvault("bob", "orgs", "invitations")
    assert status == 0 and invitation["id"] in out and "acme" in out, (out, err)
    status, out, err = await cvault("bob", "orgs", "accept", invitation["id"], "--code", invitation["code"])
    assert status == 0 and "reader of acme" in out, (out, err)
    status, out, err = await cvault("bob", "orgs", "list", "--json")
    assert [o["slug"] for o in json.loads(out)] == ["acme"], (out, err)


async def test_an_account_squatted_with_an_inviters_own_code_accepts_no_other_invitation(client: Client) -> None:
    # Mallory invites alice's email into her own org and accepts with her code. Creating "alice's" account needs the
    # code mailed to alice (tests/authority/test_invitation_email.py); should mallory have it (a mailbox she once held),
    # acme's
    # later invitation of that email must still not be hers to accept: she does not hold acme's code.
    owner = await bootstrap_owner(client)
    mallory_session = await _new_user(client, "mallory@example.com")
    mallory_org = await call(
        client, "POST", "/v1/orgs", headers=bearer(mallory_session), json={"slug": "mallory"}, expect=201
    )
    own = await call(
        client,
        "POST",
        f"/v1/orgs/{mallory_org['id']}/invitations",
        headers=bearer(mallory_session),
        json={"email": "alice@example.com", "role": "reader"},
        expect=201,
    )
    await call(
        client,
        "POST",
        f"/v1/invitations/{own['id']}/accept",
        json={"code": own["code"], "password": PASSWORD, "verification": await mailed_verification(client, own["id"])},
        expect=200,
    )
    squatter = await login(client, "alice@example.com")
    acme = await _invite(client, owner, "alice@example.com", "operator")
    path = f"/v1/invitations/{acme['id']}/accept"
    await call(client, "POST", path, headers=bearer(squatter), json={"code": own["code"]}, expect=404)
    await call(client, "POST", path, headers=bearer(squatter), json={}, expect=400)
    members = await call(client, "GET", f"/v1/orgs/{owner.org_id}/members", headers=bearer(owner.session), expect=200)
    assert "alice@example.com" not in [m["email"] for m in members["members"]]
