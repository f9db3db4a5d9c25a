"""The authority end to end over HTTP: tokens, login and org discharges, strip, ClientCIDR, membership."""

from __future__ import annotations

import pytest

from tests.support.authority_app import (
    LOGIN,
    ORG,
    Client,
    add_member,
    bearer,
    bootstrap_owner,
    call,
    login_discharge,
    make_store,
    now,
    org_discharge,
    permission_token,
    pool_of,
    strip,
)
from vault.errors import MissingDischarge
from vault.macaroon import ALL, READ, WRITE, Access, decode_token, encode_bundle, verify
from vault.macaroon.caveats import ClientCIDR, Organization, TokenLineage, UserID, Vaults


async def test_full_flow_strip_and_client_cidr(client: Client) -> None:
    owner = await bootstrap_owner(client)
    member_id, session = await add_member(client, owner, "dev@example.com", "operator")

    token = await permission_token(client, session, owner.org_id)
    assert token.location == "http://authority.test"
    discharge = await login_discharge(client, session, token)
    assert discharge.location == LOGIN

    # Without its login discharge a permission token is refused; with it, strip works.
    refused = await call(client, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([token])), expect=401)
    assert refused["error"]["code"] == "discharge_required"
    service = await strip(client, token, discharge)
    assert not service.third_party_tickets(LOGIN)
    listed = await call(client, "GET", "/v1/tokens", headers=bearer(session), expect=200)
    by_id = {t["id"]: t for t in listed["tokens"]}
    assert by_id[service.token_id]["kind"] == "service"
    assert by_id[service.token_id]["parent"] == token.token_id
    assert by_id[service.token_id]["lineage"] == [token.token_id]
    assert by_id[service.token_id]["expires_at"] is None

    workload = service.attenuate([ClientCIDR(("10.1.0.0/16",))])
    store = await make_store(client)
    store_token = store.token(owner.org_id)

    reply = await org_discharge(client, store_token, encode_bundle([workload]), addr="10.1.2.3")
    org_d = decode_token(reply["discharge"])
    assert org_d.location == ORG
    verified = verify(store_token, store.root_key, [org_d], now=now(), trusted={ORG: [store.shared_key]})
    verified.check(Access(now(), action=READ | WRITE, org_id=owner.org_id))
    assert [u.id for u in verified.attested(UserID)] == [member_id]
    assert verified.attested(TokenLineage) == [TokenLineage(service.token_id, (token.token_id,))]
    assert Organization(owner.org_id, READ | WRITE | 4 | 8) in verified.find(Organization)

    denied = await org_discharge(client, store_token, encode_bundle([workload]), addr="10.9.9.9", expect=403)
    assert "ClientCIDR" in denied["error"]["message"]
    assert "10.9.9.9" in denied["error"]["message"]


async def test_org_discharge_with_permission_token_and_login_discharge(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id, mask="r")
    discharge = await login_discharge(client, owner.session, token)
    store = await make_store(client)
    store_token = store.token(owner.org_id)
    reply = await org_discharge(client, store_token, encode_bundle([token, discharge]))
    verified = verify(store_token, store.root_key, [decode_token(reply["discharge"])], now=now())
    verified.check(Access(now(), action=READ, org_id=owner.org_id))
    with pytest.raises(Exception, match="allows 'r'"):
        verified.check(Access(now(), action=WRITE, org_id=owner.org_id))

    missing = await org_discharge(client, store_token, encode_bundle([token]), expect=401)
    assert missing["error"]["code"] == "discharge_required"
    assert LOGIN in missing["error"]["message"]


async def test_store_restrictions_are_carried_into_the_org_discharge(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    narrowed = service.attenuate([Vaults((("prod", READ),))])
    store = await make_store(client)
    store_token = store.token(owner.org_id)
    reply = await org_discharge(client, store_token, encode_bundle([narrowed]))
    verified = verify(store_token, store.root_key, [decode_token(reply["discharge"])], now=now())
    verified.check(Access(now(), action=READ, org_id=owner.org_id, vault="prod"))
    with pytest.raises(Exception, match="limited to vaults"):
        verified.check(Access(now(), action=READ, org_id=owner.org_id, vault="dev"))


async def test_removed_member_refused_at_once(client: Client) -> None:
    owner = await bootstrap_owner(client)
    member_id, session = await add_member(client, owner, "leaver@example.com", "operator")
    token = await permission_token(client, session, owner.org_id)
    discharge = await login_discharge(client, session, token)
    bundle = encode_bundle([token, discharge])
    store = await make_store(client)
    store_token = store.token(owner.org_id)
    await org_discharge(client, store_token, bundle)

    await call(
        client, "DELETE", f"/v1/orgs/{owner.org_id}/members/{member_id}", headers=bearer(owner.session), expect=204
    )
    refused = await org_discharge(client, store_token, bundle, expect=403)
    assert refused["error"]["message"] == f"user {member_id} is not a member of organization {owner.org_id}"


async def test_role_change_narrows_mask(client: Client) -> None:
    owner = await bootstrap_owner(client)
    member_id, session = await add_member(client, owner, "op@example.com", "operator")
    token = await permission_token(client, session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, session, token))
    store = await make_store(client)
    store_token = store.token(owner.org_id)

    def mask_of(reply: dict[str, str]) -> int:
        d = decode_token(reply["discharge"])
        verified = verify(store_token, store.root_key, [d], now=now())
        return next(o.mask for o in verified.find(Organization) if o.id == owner.org_id and o.mask != ALL)

    assert mask_of(await org_discharge(client, store_token, encode_bundle([service]))) == 0b1111
    await call(
        client,
        "PATCH",
        f"/v1/orgs/{owner.org_id}/members/{member_id}",
        json={"role": "reader"},
        headers=bearer(owner.session),
        expect=200,
    )
    assert mask_of(await org_discharge(client, store_token, encode_bundle([service]))) == READ

    await call(
        client,
        "PATCH",
        f"/v1/orgs/{owner.org_id}/members/{member_id}",
        json={"role": "auditor"},
        headers=bearer(owner.session),
        expect=200,
    )
    refused = await org_discharge(client, store_token, encode_bundle([service]), expect=403)
    assert "nothing in common" in refused["error"]["message"]


async def test_ticket_for_other_authority_refused(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    store = await make_store(client)
    # Sealed for another authority's org key: same location, different X25519 key.
    from vault.crypto.ticket_keys import TicketKeyPair

    other_authority = TicketKeyPair.generate()
    store.org_public_key = other_authority.public_key
    refused = await org_discharge(client, store.token(owner.org_id), encode_bundle([service]), expect=401)
    assert refused["error"]["code"] == "invalid_token"
    assert "does not open" in refused["error"]["message"]

    # The login discharger refuses a login ticket meant for another authority's login key too.
    foreign = token.third_party_tickets(LOGIN)[0].ticket
    forged = foreign[:1] + other_authority.public_key + foreign[33:]
    await call(
        client,
        "POST",
        "/login/.well-known/macfly/3p",
        json={"ticket": _b64(forged), "binding_id": _b64(token.binding_id())},
        headers=bearer(owner.session),
        expect=401,
    )


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


async def test_tampered_ticket_refused(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    store = await make_store(client)
    store_token = store.token(owner.org_id)
    ticket = bytearray(store_token.third_party_tickets(ORG)[0].ticket)
    ticket[-5] ^= 0x01
    reply = await call(
        client,
        "POST",
        "/org/.well-known/macfly/3p",
        json={"ticket": _b64(bytes(ticket)), "binding_id": _b64(store_token.binding_id())},
        headers=bearer(encode_bundle([service])),
        expect=401,
    )
    assert reply["error"]["code"] == "invalid_token"


async def test_discharge_bound_to_presenting_token(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    store = await make_store(client)
    store_token = store.token(owner.org_id)
    narrowed = store_token.attenuate([Vaults((("prod", READ),))])

    ticket = store_token.third_party_tickets(ORG)[0].ticket
    reply = await call(
        client,
        "POST",
        "/org/.well-known/macfly/3p",
        json={"ticket": _b64(ticket), "binding_id": _b64(narrowed.binding_id())},
        headers=bearer(encode_bundle([service])),
        expect=201,
    )
    d = decode_token(reply["discharge"])
    # Works with the token it was bound to, not with the less attenuated original.
    verify(narrowed, store.root_key, [d], now=now())
    with pytest.raises(MissingDischarge, match="bound to a different token"):
        verify(store_token, store.root_key, [d], now=now())
    # The login discharge is bound to the permission token it was asked for, too.
    other = await permission_token(client, owner.session, owner.org_id)
    login_d = await login_discharge(client, owner.session, token)
    swapped = await call(
        client, "POST", "/v1/tokens/strip", headers=bearer(encode_bundle([other, login_d])), expect=401
    )
    assert swapped["error"]["code"] == "discharge_required"
    # And a discharge needs a binding id.
    missing = await call(
        client,
        "POST",
        "/org/.well-known/macfly/3p",
        json={"ticket": _b64(ticket)},
        headers=bearer(encode_bundle([service])),
        expect=400,
    )
    assert "binding_id" in missing["error"]["message"]


async def test_org_discharge_refuses_token_for_another_org(client: Client) -> None:
    owner = await bootstrap_owner(client)
    second = await call(client, "POST", "/v1/orgs", json={"slug": "beta"}, headers=bearer(owner.session), expect=201)
    token = await permission_token(client, owner.session, second["id"])
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    store = await make_store(client)
    refused = await org_discharge(client, store.token(owner.org_id), encode_bundle([service]), expect=403)
    assert f"token is for organization {second['id']}, not {owner.org_id}" in refused["error"]["message"]


async def test_discharges_are_audited(client: Client) -> None:
    owner = await bootstrap_owner(client)
    token = await permission_token(client, owner.session, owner.org_id)
    service = await strip(client, token, await login_discharge(client, owner.session, token))
    store = await make_store(client)
    await org_discharge(client, store.token(owner.org_id), encode_bundle([service]))
    await org_discharge(client, store.token(owner.org_id), encode_bundle([service]), addr="10.0.0.1")
    pool = pool_of(client)
    rows = await pool.fetch("SELECT action, outcome, token_id, lineage FROM authority.audit_events ORDER BY seq")
    actions = [(r["action"], r["outcome"]) for r in rows]
    for expected in [("login", "ok"), ("org.create", "ok"), ("token.mint", "ok"), ("discharge.login", "ok")]:
        assert expected in actions
    assert ("token.strip", "ok") in actions
    assert ("discharge.org", "ok") in actions
