"""Caller-reachable failures are 4xx JSON errors with an audit event, never a 500.

A third-party ticket that names a low-order X25519 key, and names with a trailing
newline (which Python's ``$`` accepts), once reached the server as 500s.
"""

from __future__ import annotations

import base64

import pytest

from tests.support.audit_rows import audit_head, audit_since
from tests.support.authority_app import Client, bearer, bootstrap_owner, call, permission_token, pool_of
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import Harness
from vault.macaroon import encode_token
from vault.storage.pool import Pool

# Points of small order on Curve25519: their shared secret with any private key is all
# zeros, which libsodium refuses (PyNaCl raises its RuntimeError).
LOW_ORDER_KEYS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def _discharge_body(public_key: bytes) -> dict[str, str]:
    ticket = b"\x01" + public_key + bytes(60)
    return {"ticket": base64.b64encode(ticket).decode(), "binding_id": base64.b64encode(bytes(16)).decode()}


async def _outcomes(client: Client, action: str) -> list[str]:
    rows = await pool_of(client).fetch(
        "SELECT outcome FROM authority.audit_events WHERE action = $1 ORDER BY seq", action
    )
    return [r["outcome"] for r in rows]


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=lambda k: k.hex()[:8])
async def test_a_ticket_naming_a_low_order_key_is_a_401_at_the_login_discharger(client: Client, key: bytes) -> None:
    owner = await bootstrap_owner(client)
    path = "/login/.well-known/macfly/3p"
    reply = await call(client, "POST", path, json=_discharge_body(key), headers=bearer(owner.session), expect=401)
    assert reply["error"]["code"] == "invalid_token"
    assert await _outcomes(client, "discharge.login") == ["denied"]


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=lambda k: k.hex()[:8])
async def test_a_ticket_naming_a_low_order_key_is_a_401_at_the_org_discharger(client: Client, key: bytes) -> None:
    owner = await bootstrap_owner(client)
    token = encode_token(await permission_token(client, owner.session, owner.org_id))
    path = "/org/.well-known/macfly/3p"
    reply = await call(client, "POST", path, json=_discharge_body(key), headers=bearer(token), expect=401)
    assert reply["error"]["code"] == "invalid_token"
    assert await _outcomes(client, "discharge.org") == ["denied"]


@pytest.mark.parametrize("slug", ["acme\n", "xy\n", "ac\nme", "\nacme"])
async def test_an_org_slug_with_a_newline_is_a_400_at_the_authority(client: Client, slug: str) -> None:
    owner = await bootstrap_owner(client)
    reply = await call(client, "POST", "/v1/orgs", json={"slug": slug}, headers=bearer(owner.session), expect=400)
    assert reply["error"]["code"] == "bad_request"
    assert await _outcomes(client, "org.create") == ["ok", "error"]  # bootstrap's org, then the refusal


@pytest.mark.parametrize("name", ["prod\n", "staging\n"])
async def test_a_vault_name_with_a_newline_is_a_400_at_the_store(world: EnrolledOrg, pool: Pool, name: str) -> None:
    w = world
    seq = await audit_head(pool)
    r = await w.h.store("POST", w.path("/vaults"), w.bundle, {"name": name})
    assert r.status == 400 and r.code == "bad_request", r
    assert [(e["action"], e["outcome"]) for e in await audit_since(pool, seq)] == [("vaults.create", "error")]


@pytest.mark.parametrize("body", [{"names": ["a\n"]}, {"names": ["db/password\n"]}, {"prefix": "db\n"}])
async def test_a_secret_name_with_a_newline_is_a_400_at_the_store(world: EnrolledOrg, body: dict[str, object]) -> None:
    w = world
    r = await w.h.store("POST", w.path("/vaults/prod/read"), w.bundle, body)
    assert r.status == 400 and r.code == "bad_request", r


async def test_store_enrolment_refuses_a_slug_with_a_newline(harness: Harness, pool: Pool) -> None:
    h = harness
    owner = await h.new_user("owner@example.com")
    org = await h.create_org(owner, "alpha")
    auth = await h.authority_bundle(owner, org)
    r = await h.store("GET", f"/v1/orgs/{org}/enroll")
    bundle = await h.store_bundle(r.body["challenge"], auth)
    r = await h.store("POST", f"/v1/orgs/{org}/enroll", bundle, {"slug": "alpha\n"})
    assert r.status == 400 and r.code == "bad_request", r
    assert await pool.fetchval("SELECT count(*) FROM store.orgs") == 0


async def test_a_bad_name_in_a_store_path_is_a_400_and_audited(world: EnrolledOrg, pool: Pool) -> None:
    w = world
    seq = await audit_head(pool)
    r = await w.h.store("GET", w.path("/vaults/prod%0A/secrets/a"), w.bundle)
    assert r.status == 400 and r.code == "bad_request", r
    r = await w.h.store("GET", w.path("/vaults/prod/secrets/a//b"), w.bundle)
    assert r.status == 400 and r.code == "bad_request", r
    events = await audit_since(pool, seq)
    assert [(e["action"], e["outcome"], e["org"]) for e in events] == [("secrets.read", "error", w.org)] * 2


async def test_unparsable_requests_at_the_authority_are_audited(client: Client) -> None:
    owner = await bootstrap_owner(client)
    headers = bearer(owner.session)
    await call(client, "POST", "/v1/orgs", data=b"{not json", headers=headers, expect=400)
    await call(client, "POST", "/login/.well-known/macfly/3p", json={"ticket": "!!"}, headers=headers, expect=400)
    await call(client, "POST", "/org/.well-known/macfly/3p", json={}, expect=401)
    await call(client, "POST", "/v1/sessions", data=b"[]", expect=400)
    assert await _outcomes(client, "org.create") == ["ok", "error"]
    assert await _outcomes(client, "discharge.login") == ["error"]
    assert await _outcomes(client, "discharge.org") == ["denied"]
    assert "error" in await _outcomes(client, "login")


def test_every_validation_regex_is_anchored_at_both_ends() -> None:
    # Python's "$" also matches before a final newline; cvault compiles patterns without
    # anchors and applies them with fullmatch, never match or search.
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "vault"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        compiled = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                if isinstance(func, ast.Attribute) and func.attr == "compile":
                    compiled |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else None
                if node.func.attr in ("match", "search") and (name == "re" or name in compiled):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
