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
import ipaddress
import logging
import signal
import weakref
from typing import Any

from aiohttp import web

from vault.config import Config
from vault.errors import ConfigError

from .connections import ConnectionLimits, GatedAppRunner, RateLimitedLog
from .metrics import METRICS_KEY, metrics_app
from .tls import ServerTLS, TLSFiles

__all__ = ["serve_app"]

log = logging.getLogger("cvault")
_accept_log = logging.getLogger("cvault.web.accept")


# The loops whose exception handler already routes accept failures (serve_app runs once per service).
_limited_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _install_accept_error_limiter(loop: asyncio.AbstractEventLoop, interval: float) -> None:
    """Route asyncio's "socket.accept() out of system resource" reports through one :class:`RateLimitedLog`."""
    if loop in _limited_loops:
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
    _limited_loops.add(loop)


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (where plain HTTP never leaves the machine)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Every TLS listener of the process, reloaded together on SIGHUP (`cvault dev --tls` has two).
_reloadable: set[ServerTLS] = set()


def _reload_all() -> None:
    for tls in list(_reloadable):
        tls.reload()


def _open_tls(config: Config, listen: str, url: str | None) -> ServerTLS | None:
    """The listener's TLS, or ``None`` for plain HTTP where that is allowed (it is then logged)."""
    files = TLSFiles.from_config(config)
    host, _ = _split(listen)
    if files is not None:
        if url is not None and url.startswith("http://"):
            raise ConfigError(f"this service serves TLS but its published URL is {url}; make it https://")
        return ServerTLS(files)
    if url is not None and url.startswith("https://") and not config.listen_insecure:
        raise ConfigError(
            f"the published URL is {url} but no certificate is set: set tls_cert_file and tls_key_file, "
            "or listen_insecure = true when a proxy in front terminates TLS"
        )
    if config.dev:
        return None
    if not config.listen_insecure and not is_loopback(host):
        raise ConfigError(
            f"refusing plain HTTP on {listen}: tokens and passwords would cross the network unencrypted. "
            "Set tls_cert_file and tls_key_file (CVAULT_TLS_CERT_FILE, CVAULT_TLS_KEY_FILE), or "
            "listen_insecure = true when a TLS-terminating proxy in front is the only way in"
        )
    log.warning(
        "serving plain HTTP on %s%s; set tls_cert_file and tls_key_file to serve TLS",
        listen,
        " (listen_insecure = true)" if config.listen_insecure else " (loopback only)",
    )
    return None


async def serve_app(
    app: web.Application,
    listen: str,
    stop: asyncio.Event,
    config: Config | None = None,
    *,
    name: str | None = None,
    url: str | None = None,
    reuse_port: bool = False,
) -> None:
    """Open ``app``'s resources, bind ``listen``, serve until ``stop`` is set, clean up.

    ``name`` (e.g. "authority") makes it log "<name> listening on ... as <url>" once bound;
    ``url`` is the service's published URL, whose scheme must match whether it serves TLS.
    ``reuse_port`` binds with ``SO_REUSEPORT`` so several processes share the port (``--workers``).
    Raises :class:`~vault.errors.ConfigError` when a TLS file is unusable, plain HTTP is
    not allowed, or the address cannot be bound.
    """
    config = config or Config(dev=True)
    loop = asyncio.get_running_loop()
    _install_accept_error_limiter(loop, config.accept_error_log_interval)
    host, port = _split(listen)
    tls = _open_tls(config, listen, url)
    # aiohttp's own access log prints the request line, query string included, and
    # query strings can carry tokens; cvault's request middleware logs paths only.
    limits = ConnectionLimits.from_config(config)
    runner = GatedAppRunner(app, limits, access_log=None)
    metrics_runner: GatedAppRunner | None = None
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls.context if tls else None, reuse_port=reuse_port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        metrics = app.get(METRICS_KEY)
        if metrics is not None and config.metrics_listen is not None:
            metrics_runner = GatedAppRunner(metrics_app(metrics), limits, access_log=None)
            await metrics_runner.setup()
            metrics_host, metrics_port = _split(config.metrics_listen)
            try:
                # With several workers each serves its own figures on the shared port.
                await web.TCPSite(
                    metrics_runner,
                    metrics_host,
                    metrics_port,
                    ssl_context=tls.context if tls else None,
                    reuse_port=reuse_port,
                ).start()
            except OSError as exc:
                raise ConfigError(f"cannot listen on {config.metrics_listen}: {exc.strerror or exc}") from None
            log.info("%s metrics on %s/metrics", name or "service", config.metrics_listen)
        if tls is not None:
            _reloadable.add(tls)
            loop.add_signal_handler(signal.SIGHUP, _reload_all)
        if name is not None:
            log.info("%s listening on %s as %s", name, listen, url or ("https" if tls else "http") + "://" + listen)
        await stop.wait()
    finally:
        if tls is not None:
            _reloadable.discard(tls)
            if not _reloadable:
                loop.remove_signal_handler(signal.SIGHUP)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
