"""The store app's plumbing: health, readiness, OpenAPI covering every route, configuration guard."""

from __future__ import annotations

import re

import pytest

from tests.support.harness import Harness
from vault.config import load_config
from vault.errors import ConfigError
from vault.web.common import UNADVERTISED_METHODS
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
        path = re.sub(r"\{(\w+):(?:[^{}]|\{[^{}]*\})+\}", r"{\1}", path)
        if route.method in UNADVERTISED_METHODS:  # Vault's LIST, beside the GET it aliases (docs/vault-compat.md)
            assert (path, "get") in documented, path
            continue
        assert (path, route.method.lower()) in documented, (path, route.method)
    # And the other way round: every documented operation is served.
    served = {(route.resource.canonical, route.method.lower()) for route in app.router.routes() if route.resource}
    assert documented <= served, documented - served


def test_store_refuses_to_start_without_the_authority_key() -> None:
    with pytest.raises(ConfigError, match="CVAULT_AUTHORITY_ORG_PUBLIC_KEY"):
        create_store_app(load_config({}))


async def test_unknown_org_is_404_and_bad_names_are_400(harness: Harness) -> None:
    r = await harness.store("GET", "/v1/orgs/12345/vaults", "cv1_garbage")
    assert r.status == 404
    r = await harness.store("GET", "/v1/orgs/not-a-number/vaults")
    assert r.status == 404
