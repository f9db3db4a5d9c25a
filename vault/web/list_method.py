"""Serving the HTTP method ``LIST`` (Vault's listing verb) while keeping aiohttp's fast parser.

aiohttp parses requests with llhttp, which knows a fixed set of methods and
answers ``400 Invalid method encountered`` to ``LIST``; its pure-Python parser
accepts any method token but is several times slower. Every connection starts on
llhttp. When llhttp refuses a ``LIST`` that starts exactly where the chunk it
was fed starts, the chunk is replayed into a fresh pure-Python parser, which then
parses the rest of that connection; every other connection, and every
connection until its first ``LIST``, keeps the fast parser.

Replaying is exact only if llhttp stood at a message boundary when the chunk
arrived (nothing half-parsed in it to lose or re-read), so the switch happens
only when all of these hold, and otherwise the ``400`` stands:

* the chunk starts with ``LIST `` and llhttp's error points at its third byte,
  on the chunk's first line, which appears nowhere else in the chunk (so the
  refused method is this one, not a later pipelined one);
* the connection never had more than one request parsed and not yet handled,
  so llhttp never paused with unparsed bytes of its own;
* the bytes fed before did not end in ``UN`` (the one method prefix, of
  ``UNLINK``, that would let ``LI`` continue a method started earlier).

``VaultAppRunner`` (used by ``cvault serve``) and any runner built on
:class:`ListMethodServer` get this; ``GET ...?list=true`` works everywhere.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import MAX_MSG_QUEUE_SIZE, RequestPayloadError

from .protocol import SERVER_LIMITS, CvaultRequestHandler

__all__ = ["ListMethodRequestHandler", "ListMethodServer", "VaultAppRunner"]

METHOD = b"LIST "


class _FallbackParser:
    """llhttp until the first ``LIST`` it refuses at a message boundary, aiohttp's Python parser after."""

    def __init__(self, fast: Any, protocol: web.RequestHandler, options: dict[str, Any]) -> None:
        self._parser = fast
        self._protocol = protocol
        self._options = options
        self._switched = False
        self._in_flight = 0
        self._pipelined = False
        # The last two bytes fed (they matter only when a LIST is refused). Only two: a
        # chunk kept whole would keep the request's headers, tokens included, in memory.
        self._last2 = b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def message_consumed(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._parser.message_consumed()

    def feed_data(self, data: bytes) -> tuple[list[Any], bool, bytes]:
        if self._switched:
            return self._parser.feed_data(data)  # type: ignore[no-any-return]
        try:
            result = self._parser.feed_data(data)
        except BadHttpMethod as exc:
            if not self._replayable(bytes(data), exc):
                raise
            self._parser = HttpRequestParserPy(self._protocol, **self._options)
            self._switched = True
            return self._parser.feed_data(data)  # type: ignore[no-any-return]
        messages = result[0]
        if messages:
            self._in_flight += len(messages)
            if self._in_flight > 1:
                self._pipelined = True
        if len(data) >= 2:
            self._last2 = bytes(data[-2:])
        elif data:
            self._last2 = self._last2[-1:] + bytes(data)
        return result  # type: ignore[no-any-return]

    def _replayable(self, data: bytes, exc: HttpProcessingError) -> bool:
        if not data.startswith(METHOD) or self._pipelined or self._last2 == b"UN":
            return False
        first_line = data.split(b"\r\n", 1)[0]
        if b"\r\n" + first_line in data:
            return False
        # llhttp's message names the refused line and points under the refused byte;
        # after "LI" is the third byte (repr adds two characters before it).
        return exc.message.endswith(f"\n\n  {first_line!r}\n  {' ' * 4}^")


class ListMethodRequestHandler(CvaultRequestHandler):
    """aiohttp's connection handler, with a parser that lets ``LIST`` through (see the module docs)."""

    def __init__(self, manager: web.Server, *, loop: Any, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        options = {
            "loop": loop,
            "limit": self._read_bufsize,
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_field_size,
            "max_headers": self.max_headers,
            "payload_exception": RequestPayloadError,
            "auto_decompress": kwargs.get("auto_decompress", True),
            "max_msg_queue_size": MAX_MSG_QUEUE_SIZE,
        }
        self._parser = _FallbackParser(self._parser, self, options)  # type: ignore[assignment]


class ListMethodServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ListMethodRequestHandler(self, loop=self._loop, **self._kwargs)


class VaultAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections accept the ``LIST`` method and answer parser errors as cvault does.

    Header limits are cvault's (:data:`vault.web.protocol.SERVER_LIMITS`) unless the caller sets them.
    """

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **{**SERVER_LIMITS, **kwargs})

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its Server itself (with its private request factory);
        # only how a connection's handler is made changes, and Server has no slots.
        server.__class__ = ListMethodServer
        return server
