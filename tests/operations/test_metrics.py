"""Metrics: ``/metrics`` of both services, scraped and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
from typing import Any

import aiohttp
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import Harness, running_services
from vault.config import load_config
from vault.web.authority import create_authority_app
from vault.web.runner import serve_app

TOKEN = "metrics-token-for-the-tests-0123"


def _parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], via prometheus_client's parser."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


async def _scrape(h: Harness, base: str, auth: str | None = f"Bearer {TOKEN}") -> tuple[int, str, str]:
    headers = {"Authorization": auth} if auth else {}
    async with h.http.get(base + "/metrics", headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_both_services_count_requests_audit_discharges_pool_and_cache(database_url: str) -> None:
    async with running_services(database_url, metrics_token=TOKEN) as h:
        _owner, org, _auth, _root, bundle = await h.enrolled_vault("metrics@example.com", "metrics")
        path = f"/v1/orgs/{org}/vaults/prod/secrets/db/url"
        assert (await h.store("PUT", path, bundle, {"value": "metrics-secret-value"})).status == 200
        for _ in range(3):
            assert (await h.store("GET", path, bundle)).status == 200
        assert (await h.store("GET", f"/v1/orgs/{org}/vaults/prod/secrets/missing", bundle)).status == 404
        # A refused org discharge (no credentials).
        refused = await h.authority("POST", "/org/.well-known/macfly/3p", None, {"ticket": "AAAA"})
        assert refused.status in (400, 401)

        status, content_type, text = await _scrape(h, h.store_url)
        assert status == 200 and content_type.startswith("text/plain"), text
        store = _parse(text)
        status, _, text = await _scrape(h, h.authority_url)
        assert status == 200
        authority = _parse(text)

    read_route = next(
        labels["route"]
        for labels, _ in store["cvault_http_requests_total"]
        if labels["method"] == "GET" and "/secrets/" in labels["route"]
    )
    # Route templates, never paths: no org id, no secret name in a label.
    assert "{" in read_route and "db/url" not in read_route and str(org) not in read_route
    assert _value(store, "cvault_http_requests_total", route=read_route, method="GET", status="200") == 3
    assert _value(store, "cvault_http_requests_total", route=read_route, method="GET", status="404") == 1
    assert _value(store, "cvault_http_request_duration_seconds_count", route=read_route, method="GET") == 4
    assert _value(store, "cvault_http_request_duration_seconds_bucket", route=read_route, method="PUT", le="+Inf") == 1
    # Audit: the three reads and the 404's error event were committed in batches (the write's event
    # commits in the write's own transaction, not through the group commit: docs/audit.md).
    assert _value(store, "cvault_audit_batch_size_count") >= 1
    assert _value(store, "cvault_audit_batch_size_sum") >= 4
    assert _value(store, "cvault_audit_commit_seconds_count") == _value(store, "cvault_audit_batch_size_count")
    assert "cvault_audit_queue_depth" in store
    assert _value(store, "cvault_audit_failed_batches_total") == 0
    # Data keys: the first read unwraps, the next two hit the cache.
    assert _value(store, "cvault_data_key_cache_lookups_total", result="hit") >= 2
    assert _value(store, "cvault_data_key_cache_lookups_total", result="miss") >= 1
    assert _value(store, "cvault_db_pool_connections") >= 1
    assert "cvault_db_pool_connections_in_use" in store
    # The store follows the authority's revocation feed (the harness gives it a feed token).
    lag = _value(store, "cvault_revocation_feed_lag_seconds")
    assert not math.isnan(lag) and 0 <= lag < 60

    # The authority: discharges issued (login and org) and refused, by code.
    assert _value(authority, "cvault_discharges_total", discharger="login", outcome="issued") >= 1
    assert _value(authority, "cvault_discharges_total", discharger="org", outcome="issued") >= 2
    refusals = [labels for labels, v in authority["cvault_discharges_total"] if labels["outcome"] == "refused" and v]
    assert refusals and refusals[0]["discharger"] == "org" and refusals[0]["reason"] == refused.code
    assert _value(authority, "cvault_audit_batch_size_count") >= 1


async def test_metrics_need_the_token(database_url: str) -> None:
    async with running_services(database_url, metrics_token=TOKEN) as h:
        for auth in (None, "Bearer wrong-token-wrong-token", f"Bearer {TOKEN}x"):
            status, _, text = await _scrape(h, h.store_url, auth)
            assert status == 401
            assert "cvault_http_requests" not in text


async def test_metrics_are_off_unless_configured(database_url: str) -> None:
    async with running_services(database_url) as h:
        status, _, _ = await _scrape(h, h.store_url)
        assert status == 404
        status, _, _ = await _scrape(h, h.authority_url)
        assert status == 404


async def test_metrics_listen_serves_them_on_a_separate_address_only(database_url: str) -> None:
    port, metrics_port = unused_port(), unused_port()
    config = load_config(
        {},
        database_url=database_url,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        metrics_listen=f"127.0.0.1:{metrics_port}",
        database_pool_size=2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(create_authority_app(config), f"127.0.0.1:{port}", stop, config))
    try:
        async with aiohttp.ClientSession() as http:
            text: Any = None
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                        text = await resp.text()
                        break
                await asyncio.sleep(0.05)
            assert text is not None
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 404
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                samples = _parse(await resp.text())
        assert _value(samples, "cvault_http_requests_total", route="/healthz", status="200") == 1
    finally:
        stop.set()
        await task


async def test_label_values_stay_bounded_whatever_the_client_sends(database_url: str) -> None:
    async with running_services(database_url, metrics_token=TOKEN) as h:
        async with h.http.get(f"{h.store_url}/no/such/path") as resp:
            assert resp.status == 404
        async with h.http.request("PATCH", f"{h.store_url}/healthz") as resp:
            assert resp.status == 405
        for i in range(20):
            async with h.http.request(f"X{i}", f"{h.store_url}/no/such/path/{i}") as resp:
                assert resp.status in (400, 404, 405)
        _, _, text = await _scrape(h, h.store_url)
    samples = _parse(text)["cvault_http_requests_total"]
    assert {labels["method"] for labels, _ in samples} <= {"GET", "PATCH", "other"}
    assert {labels["route"] for labels, _ in samples} == {"unmatched"}
    assert all("/no/such" not in labels["route"] for labels, _ in samples)


async def test_a_vault_api_refusal_is_counted_with_the_status_the_client_saw(database_url: str) -> None:
    async with running_services(database_url, metrics_token=TOKEN) as h:
        _owner, _org, _auth, _root, _bundle = await h.enrolled_vault("vaultapi@example.com", "vaultapi")
        seen = [(await h.store("GET", "/vault/v1/vaultapi/prod/data/k", token)).status for token in ("cv1_x", None)]
        _, _, text = await _scrape(h, h.store_url)
    assert seen == [403, 403]
    counted = {
        labels["status"]: v
        for labels, v in _parse(text)["cvault_http_requests_total"]
        if labels["route"].startswith("/vault/") and v
    }
    assert counted == {"403": 2}, counted  # not "401", which is what the guard raised
