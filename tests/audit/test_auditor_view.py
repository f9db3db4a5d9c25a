"""What an auditor reads: names rather than numbers, the newest events first, and not their own queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from tests.support.audited_store import Audited
from tests.support.cvault_command import cvault_env, run_cvault
from tests.support.enrolled_org import EnrolledOrg
from tests.support.harness import Harness


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr class=.*?</tr>", page, flags=re.S)


async def test_an_auditor_lists_the_orgs_members_and_a_reader_cannot(world: EnrolledOrg) -> None:
    h = world.h
    auditor = await h.add_member(world.owner, world.org, "auditor@example.com", "auditor")
    reader = await h.add_member(world.owner, world.org, "reader@example.com", "reader")
    r = await h.authority("GET", f"/v1/orgs/{world.org}/members", auditor.session)
    assert r.status == 200, r
    assert {m["email"] for m in r.body["members"]} >= {"owner@example.com", "auditor@example.com"}
    r = await h.authority("GET", f"/v1/orgs/{world.org}/members", reader.session)
    assert r.status in (403, 404), r


async def test_the_console_names_actors_and_the_org_and_hides_the_reviewers_own_queries(audited: Audited) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # the first visit's own queries are in the log by the second
            async with http.get(audited.console_url) as resp:
                page = await resp.text()
                assert resp.status == 200, page
        async with http.get(audited.console_url + "?show_own=1") as resp:
            shown = await resp.text()
    # Names, not numbers: the owner wrote the secrets; the org by its slug.
    assert "owner@example.com" in page
    assert f"acme ({audited.world.org})" in page
    assert not any("audit.query" in row for row in _rows(page))
    assert 'id="show-own"' in page
    assert any("audit.query" in row and "auditor@example.com" in row for row in _rows(shown))
    assert 'id="hide-own"' in shown


async def test_cvault_audit_query_limit_returns_the_newest_and_reverse_the_oldest(
    world: EnrolledOrg, harness: Harness, tmp_path: Path
) -> None:
    for i in range(4):
        r = await world.h.store("PUT", world.secret("db/url"), world.bundle, {"value": f"v{i}"})
        assert r.status == 200, r
    auditor = await world.h.add_member(world.owner, world.org, "auditor@example.com", "auditor")
    r = await world.h.store("POST", world.path("/tokens"), world.bundle, {"mask": "a"})
    assert r.status == 201, r
    env = cvault_env(
        {
            "CVAULT_STORE_URL": harness.store_url,
            "CVAULT_AUTHORITY_URL": harness.authority_url,
            "CVAULT_STORE_TOKEN": r.body["token"],
            "CVAULT_SESSION": auditor.session,
            "HOME": str(tmp_path),
        }
    )
    query = ("audit", "query", "--action", "secrets.write", "--limit", "2", "--json")
    status, out, err = await run_cvault(*query, env=env)
    assert status == 0, err
    assert [e["version"] for e in json.loads(out)] == [4, 3]
    status, out, err = await run_cvault(*query, "--reverse", env=env)
    assert status == 0, err
    assert [e["version"] for e in json.loads(out)] == [1, 2]
