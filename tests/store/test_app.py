"""The store app's plumbing: health, readiness, OpenAPI covering every route, configuration guard."""

from __future__ import annotations

import re

import pytest

from tests.support.harness import Harness
from vault.config import load_config
from vault.errors import ConfigError
from vault.web.store import create_store_app


async def test_health_ready_and_openapi(harness: Harness) -> None:
    h = harness
    assert (await h.store("GET", "/healthz")).body == {"status": "ok"}
    assert (await h.store("GET", "/readyz")).body == {"status": "ready"}
    spec = (await h.store("GET", "/openapi.json")).body
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    app = create_store_app(h.store_config)
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        path = re.sub(r"\{name:[^}]+\}", "{name}", path)
        if route.method == "HEAD" or path == "/vault/{tail}":
            continue
        if route.method == "*":  # the Vault API's routes dispatch on the method themselves (LIST too)
            assert path in spec["paths"], path
            continue
        assert (path, route.method.lower()) in documented, (path, route.method)


def test_store_refuses_to_start_without_the_authority_key() -> None:
    with pytest.raises(ConfigError, match="CVAULT_AUTHORITY_ORG_PUBLIC_KEY"):
        create_store_app(load_config({}))


async def test_unknown_org_is_404_and_bad_names_are_400(harness: Harness) -> None:
    r = await harness.store("GET", "/v1/orgs/12345/vaults", "cv1_garbage")
    assert r.status == 404
    r = await harness.store("GET", "/v1/orgs/not-a-number/vaults")
    assert r.status == 404
