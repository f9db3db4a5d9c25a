"""What the metrics middleware adds to one request, measured in-process (no network, no database).

Usage::

    PYTHONPATH=$PWD python bench/metrics_overhead.py [--requests 50000] [--rounds 5]

Runs a matched route of the store's shape (``/v1/orgs/{org}/vaults/{vault}/secrets/{name}``)
through cvault's request middleware alone (the baseline) and through it plus the
metrics middleware (:mod:`vault.web.metrics`), alternating, ``--rounds`` times;
prints the median time per request of each and the difference, which is the
metrics' cost per request. Compare it with the CPU per secret read that
``bench/secret_read.py`` prints (``CPU us/read``): the two services' share of a
read is that difference over that figure. Time is CPU time of this process
(``time.process_time``), so other load on the machine barely moves it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from vault.web.common import middlewares
from vault.web.metrics import Metrics

ROUTE = "/v1/orgs/{org}/vaults/{vault}/secrets/{name}"


async def _handler(request: web.Request) -> web.StreamResponse:
    return web.json_response({"value": "x"})


def _request(app: web.Application) -> web.Request:
    request = make_mocked_request("GET", "/v1/orgs/1/vaults/prod/secrets/db", app=app)
    match = asyncio.get_event_loop().run_until_complete(app.router.resolve(request))
    match.add_app(app)
    request._match_info = match  # the router's job in a real request
    return request


async def _chain(layers: list[Any], request: web.Request, n: int) -> float:
    async def call(req: web.Request) -> web.StreamResponse:
        handler: Any = _handler
        for layer in reversed(layers):
            handler = _bind(layer, handler)
        return await handler(req)  # type: ignore[no-any-return]

    started = time.process_time()
    for _ in range(n):
        await call(request)
    return (time.process_time() - started) / n * 1e6


def _bind(layer: Any, inner: Any) -> Any:
    async def bound(req: web.Request) -> web.StreamResponse:
        return await layer(req, inner)  # type: ignore[no-any-return]

    return bound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = web.Application()
    app.router.add_get(ROUTE, _handler)
    request = _request(app)
    base = middlewares()
    metrics = Metrics("store")
    with_metrics = [*base, metrics.middleware()]
    plain_us: list[float] = []
    metrics_us: list[float] = []
    for _ in range(args.rounds):
        plain_us.append(loop.run_until_complete(_chain(base, request, args.requests)))
        metrics_us.append(loop.run_until_complete(_chain(with_metrics, request, args.requests)))
    plain, measured = statistics.median(plain_us), statistics.median(metrics_us)
    print(f"per request, median of {args.rounds} rounds of {args.requests} (CPU time, in-process):")
    print(f"  request middleware only (baseline)   {plain:7.2f} us")
    print(f"  + metrics middleware                 {measured:7.2f} us")
    print(f"  metrics cost                         {measured - plain:7.2f} us per request ({measured / plain:.2f}x)")
    assert metrics.exposition().count(b'cvault_http_requests_total{method="GET"') == 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
