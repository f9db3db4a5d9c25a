"""Ticket keys (X25519): rotate (a new pair seals, old ones open), the store follows the authority, retire.

The services run with ``key_watch_interval = 300``: a change can reach a node within the test
only through LISTEN/NOTIFY. The store reads the authority's key list every 0.5 s.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from tests.support.cvault_command import run_cvault
from tests.support.enrolled_org import EnrolledOrg, world_of
from tests.support.harness import Harness, running_services
from tests.support.key_traffic import Operation, eventually, keys_env, report_latency, traffic
from vault.audit.query import AuditQueries
from vault.macaroon import decode_token, ticket_sender
from vault.storage.audit import PgAuditRepository
from vault.storage.pool import Pool
from vault.web.store.services import SERVICES_KEY as STORE_SERVICES


@pytest.fixture
async def quiet(database_url: str) -> AsyncIterator[Harness]:
    async with running_services(database_url, key_watch_interval=300, authority_keys_interval=0.5) as h:
        yield h


@pytest.fixture
async def world(quiet: Harness) -> EnrolledOrg:
    return await world_of(quiet)


def _ids(out: str) -> dict[str, int]:
    """purpose -> new key id, from rotate-tickets' lines (`authority/<purpose>/<hex> now seals ...`)."""
    ids = {}
    for line in out.splitlines():
        name = line.split()[0]
        _service, purpose, hex_id = name.split("/")
        ids[purpose] = int(hex_id, 16)
    return ids


async def _store_keys(h: Harness) -> dict[str, dict[str, object]]:
    r = await h.store("GET", "/.well-known/cvault/keys")
    assert r.status == 200, r
    return r.body  # type: ignore[no-any-return]


async def _authority_keys(h: Harness) -> dict[str, dict[str, object]]:
    r = await h.authority("GET", "/.well-known/cvault/keys")
    assert r.status == 200, r
    return r.body  # type: ignore[no-any-return]


async def _discharge_status(h: Harness, store_token: str, auth: str) -> int:
    return (await h.org_discharge(store_token, auth)).status


async def _written_secret(world: EnrolledOrg) -> str:
    """The path of a secret written once, for the traffic to read."""
    path = world.secret("db/url")
    assert (await world.h.store("PUT", path, world.bundle, {"value": "v"})).status == 200
    return path


def _fresh_token_op(h: Harness, world: EnrolledOrg, path: str, minter: str) -> Operation:
    """Mint a store token with ``minter`` (sealed to whatever the store seals with now), discharge it, read with it."""

    async def op(worker: int, n: int) -> str | None:
        r = await h.store("POST", world.path("/tokens"), minter, {"mask": "r"})
        if r.status != 201:
            return f"mint {r.status}: {r.body}"
        d = await h.org_discharge(r.body["token"], world.auth)
        if d.status != 201:
            return f"discharge of a fresh token {d.status}: {d.body}"
        bundle = f"{r.body['token']},{d.body['discharge']}"
        got = await h.store("GET", path, bundle)
        return None if got.status == 200 else f"read {got.status}: {got.body}"

    return op


async def test_authority_ticket_keys_rotate_and_retire_under_traffic(world: EnrolledOrg) -> None:
    h = world.h
    env = keys_env(h)
    path = await _written_secret(world)
    before = await _authority_keys(h)
    old_org = int(str(before["org"]["key_id"]), 16)
    old_token = world.root  # its ticket is sealed to the old org key
    fresh = _fresh_token_op(h, world, path, world.bundle)

    async def mixed(worker: int, n: int) -> str | None:
        if worker % 2:
            return await fresh(worker, n)
        status = await _discharge_status(h, old_token, world.auth)
        return None if status == 201 else f"discharge of an old token {status}"

    # 1. Rotate during traffic: old tickets still open, new ones are sealed to the new key once the store has it.
    async with traffic(mixed) as load:
        await load.wait_for(10)
        mark = load.mark()
        code, out, err = await run_cvault("keys", "rotate-tickets", "--service", "authority", env=env)
        assert code == 0, err
        new = _ids(out)
        assert set(new) == {"authority-login-x25519", "authority-org-x25519", "authority-issuer-x25519"}
        new_org = new["authority-org-x25519"]

        async def authority_publishes() -> bool:
            org = (await _authority_keys(h))["org"]
            return org["key_id"] == f"{new_org:016x}" and len(org["keys"]) == 2  # type: ignore[arg-type]

        report_latency("authority publishes the new org key (NOTIFY)", await eventually(authority_publishes, "publish"))

        async def store_seals_to_new() -> bool:
            return (await _store_keys(h))["authority_org"]["key_id"] == f"{new_org:016x}"

        report_latency("store seals to the new org key (poll 0.5 s)", await eventually(store_seals_to_new, "pickup"))
        await load.wait_for(10)
        during_rotation = load.since(mark)
    assert load.failures == [], load.failures[:5]
    assert during_rotation > 0

    published = await _authority_keys(h)
    assert published["org"]["public_key"] == (await _store_keys(h))["authority_org"]["public_key"]
    minted = await h.mint(world.bundle, world.org, mask="r")
    assert (await _discharge_status(h, minted, world.auth)) == 201
    assert (await _discharge_status(h, old_token, world.auth)) == 201

    # 2. Retire the old org key during traffic of tokens minted since: none fails; the old token's tickets are dead,
    # at the authority (no discharge) and at the store once it drops the key (not even with a discharge it has).
    minter = await h.store_bundle(await h.mint(world.bundle, world.org, mask="rC"), world.auth)
    fresh = _fresh_token_op(h, world, path, minter)
    code, out, err = await run_cvault("keys", "retire-tickets", f"{new_org:x}", env=env)
    assert code == 4 and "seals new tickets" in err  # refused (docs/client.md)
    code, out, err = await run_cvault(
        "keys", "retire-tickets", f"authority/authority-org-x25519/{old_org:016x}", env=env
    )
    assert code == 1 and "nothing retired" in out and "no org discharge" in out
    async with traffic(fresh) as load:
        await load.wait_for(10)
        mark = load.mark()
        code, out, err = await run_cvault(
            "keys", "retire-tickets", f"{old_org:016x}", "--service", "authority", "--yes", env=env
        )
        assert code == 0, err

        async def old_refused() -> bool:
            return await _discharge_status(h, old_token, world.auth) == 401

        report_latency(
            "authority refuses tickets of the retired org key (NOTIFY)", await eventually(old_refused, "retire")
        )

        async def store_refuses_old() -> bool:
            return (await h.store("GET", path, world.bundle)).status == 401

        report_latency(
            "store refuses tokens sealed to the retired org key (poll 0.5 s)",
            await eventually(store_refuses_old, "store"),
        )
        await load.wait_for(10)
        during_retirement = load.since(mark)
    assert load.failures == [], load.failures[:5]
    assert during_retirement > 0
    assert [k["id"] for k in (await _authority_keys(h))["org"]["keys"]] == [f"{new_org:016x}"]  # type: ignore[attr-defined]
    assert (await _discharge_status(h, minted, world.auth)) == 201

    # 3. Login and issuer pairs: new permission tokens use the new ones; retiring the old ones ends the old tokens.
    new_auth = await h.authority_bundle(world.owner, world.org)
    new_token = decode_token(new_auth.split(",")[0])
    [login_caveat] = new_token.third_party_tickets(f"{h.authority_url}/login")
    issuer_public = ticket_sender(login_caveat.ticket)
    assert issuer_public != ticket_sender(
        decode_token(world.auth.split(",")[0]).third_party_tickets(f"{h.authority_url}/login")[0].ticket
    )
    assert (await _discharge_status(h, minted, new_auth)) == 201
    for purpose in ("authority-login-x25519", "authority-issuer-x25519"):
        [old_name] = [
            line.split()[0]
            for line in (await run_cvault("keys", "status", env=env))[1].splitlines()
            if line.startswith(f"authority/{purpose}/") and " accepted " in line
        ]
        code, out, err = await run_cvault("keys", "retire-tickets", old_name, "--yes", env=env)
        assert code == 0, err

    async def old_login_refused() -> bool:
        return await _discharge_status(h, minted, world.auth) == 401

    await eventually(old_login_refused, "old permission token refused")
    assert (await _discharge_status(h, minted, new_auth)) == 201
    print(f"\nauthority ticket keys: {during_rotation} ops during rotation, {during_retirement} during retirement")


async def test_store_ticket_key_rotation_and_the_endorsement_check(world: EnrolledOrg) -> None:
    h = world.h
    env = keys_env(h)
    path = await _written_secret(world)
    old_store_key = await _store_keys(h)
    old_public = old_store_key["ticket"]["public_key"]
    fresh = _fresh_token_op(h, world, path, world.bundle)

    async with traffic(fresh) as load:
        await load.wait_for(10)
        mark = load.mark()
        code, out, err = await run_cvault("keys", "rotate-tickets", "--service", "store", env=env)
        assert code == 0, err
        [new_id] = _ids(out).values()

        async def store_switched() -> bool:
            return (await _store_keys(h))["ticket"]["key_id"] == f"{new_id:016x}"

        report_latency(
            "store seals with its new ticket pair (NOTIFY)", await eventually(store_switched, "store switch")
        )
        await load.wait_for(10)
        during = load.since(mark)
    assert load.failures == [], load.failures[:5]
    assert during > 0

    minted = decode_token(await h.mint(world.bundle, world.org, mask="r"))
    [caveat] = minted.third_party_tickets(h.org_location)
    new_public = (await _store_keys(h))["ticket"]["public_key"]
    assert base64.b64encode(ticket_sender(caveat.ticket)).decode() == new_public != old_public
    # Tokens minted before still read; the store still follows the authority's list (endorsed for its new pair).
    assert (await h.store("GET", path, await h.store_bundle(world.root, world.auth))).status == 200
    # The store follows the authority's list on the word of endorsements made for its new pair.
    code, out, err = await run_cvault("keys", "rotate-tickets", "--service", "authority", env=env)
    assert code == 0, err
    new_org = _ids(out)["authority-org-x25519"]

    async def store_seals_to_new() -> bool:
        return (await _store_keys(h))["authority_org"]["key_id"] == f"{new_org:016x}"

    report_latency("store (new pair) seals to a new org key", await eventually(store_seals_to_new, "pickup"))
    assert (await _discharge_status(h, await h.mint(world.bundle, world.org, mask="r"), world.auth)) == 201

    # Retiring the old pair ends the tokens minted with it at the store; those minted since keep working.
    minted_bundle = await h.store_bundle(minted, world.auth)
    code, out, err = await run_cvault(
        "keys", "retire-tickets", f"store/store-ticket/{old_store_key['ticket']['key_id']}", "--yes", env=env
    )
    assert code == 0, err

    async def old_refused() -> bool:
        return (await h.store("GET", path, world.bundle)).status == 401

    report_latency("store refuses tokens of its retired ticket pair (NOTIFY)", await eventually(old_refused, "refuse"))
    assert (await h.store("GET", path, minted_bundle)).status == 200

    # A list no trusted key endorses is refused: whoever answers the URL cannot slip in a key.
    sealing = h.store_app[STORE_SERVICES].tokens.sealing
    published = [(k, p) for k, p in sealing.authority_keys if k is not None]
    forged_key = bytes(32 * [7])
    nonce = os.urandom(16)
    assert not sealing.accept([(999, forged_key), *published], {999: bytes(32)}, nonce=nonce)
    assert not sealing.accept([(999, forged_key), *published], {published[0][0]: bytes(32)}, nonce=nonce)
    assert sealing.authority_keys[0][1] != forged_key

    r = await h.authority("GET", "/.well-known/cvault/keys?first_party=not-base64!")
    assert r.status == 400, r
    r = await h.authority("GET", "/.well-known/cvault/keys?first_party=" + base64.b64encode(b"short").decode())
    assert r.status == 400, r
    # The nonce the endorsements cover: 32 hex digits exactly, or a 400 that says so.
    first_party = base64.urlsafe_b64encode(base64.b64decode(new_public)).decode()
    for bad in ("zz" * 16, "ab" * 15, "ab" * 17, "ab " * 16, "ab" * 15 + " a"):
        r = await h.authority("GET", f"/.well-known/cvault/keys?first_party={first_party}&nonce={quote(bad)}")
        assert r.status == 400 and "nonce" in r.body["error"]["message"], (bad, r)
    r = await h.authority("GET", f"/.well-known/cvault/keys?first_party={first_party}&nonce={nonce.hex()}")
    assert r.status == 200, r
    org = r.body["org"]
    listed = [(int(k["id"], 16), base64.b64decode(k["public_key"])) for k in org["keys"]]
    tags = {int(e["id"], 16): base64.b64decode(e["mac"]) for e in org["endorsements"]}
    before = sealing.authority_keys
    assert sealing.accept(listed, tags, nonce=nonce)
    assert not sealing.accept(listed, tags, nonce=os.urandom(16))
    assert sealing.authority_keys == before
    print(f"\nstore ticket key: {during} ops during rotation")


async def test_ticket_key_changes_are_audited_in_their_schema(world: EnrolledOrg, pool: Pool) -> None:
    h = world.h
    env = {**keys_env(h), "LOGNAME": "rotator", "USER": "rotator"}
    old = (await _store_keys(h))["ticket"]["key_id"]
    code, out, err = await run_cvault("keys", "rotate-tickets", "--service", "store", env=env)
    assert code == 0, err
    [new] = _ids(out).values()
    code, out, err = await run_cvault("keys", "retire-tickets", f"store/store-ticket/{old}", env=env)
    assert code == 1  # explaining only: no change, no event
    code, out, err = await run_cvault("keys", "retire-tickets", f"store/store-ticket/{old}", "--yes", env=env)
    assert code == 0, err
    rows = await pool.fetch(
        "SELECT action, actor, client_addr, detail::text AS detail FROM store.audit_events "
        "WHERE action LIKE 'keys.%tickets' ORDER BY seq"
    )
    assert [(r["action"], r["actor"], r["client_addr"], json.loads(r["detail"])) for r in rows] == [
        ("keys.rotate_tickets", "local:rotator", "local", {"purpose": "store-ticket", "key_id": f"{new:016x}"}),
        ("keys.retire_tickets", "local:rotator", "local", {"purpose": "store-ticket", "key_id": old}),
    ]
    assert (await AuditQueries(PgAuditRepository(pool, "store")).verify()).ok
