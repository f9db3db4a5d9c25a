"""Bounding what connections can hold: header-read and keep-alive timeouts, connection caps.

A connection that never sends a request would otherwise hold a descriptor for
aiohttp's default 3,630 s, and enough of them (from one client) starve every
other client of descriptors. So:

* a new connection must deliver its first request's headers within
  ``header_read_timeout`` seconds, and an idle one is closed after
  ``keepalive_timeout`` (aiohttp's keep-alive timer, which also runs from the
  moment a connection opens);
* at most ``max_connections`` are open per service and
  ``max_connections_per_client`` per peer address (trusted proxies, which carry
  many clients, count only against the service's cap). A connection beyond a
  cap is answered ``503`` and closed at once, so its descriptor is freed
  immediately instead of waiting in the accept queue.

Refusals are logged through :class:`RateLimitedLog`: a flood of them (or of
``accept`` failures, see :mod:`vault.web.runner`) is one line per interval with
a count, never one traceback per attempt.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vault.config import Config

from .app_runner import CvaultServer, VaultAppRunner
from .protocol import CvaultRequestHandler

__all__ = ["ConnectionGate", "ConnectionLimits", "GatedAppRunner", "RateLimitedLog"]

log = logging.getLogger("cvault.web.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    keepalive_timeout: float = 30.0
    header_read_timeout: float = 10.0
    max_connections: int = 768
    max_connections_per_client: int = 128
    log_interval: float = 10.0
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> ConnectionLimits:
        return cls(
            keepalive_timeout=config.keepalive_timeout,
            header_read_timeout=config.header_read_timeout,
            max_connections=config.max_connections,
            max_connections_per_client=config.max_connections_per_client,
            log_interval=config.accept_error_log_interval,
            trusted_proxies=config.trusted_proxies,
        )


class RateLimitedLog:
    """At most one line per ``interval`` seconds; the lines held back are counted in the next one."""

    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next = 0.0
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._held += 1
            return
        held, self._held = self._held, 0
        self._next = now + self._interval
        suffix = f" ({held} more like this in the last {self._interval:g} s)" if held else ""
        self._logger.warning(message + suffix, *args)


def _refusal(message: str) -> bytes:
    body = json.dumps({"error": {"code": "unavailable", "message": message}}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nRetry-After: 1\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


_TOO_MANY = _refusal("the service has too many open connections; try again shortly")
_TOO_MANY_FROM_YOU = _refusal("too many open connections from your address; reuse or close some")


class ConnectionGate:
    """Counts open connections per service and per peer address, and says which to refuse."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self._per_client: Counter[str] = Counter()
        self._proxies = tuple(ipaddress.ip_network(n, strict=False) for n in limits.trusted_proxies)
        self.refusals = RateLimitedLog(log, limits.log_interval)

    def _is_proxy(self, peer: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)

    def admit(self, peer: str) -> bytes | None:
        """``None`` if the connection from ``peer`` may open (it is then counted), else the reply to send."""
        if self.open >= self.limits.max_connections:
            self.refusals.warning("refused a connection: %d connections open (max_connections)", self.open)
            return _TOO_MANY
        if self._per_client[peer] >= self.limits.max_connections_per_client and not self._is_proxy(peer):
            self.refusals.warning(
                "refused a connection from %s: %d open from there (max_connections_per_client)",
                peer,
                self._per_client[peer],
            )
            return _TOO_MANY_FROM_YOU
        self.open += 1
        self._per_client[peer] += 1
        return None

    def release(self, peer: str) -> None:
        self.open -= 1
        self._per_client[peer] -= 1
        if self._per_client[peer] <= 0:
            del self._per_client[peer]


class GatedRequestHandler(CvaultRequestHandler):
    """aiohttp's connection handler (cvault's), admitted by a :class:`ConnectionGate`, with a header deadline."""

    def __init__(self, manager: web.Server, *, loop: Any, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, keepalive_timeout=gate.limits.keepalive_timeout, **kwargs)
        self.gate = gate
        self.peer: str | None = None
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        refusal = self.gate.admit(peer)
        super().connection_made(transport)
        if refusal is not None:
            transport.write(refusal)
            self.force_close()
            return
        self.peer = peer
        self.header_deadline = asyncio.get_running_loop().call_later(
            self.gate.limits.header_read_timeout, self.force_close
        )

    def request_arrived(self) -> None:
        """A request's headers were parsed (or refused by the parser): the header deadline is met."""
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.request_arrived()
        if self.peer is not None:
            self.gate.release(self.peer)
            self.peer = None
        super().connection_lost(exc)


class GatedServer(CvaultServer):
    """Makes a :class:`GatedRequestHandler` per connection, and tells it when a request of its arrives."""

    def __init__(self, handler: Any, *, gate: ConnectionGate, **options: Any) -> None:
        super().__init__(handler, handler_class=GatedRequestHandler, gate=gate, **options)

    def serve(self, built: web.Server) -> None:
        super().serve(built)
        make_request = self.request_factory

        def request_factory(
            message: Any, payload: Any, protocol: web.RequestHandler, writer: Any, task: Any
        ) -> web.BaseRequest:
            # aiohttp makes the request as soon as the parser hands it (or its refusal) over.
            if isinstance(protocol, GatedRequestHandler):
                protocol.request_arrived()
            return make_request(message, payload, protocol, writer, task)

        self.request_factory = request_factory


class GatedAppRunner(VaultAppRunner):
    """:class:`VaultAppRunner` whose connections obey :class:`ConnectionLimits`."""

    server_class = GatedServer

    def __init__(self, app: web.Application, limits: ConnectionLimits, **options: Any) -> None:
        self.gate = ConnectionGate(limits)
        super().__init__(app, gate=self.gate, **options)
