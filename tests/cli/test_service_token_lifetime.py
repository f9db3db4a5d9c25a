"""``cvault tokens create --service --ttl N``: the service token lives N seconds, and says so.

Strip drops the authority's issuance window by design; the lifetime asked for is
bound as a window the holder appends before strip (which strip keeps), so the
service token itself expires, and ``tokens list`` / ``tokens debug`` show when.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.dev_world import DevWorld, make_dev_world
from vault.macaroon import parse_bundle
from vault.macaroon.caveats import ValidityWindow

TTL = 3


@pytest.fixture(scope="module")
def w(postgres_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorld]:
    yield from make_dev_world(postgres_server, template_database, tmp_path_factory)


def test_service_token_ttl_binds_the_service_token_and_list_and_debug_show_it(w: DevWorld) -> None:
    asked = int(time.time())
    r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service", "--ttl", str(TTL), "--json")
    assert r.status == 0, r
    service = json.loads(r.out)
    assert service["expires_at"]
    token = parse_bundle(service["token"]).tokens[0]
    ends = [c.not_after for c in token.unverified_caveats if isinstance(c, ValidityWindow)]
    assert ends and asked + TTL <= min(ends) <= int(time.time()) + TTL

    r = w.cvault("tokens", "debug", service["token"])
    assert r.status == 0 and "service token" in r.out and ("expires in" in r.out or "expired" in r.out), r
    listed = {t["id"]: t for t in json.loads(w.cvault("tokens", "list", "--json").out)}
    assert listed[service["id"]]["expires_at"] == service["expires_at"]
    assert listed[service["id"]]["kind"] == "service"

    # Past its window the authority refuses it: no discharge, so the workload cannot read.
    while time.time() <= min(ends) + 1:
        time.sleep(0.2)
    env = {**w.wl, "CVAULT_AUTH_TOKEN": service["token"]}
    r = w.cvault("run", "--vault", "prod", "--", "true", env=env)
    assert r.status == 4 and "expired" in r.err, r


def test_service_token_without_ttl_still_has_no_expiry(w: DevWorld) -> None:
    r = w.cvault("tokens", "create", "--org", "dev", "--mask", "r", "--service")
    assert r.status == 0 and "no expiry" in r.err, r
