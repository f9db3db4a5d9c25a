"""A trivial app served by the real runner (``vault.web.runner.serve_app``) on a free port, for runner tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import unused_port

from vault.config import Config
from vault.web.runner import serve_app

__all__ = ["serving"]


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@contextlib.asynccontextmanager
async def serving(config: Config, *, url: str | None = None) -> AsyncIterator[int]:
    """Serve ``GET /healthz`` with ``config`` until the block ends; yields the port once it accepts."""
    app = web.Application()
    app.router.add_get("/healthz", _ok)
    port = unused_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, f"127.0.0.1:{port}", stop, config, url=url and url.format(port=port)))
    for _ in range(250):
        if task.done():
            task.result()
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        stop.set()
        await task
