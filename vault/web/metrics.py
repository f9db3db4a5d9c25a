"""Prometheus metrics of one service, exposed with ``prometheus_client`` (its registry, its exposition).

Metrics are on when the operator says where to read them: ``metrics_listen``
(a separate address, e.g. ``127.0.0.1:9202``, reachable only from the
monitoring network) or ``metrics_token`` (``/metrics`` on the service's own
port, behind ``Authorization: Bearer <token>``). With neither, there is no
metrics middleware and no ``/metrics``: nothing is counted.

Each app has its own :class:`CollectorRegistry` (tests build many apps in one
process; prometheus_client's global registry would refuse the second).
Request metrics are labelled by the route *template* (``/v1/orgs/{org}/...``),
never the path: paths carry org ids and secret names, and unbounded label
values would grow the registry without limit. Values read from the services
(audit queue depth, pool use, data-key cache) are read at scrape time, so the
request path pays only for one counter and one histogram observation.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from vault.config import Config
from vault.errors import VaultError

from .common import Handler, rendered_status

__all__ = ["METRICS_KEY", "Metrics", "add_metrics", "metrics_app"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "LIST"})

# Discharge endpoints of the authority, by route template.
_DISCHARGERS = {"/login/.well-known/macfly/3p": "login", "/org/.well-known/macfly/3p": "org"}


class _Sources(Collector):
    """Values read from the running services at scrape time (see the module docs)."""

    def __init__(self) -> None:
        self.audit_logs: list[Any] = []
        self.pools: list[Any] = []
        self.data_key_caches: list[Any] = []

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("cvault_audit_queue_depth", "Audit events waiting for the group commit.")
        depth.add_metric([], sum(log.queue_depth for log in self.audit_logs))
        yield depth
        failures = CounterMetricFamily(
            "cvault_audit_failed_batches", "Audit batches that could not be committed (their requests failed)."
        )
        failures.add_metric([], sum(log.stats.failed_batches for log in self.audit_logs))
        yield failures
        in_use = GaugeMetricFamily("cvault_db_pool_connections_in_use", "Database connections checked out.")
        size = GaugeMetricFamily("cvault_db_pool_connections", "Database connections open in the pool.")
        in_use.add_metric([], sum(p.get_size() - p.get_idle_size() for p in self.pools))
        size.add_metric([], sum(p.get_size() for p in self.pools))
        yield in_use
        yield size
        lookups = CounterMetricFamily(
            "cvault_data_key_cache_lookups", "Data-key cache lookups by result.", labels=["result"]
        )
        lookups.add_metric(["hit"], sum(c.hits for c in self.data_key_caches))
        lookups.add_metric(["miss"], sum(c.misses for c in self.data_key_caches))
        yield lookups


class Metrics:
    """The metrics of one service (``authority`` or ``store``)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cvault_http_requests",
            "HTTP requests by route template and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "cvault_http_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_batch_size = Histogram(
            "cvault_audit_batch_size", "Audit events per group commit.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.audit_commit_seconds = Histogram(
            "cvault_audit_commit_seconds", "Time to commit one audit batch.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.discharges = Counter(
            "cvault_discharges",
            "Discharges issued and refused, by discharger and refusal code.",
            ["discharger", "outcome", "reason"],
            registry=r,
        )
        # Seconds since the store's revocation-feed follower last heard from the feed
        # (docs/revocation.md); NaN when the store does not follow a feed or has not yet heard.
        self.revocation_feed_lag = Gauge(
            "cvault_revocation_feed_lag_seconds",
            "How far the revocations this node knows trail the authority's feed.",
            registry=r,
        )
        self.revocation_feed_lag.set(float("nan"))
        # Managed rotation (docs/rotation.md): each step a rotator reports, and whether it failed at the target.
        self.rotation_steps = Counter(
            "cvault_rotation_steps",
            "Rotation steps rotators reported, by step and outcome (ok or error).",
            ["step", "outcome"],
            registry=r,
        )
        self.sources = _Sources()
        r.register(self.sources)

    def watch(self, *, audit: Any = None, pool: Any = None, data_keys: Any = None, revocation_feed: Any = None) -> None:
        """Read these services' figures at scrape time; ``audit`` also reports each batch."""
        if revocation_feed is not None:

            def lag() -> float:
                # Seconds since the feed last answered (its ``synced_at`` is monotonic time).
                synced = revocation_feed.synced_at
                return float("nan") if synced is None else time.monotonic() - float(synced)

            self.revocation_feed_lag.set_function(lag)
        if audit is not None:
            self.sources.audit_logs.append(audit)
            audit.observer = self.observe_audit_batch
        if pool is not None:
            self.sources.pools.append(pool)
        if data_keys is not None:
            self.sources.data_key_caches.append(data_keys)

    def observe_audit_batch(self, events: int, seconds: float) -> None:
        self.audit_batch_size.observe(events)
        self.audit_commit_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Any:
        requests, latency, discharges = self.requests, self.latency, self.discharges
        # Labelled children by label values: prometheus_client's labels() takes a lock and
        # builds a key on every call; routes, methods and statuses are few.
        counted: dict[tuple[str, str, int], Any] = {}
        timed: dict[tuple[str, str], Any] = {}

        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status, reason = 500, "internal"
            try:
                response = await handler(request)
                status, reason = response.status, ""
                return response
            except VaultError as exc:
                # What the client and the access log see, not the exception's own status.
                status, reason = rendered_status(request, exc), exc.code
                raise
            except web.HTTPException as exc:
                status, reason = (rendered_status(request, exc) if exc.status >= 400 else exc.status), "http_error"
                raise
            except asyncio.CancelledError:
                status, reason = 499, "cancelled"  # as the access log says: nothing was sent
                raise
            finally:
                elapsed = time.perf_counter() - started
                resource = request.match_info.route.resource
                template = resource.canonical if resource is not None else "unmatched"
                # Label values stay bounded: any method token reaches an unmatched route.
                method = request.method if request.method in _METHODS else "other"
                key = (template, method, status)
                child = counted.get(key)
                if child is None:
                    child = counted[key] = requests.labels(template, method, str(status))
                child.inc()
                timer = timed.get(key[:2])
                if timer is None:
                    timer = timed[key[:2]] = latency.labels(template, method)
                timer.observe(elapsed)
                discharger = _DISCHARGERS.get(template)
                if discharger is not None:
                    if status < 400:
                        discharges.labels(discharger, "issued", "").inc()
                    else:
                        discharges.labels(discharger, "refused", reason).inc()

        return metrics_middleware


METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def _exposition_response(metrics: Metrics) -> web.Response:
    response = web.Response(body=metrics.exposition())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def add_metrics(app: web.Application, config: Config, service: str) -> Metrics | None:
    """Turn metrics on for ``app`` when ``config`` says where to read them (see the module docs)."""
    if config.metrics_listen is None and config.metrics_token is None:
        return None
    metrics = Metrics(service)
    app[METRICS_KEY] = metrics
    app.middlewares.append(metrics.middleware())
    token = config.metrics_token
    if token is not None:
        expected = f"Bearer {token}".encode()

        async def scrape(request: web.Request) -> web.Response:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise web.HTTPUnauthorized(reason="metrics need Authorization: Bearer <metrics_token>")
            return _exposition_response(metrics)

        app.router.add_get("/metrics", scrape)
    return metrics


def metrics_app(metrics: Metrics) -> web.Application:
    """The app served on ``metrics_listen``: ``/metrics`` only."""

    async def scrape(request: web.Request) -> web.Response:
        return _exposition_response(metrics)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app
