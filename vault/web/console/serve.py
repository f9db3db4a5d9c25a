"""Running the console on ``HOST:PORT`` until interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

__all__ = ["serve_console"]


async def serve_console(
    app: web.Application, host: str, port: int, *, started: Callable[[str], None], stop: asyncio.Event | None = None
) -> None:
    """Serve ``app``; ``started`` gets the console's URL once the socket is bound."""
    # aiohttp's own access log prints query strings; the request middleware logs paths only.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]  # the real port when asked for port 0
        shown = f"[{host}]" if ":" in host else host
        started(f"http://{shown}:{bound}/")
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
