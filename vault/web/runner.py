"""Serving an app on ``HOST:PORT`` until told to stop (``cvault serve``, ``cvault dev``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

__all__ = ["serve_app"]


async def serve_app(app: web.Application, listen: str, stop: asyncio.Event) -> None:
    """Start ``app`` (its ``cleanup_ctx`` opens the resources), serve until ``stop`` is set, clean up."""
    host, _, port = listen.rpartition(":")
    # aiohttp's own access log prints the request line, query string included, and
    # query strings can carry tokens; cvault's request middleware logs paths only.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host.strip("[]"), int(port)).start()
        await stop.wait()
    finally:
        await runner.cleanup()
