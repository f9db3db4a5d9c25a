"""The client's blocking transport, for one-shot commands: the standard library's ``http.client``.

Importing aiohttp costs a command-line run about as much as everything else it
does (bench/cli_start.py measures it), so the CLI's short commands send their few
requests with ``http.client`` instead (imported on the first request, with the
``email`` header parser and ``ssl`` it brings): blocking, one keep-alive
connection per service, the same retry loop, caps and error mapping as
:class:`~vault.client.http.HTTP` (whose :meth:`_send` this replaces). The
protocol is ``http.client``'s: status line, headers (100 Continue skipped, at most
100 lines of 64 KiB), a body delimited by ``Content-Length``, chunked encoding or
the end of the connection. A reply it cannot parse, or whose headers its parser
flags as defective, is a dropped connection (retried only where that is safe).

Every wait is bounded: each socket operation by ``timeout``, and reading the
body by the same deadline (a server trickling bytes cannot stretch it).

Since nothing here ever suspends, a client on this transport needs no event
loop at all: :func:`run_blocking` runs its coroutines to completion directly,
and the CLI's one-shot commands never import asyncio (a fifth of their
start-up).
"""

from __future__ import annotations

import json
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from .http import HTTP, TransportError

if TYPE_CHECKING:
    import http.client

__all__ = ["BlockingHTTP", "run_blocking"]

T = TypeVar("T")

_CHUNK = 64 * 1024
_REUSE_WITHIN = 2.0
"""Seconds an idle connection is reused; older ones may have been closed by the server's keep-alive timeout,
and a request sent on such a connection cannot tell "never received" from "dropped mid-request"."""


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a call of a client on :class:`BlockingHTTP` to its end, without an event loop.

    Such a call never suspends (its transport blocks instead, and its discharge cache
    fetches in line), so one ``send`` runs it through; one that does suspend awaited
    something that needs a loop, and is refused rather than left hanging.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coro.close()
    raise RuntimeError("a blocking client call waited on an event loop; use asyncio.run for it")


async def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class _Dropped(Exception):
    """The reply was cut short or could not be read: as if the connection had dropped."""


def _check_headers(headers: Mapping[str, str]) -> None:
    # Our own values (tokens, keys): a line break would be a header injection. http.client refuses
    # them too, but its message quotes the value, and that may be a token.
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"invalid header {name!r}")


class BlockingHTTP(HTTP):
    """:class:`HTTP` on ``http.client`` (above). Close it with :meth:`close`."""

    blocking = True

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("sleep", _sleep)  # a retry's back-off blocks like everything else here
        super().__init__(**kwargs)
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._last_used: dict[tuple[str, str], float] = {}

    async def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        """The service's open connection if it was used within ``_REUSE_WITHIN``, else a new, connected one."""
        key = (scheme, netloc)
        if time.monotonic() - self._last_used.get(key, 0.0) > _REUSE_WITHIN:
            self._forget(key)
        connection = self._connections.get(key)
        if connection is not None and connection.sock is not None:
            return connection
        if scheme not in ("http", "https"):
            raise TransportError(f"cannot speak {scheme!r}", opened=False)
        import http.client

        connection = (
            http.client.HTTPSConnection(netloc, timeout=self._timeout, context=self._ssl_context())
            if scheme == "https"
            else http.client.HTTPConnection(netloc, timeout=self._timeout)
        )
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            untrusted = False
            if scheme == "https":  # ssl is imported for https only
                import ssl

                untrusted = isinstance(exc, ssl.SSLCertVerificationError)
            raise TransportError("could not connect", opened=False, untrusted=untrusted) from None
        self._connections[key] = connection
        return connection

    def _forget(self, key: tuple[str, str]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: Any, params: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        parts = urlsplit(url)
        target = parts.path or "/"
        query = "&".join(q for q in (parts.query, urlencode(dict(params)) if params else "") if q)
        if query:
            target += "?" + query
        data = None
        send_headers = {**headers, "Accept-Encoding": "identity"}
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        _check_headers(send_headers)
        key = (parts.scheme, parts.netloc)
        deadline = time.monotonic() + self._timeout
        connection = self._connection(*key)
        import http.client

        try:
            connection.request(method, target, body=data, headers=send_headers)
            response = connection.getresponse()
            if response.msg.defects:
                raise _Dropped("malformed headers")
            raw = self._body(response, deadline)
        except TimeoutError:
            self._forget(key)
            raise TransportError("timed out", opened=True) from None
        except (OSError, http.client.HTTPException, _Dropped):
            self._forget(key)
            raise TransportError("dropped the connection", opened=True) from None
        except BaseException:
            # A reply we refused to read (too large) leaves the connection mid-body.
            self._forget(key)
            raise
        if response.will_close:
            self._forget(key)
        else:
            self._last_used[key] = time.monotonic()
        return response.status, raw

    def _body(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The whole body, at most ``max_reply_bytes`` of it, read by ``deadline``."""
        header = response.getheader("Content-Length", "").strip()
        chunked = response.getheader("Transfer-Encoding", "").lower() == "chunked"  # as http.client decides
        length = int(header) if header.isdigit() and not chunked else None
        if length is not None and length > self._max_reply:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > self._max_reply:
                raise self._too_large()
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError
        if length is not None and size != length:
            raise _Dropped("the connection closed mid-body")  # read(amt) returns what came, without complaint
        return b"".join(chunks)
