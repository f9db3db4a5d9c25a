"""At the authority, each state change's ``ok`` event commits in the change's own
transaction, and a ``COMMIT`` that fails leaves neither the change nor an ``ok`` event: the caller gets a JSON
``500 database_error`` and the log an ``error`` event. Real PostgreSQL; the ``COMMIT`` fails through a deferred
constraint trigger, which runs after the change's statements (its audit event included) went through.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.authority_app import (
    PASSWORD,
    Client,
    Owner,
    add_member,
    authority_services,
    bearer,
    bootstrap_owner,
    login,
    login_discharge,
    mailed_verification,
    permission_token,
)
from vault.audit.query import AuditQueries
from vault.errors import DatabaseError
from vault.macaroon import encode_bundle
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool

# Tables a state change writes; FAIL_AT_COMMIT dooms the COMMIT of any transaction that touched one named in
# authority.doomed, whichever statement did.
_TABLES = ("users", "orgs", "memberships", "sessions", "invitations", "tokens", "revocations")

FAIL_AT_COMMIT = "CREATE TABLE authority.doomed (name text PRIMARY KEY);\n" + (
    """
CREATE FUNCTION authority.fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM authority.doomed WHERE name = TG_TABLE_NAME) THEN
        RAISE EXCEPTION 'refused at commit';
    END IF;
    RETURN NULL;
END $$;
"""
    + "".join(
        f"CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT OR UPDATE OR DELETE ON authority.{table} "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION authority.fail_at_commit();\n"
        for table in _TABLES
    )
)


async def _head(pool: Pool) -> int:
    seq: int = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM authority.audit_events")
    return seq


async def _events(pool: Pool, seq: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT action, outcome, org, actor, detail FROM authority.audit_events WHERE seq > $1 ORDER BY seq", seq
    )
    return [dict(r) for r in rows]


async def _snapshot(pool: Pool) -> dict[str, str | None]:
    """Every row of every table a change writes, digested: equal snapshots mean nothing changed."""
    return {
        table: await pool.fetchval(f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM authority.{table} t")
        for table in _TABLES
    }


@dataclass
class Reply:
    status: int
    body: Any


Act = Callable[[], Awaitable[Reply]]


async def _request(client: Client, method: str, path: str, **kwargs: Any) -> Reply:
    response = await client.request(method, path, **kwargs)
    body = await response.json() if response.content_type == "application/json" else None
    return Reply(response.status, body)


async def _invite(client: Client, owner: Owner, email: str) -> dict[str, Any]:
    reply = await _request(
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": email, "role": "reader"},
        headers=bearer(owner.session),
    )
    assert reply.status == 201, reply
    body: dict[str, Any] = reply.body
    return body


# Each case: the change's action, the table whose write is doomed, its success status, and how to set it up.
Prepare = Callable[[Client, Owner], Awaitable[Act]]


async def _login(client: Client, owner: Owner) -> Act:
    return lambda: _request(client, "POST", "/v1/sessions", json={"email": owner.email, "password": PASSWORD})


async def _logout(client: Client, owner: Owner) -> Act:
    session = await login(client, owner.email)
    return lambda: _request(client, "DELETE", "/v1/sessions/current", headers=bearer(session))


async def _create_org(client: Client, owner: Owner) -> Act:
    return lambda: _request(client, "POST", "/v1/orgs", json={"slug": "beta"}, headers=bearer(owner.session))


async def _create_invitation(client: Client, owner: Owner) -> Act:
    return lambda: _request(
        client,
        "POST",
        f"/v1/orgs/{owner.org_id}/invitations",
        json={"email": "dev@example.com", "role": "reader"},
        headers=bearer(owner.session),
    )


async def _accept_with_code(client: Client, owner: Owner) -> Act:
    invitation = await _invite(client, owner, "new@example.com")
    verification = await mailed_verification(client, invitation["id"])
    return lambda: _request(
        client,
        "POST",
        f"/v1/invitations/{invitation['id']}/accept",
        json={"code": invitation["code"], "password": PASSWORD, "verification": verification},
    )


async def _accept_with_session(client: Client, owner: Owner) -> Act:
    await authority_services(client).accounts.create_user("dev@example.com", PASSWORD)
    session = await login(client, "dev@example.com")
    invitation = await _invite(client, owner, "dev@example.com")
    return lambda: _request(
        client,
        "POST",
        f"/v1/invitations/{invitation['id']}/accept",
        json={"code": invitation["code"]},
        headers=bearer(session),
    )


async def _change_member(client: Client, owner: Owner) -> Act:
    member, _ = await add_member(client, owner, "dev@example.com", "reader")
    return lambda: _request(
        client,
        "PATCH",
        f"/v1/orgs/{owner.org_id}/members/{member}",
        json={"role": "operator"},
        headers=bearer(owner.session),
    )


async def _remove_member(client: Client, owner: Owner) -> Act:
    member, _ = await add_member(client, owner, "dev@example.com", "operator")
    return lambda: _request(
        client, "DELETE", f"/v1/orgs/{owner.org_id}/members/{member}", headers=bearer(owner.session)
    )


async def _mint(client: Client, owner: Owner) -> Act:
    return lambda: _request(client, "POST", "/v1/tokens", json={"org": owner.org_id}, headers=bearer(owner.session))


async def _strip(client: Client, owner: Owner) -> Act:
    token = await permission_token(client, owner.session, owner.org_id)
    discharge = await login_discharge(client, owner.session, token)
    return lambda: _request(client, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([token, discharge])))


async def _revoke(client: Client, owner: Owner) -> Act:
    token = await permission_token(client, owner.session, owner.org_id)
    return lambda: _request(client, "POST", f"/v1/tokens/{token.token_id}/revoke", headers=bearer(owner.session))


@dataclass(frozen=True)
class Case:
    action: str
    table: str
    status: int
    prepare: Prepare


CASES = [
    Case("login", "sessions", 201, _login),
    Case("logout", "sessions", 204, _logout),
    Case("org.create", "orgs", 201, _create_org),
    Case("invitation.create", "invitations", 201, _create_invitation),
    Case("invitation.accept", "users", 200, _accept_with_code),
    Case("invitation.accept", "memberships", 200, _accept_with_session),
    Case("member.change", "memberships", 200, _change_member),
    Case("member.remove", "memberships", 204, _remove_member),
    Case("token.mint", "tokens", 201, _mint),
    Case("token.strip", "tokens", 201, _strip),
    Case("token.revoke", "tokens", 200, _revoke),
    # The revocation list is written in the revocation's transaction: dooming it dooms the revocation.
    Case("token.revoke", "revocations", 200, _revoke),
]


def _case_id(case: Case) -> str:
    return f"{case.action}-{case.prepare.__name__.strip('_')}-{case.table}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_a_change_has_exactly_one_ok_event_in_the_chain(client: Client, pool: Pool, case: Case) -> None:
    await pool.execute(FAIL_AT_COMMIT)  # installed but idle: it must not change anything by itself
    act = await case.prepare(client, await bootstrap_owner(client))
    before, seq = await _snapshot(pool), await _head(pool)
    reply = await act()
    assert reply.status == case.status, reply
    assert [(e["action"], e["outcome"]) for e in await _events(pool, seq)] == [(case.action, "ok")]
    assert (await _snapshot(pool))[case.table] != before[case.table]
    assert (await AuditQueries(PgAuditRepository(pool, "authority")).verify()).ok


@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_a_commit_that_fails_leaves_no_change_and_no_ok_event(client: Client, pool: Pool, case: Case) -> None:
    await pool.execute(FAIL_AT_COMMIT)
    act = await case.prepare(client, await bootstrap_owner(client))
    await pool.execute("INSERT INTO authority.doomed VALUES ($1)", case.table)
    before, seq = await _snapshot(pool), await _head(pool)
    reply = await act()
    assert reply.status == 500, reply
    assert reply.body["error"]["code"] == "database_error", reply
    assert "nothing was changed" in reply.body["error"]["message"]
    assert await _snapshot(pool) == before
    events = await _events(pool, seq)
    # No "ok" event for the change that never committed; one "error" event naming the code.
    assert [(e["action"], e["outcome"]) for e in events] == [(case.action, "error")]
    assert events[0]["detail"]["code"] == "database_error"
    assert (await AuditQueries(PgAuditRepository(pool, "authority")).verify()).ok


async def test_a_revocation_that_failed_leaves_the_token_working(client: Client, pool: Pool) -> None:
    """The node's in-memory revocation set learns of a revocation only once it committed."""
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    await pool.execute(FAIL_AT_COMMIT)
    await pool.execute("INSERT INTO authority.doomed VALUES ('tokens')")
    reply = await _request(client, "POST", f"/v1/tokens/{token.token_id}/revoke", headers=bearer(owner.session))
    assert reply.status == 500, reply
    assert not authority_services(client).revocations.is_revoked(token.token_id)
    await pool.execute("DELETE FROM authority.doomed")
    reply = await _request(client, "POST", f"/v1/tokens/{token.token_id}/revoke", headers=bearer(owner.session))
    assert (reply.status, reply.body) == (200, {"revoked": [token.token_id]})
    assert authority_services(client).revocations.is_revoked(token.token_id)
    assert await pool.fetchval("SELECT count(*) FROM authority.revocations WHERE token_id = $1", token.token_id) == 1


async def test_an_account_is_created_with_its_event_or_not_at_all(client: Client, pool: Pool) -> None:
    """Accounts made outside a request (``cvault bootstrap``) have their ``user.create`` event too."""
    await pool.execute(FAIL_AT_COMMIT)
    accounts = authority_services(client).accounts
    seq = await _head(pool)
    user = await accounts.create_user("first@example.com", PASSWORD)
    assert [(e["action"], e["outcome"], e["actor"]) for e in await _events(pool, seq)] == [
        ("user.create", "ok", f"user:{user.id}")
    ]
    await pool.execute("INSERT INTO authority.doomed VALUES ('users')")
    seq = await _head(pool)
    with pytest.raises(DatabaseError):
        await accounts.create_user("second@example.com", PASSWORD)
    assert await pool.fetchval("SELECT count(*) FROM authority.users WHERE email = 'second@example.com'") == 0
    assert await _events(pool, seq) == []
    assert (await AuditQueries(PgAuditRepository(pool, "authority")).verify()).ok


async def test_bootstrap_records_the_account_the_org_and_the_session(client: Client, pool: Pool) -> None:
    seq = await _head(pool)
    owner = await bootstrap_owner(client)
    events = await _events(pool, seq)
    assert [(e["action"], e["outcome"], e["org"]) for e in events] == [
        ("user.create", "ok", None),
        ("org.create", "ok", owner.org_id),
        ("login", "ok", None),
    ]
    assert {e["actor"] for e in events} == {f"user:{owner.user_id}"}


async def test_a_member_change_says_what_the_role_was(client: Client, pool: Pool) -> None:
    owner = await bootstrap_owner(client)
    act = await _change_member(client, owner)
    seq = await _head(pool)
    assert (await act()).status == 200
    [event] = await _events(pool, seq)
    assert (event["action"], event["detail"]["role"], event["detail"]["was"]) == ("member.change", "operator", "reader")


async def test_a_failure_that_is_not_ours_is_audited_before_the_500(
    client: Client, pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await bootstrap_owner(client)

    async def broken(user_id: int) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(authority_services(client).accounts, "memberships", broken)
    seq = await _head(pool)
    reply = await _request(client, "GET", "/v1/orgs", headers=bearer(owner.session))
    assert (reply.status, reply.body["error"]["code"]) == (500, "internal"), reply
    assert "a bug" not in str(reply.body)
    [event] = await _events(pool, seq)
    assert (event["action"], event["outcome"], event["detail"]["code"]) == ("orgs.list", "error", "internal")
    assert "a bug" not in json.dumps(event["detail"])
