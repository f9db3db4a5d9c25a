"""Rotation policies at the store (docs/rotation.md, docs/api.md): what ``set`` checks, what ``show``, ``list``,
``disable`` and ``now`` do, bad input as 4xx, the audit events; and the connection document, passwords and SCRAM
verifiers they rest on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from tests.support.enrolled_org import EnrolledOrg
from vault.crypto.scram import scram_sha256_verifier
from vault.errors import BadRequest
from vault.store.connection_document import PASSWORD_ALPHABET, ConnectionDocument, alternate_user, new_password

URL = "postgresql://app:s3cr%40t@db.internal:6432/app?sslmode=require"
ADMIN = '{"host": "db.internal", "port": 6432, "dbname": "app", "user": "admin", "password": "root-pw"}'


def test_a_url_and_a_json_document_parse_and_render_in_their_own_form() -> None:
    doc = ConnectionDocument.parse(URL)
    assert (doc.host, doc.port, doc.dbname, doc.user, doc.password, doc.sslmode) == (
        "db.internal", 6432, "app", "app", "s3cr@t", "require",
    )  # fmt: skip
    assert ConnectionDocument.parse(doc.render()) == doc
    assert "s3cr" not in repr(doc) and "password" not in doc.public()
    j = ConnectionDocument.parse(ADMIN)
    assert j.form == "json" and json.loads(j.render())["password"] == "root-pw"
    new = ConnectionDocument.from_public(doc.public(), user="app_clone", password="Zz9")
    assert new.render() == "postgresql://app_clone:Zz9@db.internal:6432/app?sslmode=require"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("hunter2", "neither a postgresql:// URL nor a JSON object"),
        ("postgresql://app@db/app", "no password"),
        ("postgresql://app:pw@db", "no database name"),
        ("postgresql://app:pw@db/app?options=-csearch_path", "only the sslmode parameter"),
        ("postgresql://app:pw@db/app?sslmode=sometimes", "sslmode must be one of"),
        ("postgresql://app:pw@db:99999/app", "port"),
        ('{"host": "db", "dbname": "app", "user": "app", "password": "pw", "extra": 1}', "unknown fields"),
        ('{"host": "db", "dbname": "app", "user": "a b", "password": "pw"}', "role name"),
        ("[1, 2]", "neither"),
        ('{"host": "db"', "not valid JSON"),
        ('{"host": "db", "port": "\u00b2", "dbname": "app", "user": "app", "password": "pw"}', "port"),
        (
            '{"host": "db", "dbname": "app", "user": "app", "password": "pw", "x": ' + "[" * 2000 + "]" * 2000 + "}",
            "not valid JSON",
        ),
    ],
)
def test_documents_the_rotator_could_not_use_are_refused_without_quoting_the_password(value: str, says: str) -> None:
    with pytest.raises(BadRequest) as refused:
        ConnectionDocument.parse(value)
    assert says in refused.value.message and "pw" not in refused.value.message


def test_passwords_are_uniform_over_letters_and_digits_and_clone_names_alternate() -> None:
    passwords = [new_password(32, os.urandom) for _ in range(200)]
    assert all(len(p) == 32 and set(p) <= set(PASSWORD_ALPHABET) for p in passwords)
    assert len(set(passwords)) == 200
    counts = {c: sum(p.count(c) for p in passwords) for c in PASSWORD_ALPHABET}
    assert min(counts.values()) > 0  # 6400 draws over 62 characters: every one appears
    assert alternate_user("app") == "app_clone" and alternate_user("app_clone") == "app"


def test_the_scram_verifier_is_rfc_7677s() -> None:
    # RFC 7677's example: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_sha256_verifier("pencil", lambda n: salt[:n])
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    server_key = base64.b64encode(hmac.digest(salted, b"Server Key", "sha256")).decode()
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert verifier.endswith(":" + server_key)
    assert server_key == "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="  # the RFC's ServerKey, as v= proves


async def _put(world: EnrolledOrg, name: str, body: dict[str, Any], bundle: str | None = None) -> Any:
    return await world.h.store("PUT", world.path(f"/vaults/prod/rotation/{name}"), bundle or world.bundle, body)


async def test_set_checks_the_secret_and_its_admin_secret_and_show_list_disable_now_follow(world: EnrolledOrg) -> None:
    for name, value in (("db/url", URL), ("db/admin", ADMIN), ("api/key", "k-123")):
        r = await world.h.store("PUT", world.secret(name), world.bundle, {"value": value})
        assert r.status == 200, r
    policy = {"target": "postgres", "every_seconds": 30 * 86400, "admin_secret": "db/admin"}
    # A well-formed policy the stored values do not fit is a conflict with the store's state: 409.
    conflicts = [
        ("api/key", policy, "not a PostgreSQL connection document"),
        ("db/url", {**policy, "admin_secret": "api/key"}, "admin secret 'api/key'"),
        ("db/url", {**policy, "admin_secret": "db/missing"}, "has no current version"),
        ("db/missing", policy, "secret 'db/missing' has no current version"),
        ("db/url", {**policy, "admin_secret": "db/url"}, "another secret"),
    ]
    for name, body, says in conflicts:
        r = await _put(world, name, body)
        assert r.status == 409 and says in r.body["error"]["message"], (body, r)
        assert "s3cr" not in json.dumps(r.body) and "root-pw" not in json.dumps(r.body)
    refusals = [
        ("db/url", {**policy, "every_seconds": 59}, "`int` >= 60 - at `$.every_seconds`"),
        ("db/url", {**policy, "strategy": "sometimes"}, "strategy"),
        ("db/url", {**policy, "password_length": 8}, "password_length"),
        # Which fields a target requires is the document's too (one schema per target): the decoder says which.
        ("db/url", {"target": "postgres", "every_seconds": 3600}, "missing required field `admin_secret`"),
        ("db/url", {**policy, "hook": "deploy"}, "Expected `null`, got `str` - at `$.hook`"),
        ("api/key", {"target": "command", "every_seconds": 3600}, "missing required field `hook`"),
        (
            "api/key",
            {"target": "command", "every_seconds": 3600, "hook": "x", "admin_secret": "db/admin"},
            "at `$.admin_secret`",
        ),
        ("api/key", {"target": "command", "every_seconds": 3600, "hook": "../../bin/sh"}, "at `$.hook`"),
        (
            "api/key",
            {"target": "command", "hook": "x", "every_seconds": 3600, "strategy": "alternating"},
            "Invalid enum value 'alternating' - at `$.strategy`",
        ),
        ("api/key", {"target": "ldap", "every_seconds": 3600}, "Invalid value 'ldap' - at `$.target`"),
    ]
    for name, body, says in refusals:
        r = await _put(world, name, body)
        assert r.status == 400 and says in r.body["error"]["message"], (body, r)
        assert "s3cr" not in json.dumps(r.body) and "root-pw" not in json.dumps(r.body)
    r = await _put(world, "db/nothing", {"target": "command", "every_seconds": 3600, "hook": "deploy"})
    assert r.status == 404

    r = await _put(world, "db/url", {**policy, "strategy": "alternating"})
    assert r.status == 200 and r.body["enabled"] and r.body["rotations"] == 0 and r.body["strategy"] == "alternating"
    r = await _put(world, "api/key", {"target": "command", "every_seconds": 3600, "hook": "deploy"})
    assert r.status == 200
    r = await world.h.store("GET", world.path("/vaults/prod/rotation/db/url"), world.bundle)
    assert r.status == 200 and r.body["admin_secret"] == "db/admin" and r.body["last_failure"] is None
    r = await world.h.store("DELETE", world.path("/vaults/prod/rotation/db/url"), world.bundle)
    assert r.status == 200 and r.body["enabled"] is False
    r = await world.h.store("POST", world.path("/vaults/prod/rotate/db/url"), world.bundle)
    assert r.status == 200 and r.body["enabled"] is True
    later = await world.h.store("GET", world.path("/vaults/prod/rotation/api/key"), world.bundle)
    assert r.body["next_due_at"] < later.body["next_due_at"]  # due now, the other in an hour

    # A token limited to db/ lists only db/ policies.
    scoped = await world.h.store_bundle(
        await world.h.mint(world.bundle, world.org, mask="r", secrets={"db/": "r"}), world.auth
    )
    r = await world.h.store("GET", world.path("/vaults/prod/rotations"), scoped)
    assert r.status == 200 and [p["name"] for p in r.body["rotations"]] == ["db/url"]
    r = await world.h.store("GET", world.path("/vaults/prod/rotations"), world.bundle)
    assert [p["name"] for p in r.body["rotations"]] == ["api/key", "db/url"]
    # Setting a policy is control: a write-only operator token may trigger a rotation, not set one.
    writer = await world.h.store_bundle(await world.h.mint(world.bundle, world.org, mask="rw"), world.auth)
    assert (await _put(world, "db/url", policy, writer)).status == 403
    assert (await world.h.store("POST", world.path("/vaults/prod/rotate/db/url"), writer)).status == 200
    # ...but not undo a disable, which is control: only control enables a disabled policy again.
    await world.h.store("DELETE", world.path("/vaults/prod/rotation/db/url"), world.bundle)
    r = await world.h.store("POST", world.path("/vaults/prod/rotate/db/url"), writer)
    assert r.status == 403 and "disabled" in r.body["error"]["message"]
    r = await world.h.store("GET", world.path("/vaults/prod/rotation/db/url"), world.bundle)
    assert r.body["enabled"] is False
    r = await world.h.store("POST", world.path("/vaults/prod/rotate/db/url"), world.bundle)
    assert r.status == 200 and r.body["enabled"] is True

    r = await world.h.store("GET", world.path("/audit?action=rotation.set_policy"), world.bundle)
    events = [e for e in r.body["events"] if e["outcome"] == "ok"]
    assert [e["secret"] for e in events] == ["db/url", "api/key"]
    assert events[0]["detail"]["strategy"] == "alternating" and "s3cr" not in json.dumps(r.body)


async def test_rotator_routes_refuse_bad_input_with_4xx_and_steps_without_a_lease(world: EnrolledOrg) -> None:
    for name, value in (("db/url", URL), ("db/admin", ADMIN)):
        await world.h.store("PUT", world.secret(name), world.bundle, {"value": value})
    await _put(world, "db/url", {"target": "postgres", "every_seconds": 3600, "admin_secret": "db/admin"})
    claim = world.path("/vaults/prod/rotations/claim")
    step = world.path("/vaults/prod/rotation-step/db/url")
    bad = [
        (claim, {"holder": ""}),
        (claim, {"holder": "a b"}),
        (claim, {"holder": "x", "limit": 0}),
        (claim, {"holder": "x", "limit": 101}),
        (claim, {"holder": "x", "lease_seconds": 0}),
        (claim, {"holder": "x", "lease_seconds": 3601}),
        (claim, {"holder": 7}),
        (step, {"step": "explode", "holder": "x"}),
        (step, {"step": "set", "holder": "x"}),
        (step, {"step": "set", "holder": "x", "pending_version": 0}),
        (step, {"step": "create", "holder": "x"}),
        (step, {"step": "create", "holder": "x" * 129, "value": "v"}),
    ]
    for path, body in bad:
        r = await world.h.store("POST", path, world.bundle, body)
        assert r.status == 400, (body, r)
    # Nothing is due, so nothing is leased; and no step is accepted without the lease.
    r = await world.h.store("POST", claim, world.bundle, {"holder": "x"})
    assert r.status == 200 and r.body["rotations"] == []
    for body in (
        {"step": "create", "holder": "x", "value": "postgresql://app:new@db.internal/app"},
        {"step": "set", "holder": "x", "pending_version": 1},
        {"step": "promote", "holder": "x", "pending_version": 1},
    ):
        r = await world.h.store("POST", step, world.bundle, body)
        assert r.status == 409, (body, r)
    r = await world.h.store("GET", world.path("/vaults/prod/metadata/db/url"), world.bundle)
    assert [v["version"] for v in r.body["versions"]] == [1]  # the refused create wrote nothing


async def test_only_a_token_that_may_read_the_admin_secret_can_name_it(world: EnrolledOrg) -> None:
    for name, value in (("db/url", URL), ("db/admin", ADMIN)):
        await world.h.store("PUT", world.secret(name), world.bundle, {"value": value})
    limited = await world.h.store_bundle(
        await world.h.mint(world.bundle, world.org, mask="rwcdC", secrets={"db/url": "rwcdC"}), world.auth
    )
    body = {"target": "postgres", "every_seconds": 3600, "admin_secret": "db/admin"}
    r = await _put(world, "db/url", body, limited)
    assert r.status == 403 and "db/admin" in r.body["error"]["message"]
    assert (await _put(world, "db/url", body)).status == 200
