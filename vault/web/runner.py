"""Serving an app on ``HOST:PORT`` until told to stop (``cvault serve``, ``cvault dev``).

Order matters to an operator reading the log: the app's resources (pool, keys)
are opened first, then the port is bound, and only then is "listening" logged;
a start that fails at either step never claims to listen. Connections are
bounded by :mod:`vault.web.connections`. When the process runs out of
descriptors, asyncio's ``accept`` loop reports every failed attempt with a
traceback; here such reports become one line per ``accept_error_log_interval``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

from aiohttp import web

from vault.config import Config
from vault.errors import ConfigError

from .connections import ConnectionLimits, GatedAppRunner, RateLimitedLog

__all__ = ["serve_app"]

log = logging.getLogger("cvault")
_accept_log = logging.getLogger("cvault.web.accept")


def _install_accept_error_limiter(loop: asyncio.AbstractEventLoop, interval: float) -> None:
    """Route asyncio's "socket.accept() out of system resource" reports through one :class:`RateLimitedLog`."""
    if getattr(loop, "_cvault_accept_limiter", False):
        return
    previous = loop.get_exception_handler()
    limited = RateLimitedLog(_accept_log, interval)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            reason = errno.errorcode.get(getattr(exc, "errno", 0) or 0, type(exc).__name__)
            limited.warning("cannot accept connections: %s (too many open files? raise ulimit -n)", reason)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    loop._cvault_accept_limiter = True  # type: ignore[attr-defined]


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


async def serve_app(
    app: web.Application,
    listen: str,
    stop: asyncio.Event,
    config: Config | None = None,
    *,
    name: str | None = None,
) -> None:
    """Open ``app``'s resources, bind ``listen``, serve until ``stop`` is set, clean up.

    ``name`` (e.g. "authority") makes it log "<name> listening on ..." once bound.
    Raises :class:`~vault.errors.ConfigError` when the address cannot be bound.
    """
    config = config or Config()
    _install_accept_error_limiter(asyncio.get_running_loop(), config.accept_error_log_interval)
    host, port = _split(listen)
    # aiohttp's own access log prints the request line, query string included, and
    # query strings can carry tokens; cvault's request middleware logs paths only.
    runner = GatedAppRunner(app, ConnectionLimits.from_config(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        if name is not None:
            log.info("%s listening on %s", name, listen)
        await stop.wait()
    finally:
        await runner.cleanup()
