"""A store token narrowed with ``Secrets`` can boot a workload.

A batch read returns the secrets the token allows and leaves out the rest (each left
out name audited as ``denied``; a listed name it refuses is reported in ``missing``,
so the reply says nothing about whether it exists); ``cvault run`` works with such a token.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.audit_rows import audit_head, audit_since
from tests.support.cvault_command import PROJECT_ROOT, run_cvault
from tests.support.enrolled_org import EnrolledOrg
from vault.storage.pool import Pool

SECRETS = {"db/url": "postgres://app:pw@db/app", "db/user": "app", "api/key": "k-123", "smtp/password": "mail"}


async def _fill(w: EnrolledOrg) -> None:
    for name, value in SECRETS.items():
        r = await w.h.store("PUT", w.secret(name), w.bundle, {"value": value})
        assert r.status == 200, r


async def _db_only_bundle(w: EnrolledOrg) -> str:
    token = await w.h.mint(w.bundle, w.org, mask="r", secrets={"db/": "r"})
    return await w.h.store_bundle(token, w.auth)


async def test_a_prefix_batch_read_with_a_secrets_scoped_token_returns_what_it_allows(
    world: EnrolledOrg, pool: Pool
) -> None:
    w = world
    await _fill(w)
    bundle = await _db_only_bundle(w)
    seq = await audit_head(pool)
    r = await w.h.store("POST", w.path("/vaults/prod/read"), bundle, {"prefix": ""})
    assert r.status == 200, r
    assert {n: s["value"] for n, s in r.body["secrets"].items()} == {"db/url": SECRETS["db/url"], "db/user": "app"}
    events = sorted((e["action"], e["outcome"], e["secret"]) for e in await audit_since(pool, seq))
    assert events == [
        ("secrets.read", "denied", "api/key"),
        ("secrets.read", "denied", "smtp/password"),
        ("secrets.read", "ok", "db/url"),
        ("secrets.read", "ok", "db/user"),
    ]


async def test_listed_names_the_token_refuses_are_left_out_and_audited(world: EnrolledOrg, pool: Pool) -> None:
    w = world
    await _fill(w)
    bundle = await _db_only_bundle(w)
    seq = await audit_head(pool)
    names = ["db/url", "api/key", "db/none", "nowhere/at/all"]
    r = await w.h.store("POST", w.path("/vaults/prod/read"), bundle, {"names": names})
    assert r.status == 200, r
    assert list(r.body["secrets"]) == ["db/url"]
    # A refused name is reported like an absent one: the reply does not tell whether it exists.
    assert sorted(r.body["missing"]) == ["api/key", "db/none", "nowhere/at/all"]
    assert "k-123" not in str(r.body)
    events = sorted((e["action"], e["outcome"], e["secret"]) for e in await audit_since(pool, seq))
    assert events == [
        ("secrets.read", "denied", "api/key"),
        ("secrets.read", "denied", "nowhere/at/all"),
        ("secrets.read", "ok", "db/url"),
    ]


async def test_a_secrets_scoped_token_still_cannot_read_outside_its_vault_or_write(world: EnrolledOrg) -> None:
    w = world
    await _fill(w)
    bundle = await _db_only_bundle(w)
    assert (await w.h.store("POST", w.path("/vaults"), w.bundle, {"name": "other"})).status == 201
    r = await w.h.store("POST", w.path("/vaults/prod/read"), bundle, {"prefix": "api/"})
    assert r.status == 200 and r.body["secrets"] == {}, r
    r = await w.h.store("PUT", w.secret("db/url"), bundle, {"value": "evil"})
    assert r.status == 403, r


async def test_cvault_run_boots_with_a_secrets_scoped_store_token(world: EnrolledOrg, tmp_path: Path) -> None:
    w = world
    h = w.h
    await _fill(w)
    store_token = await h.mint(w.bundle, w.org, mask="r", secrets={"db/": "r"})
    r = await h.authority("POST", "/v1/tokens/strip", w.auth)
    assert r.status == 201, r
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(PROJECT_ROOT),
        "HOME": str(tmp_path),
        "CVAULT_AUTHORITY_URL": h.authority_url,
        "CVAULT_STORE_URL": h.store_url,
        "CVAULT_STORE_TOKEN": store_token,
        "CVAULT_AUTH_TOKEN": r.body["token"],
    }
    status, out, err = await run_cvault("run", "--vault", "prod", "--", "env", env=env)
    assert status == 0, (out, err)
    child = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert child["DB_URL"] == SECRETS["db/url"] and child["DB_USER"] == "app"
    assert "API_KEY" not in child and "SMTP_PASSWORD" not in child
    status, out, err = await run_cvault("run", "--vault", "prod", "--prefix", "db/", "--", "env", env=env)
    assert status == 0 and "URL=" + SECRETS["db/url"] in out, (out, err)
    status, out, err = await run_cvault("run", "--vault", "prod", "--only", "db/url", "--", "env", env=env)
    assert status == 0 and "DB_URL=" + SECRETS["db/url"] in out, (out, err)
    status, out, err = await run_cvault("run", "--vault", "prod", "--only", "db/url,api/key", "--", "env", env=env)
    assert status == 4 and "api/key" in err and "k-123" not in out + err, (out, err)
