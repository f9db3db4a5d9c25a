"""The public list of revoked tokens tells nobody how many logouts and membership changes happened.

``GET /v1/revocations`` needs no credential. Its items and cursor are numbered over token
revocations only, so the session and membership events that the (authenticated) feed
carries between them leave no gap to count.
"""

from __future__ import annotations

from tests.support.authority_app import (
    AppFactory,
    add_member,
    bearer,
    bootstrap_owner,
    call,
    login,
    login_discharge,
    permission_token,
    pool_of,
    strip,
)


async def test_the_public_list_skips_no_numbers_for_sessions_and_memberships(make_client: AppFactory) -> None:
    client = await make_client()
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    first = await strip(client, token, await login_discharge(client, owner.session, token))
    second = await strip(client, token, await login_discharge(client, owner.session, token))
    await call(client, "POST", f"/v1/tokens/{first.token_id}/revoke", headers=bearer(owner.session), expect=200)
    before = await call(client, "GET", "/v1/revocations?since=0", expect=200)

    # Between two token revocations: logouts, a member removed, a role lowered.
    member_id, _ = await add_member(client, owner, "leaver@example.com", "operator")
    for _ in range(3):
        session = await login(client, owner.email)
        await call(client, "DELETE", "/v1/sessions/current", headers=bearer(session), expect=204)
    lowered_id, _ = await add_member(client, owner, "lowered@example.com", "operator")
    path = f"/v1/orgs/{owner.org_id}/members"
    await call(
        client, "PATCH", f"{path}/{lowered_id}", headers=bearer(owner.session), json={"role": "reader"}, expect=200
    )
    await call(client, "DELETE", f"{path}/{member_id}", headers=bearer(owner.session), expect=204)
    kinds = await pool_of(client).fetch("SELECT DISTINCT kind FROM authority.revocations")
    assert {r["kind"] for r in kinds} >= {"token", "session", "member_removed", "role_downgraded"}

    await call(client, "POST", f"/v1/tokens/{second.token_id}/revoke", headers=bearer(owner.session), expect=200)
    after = await call(client, "GET", f"/v1/revocations?since={before['next']}", expect=200)
    assert [r["token_id"] for r in after["revocations"]] == [second.token_id]
    assert after["next"] == before["next"] + 1
    assert [r["seq"] for r in after["revocations"]] == [before["next"] + 1]
    everything = await call(client, "GET", "/v1/revocations?since=0", expect=200)
    assert [r["seq"] for r in everything["revocations"]] == list(range(1, len(everything["revocations"]) + 1))
