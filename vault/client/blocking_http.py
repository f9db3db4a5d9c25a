"""The client's transport over the standard library's ``http.client``, for one-shot commands.

Importing aiohttp costs a command-line run about as much as everything else it
does (bench/cli_start.py measures it), so the CLI's short commands send their few
requests with ``http.client`` instead: blocking, one keep-alive connection per
service, the same retry loop, caps and error mapping as :class:`~vault.client.http.HTTP`
(whose :meth:`_send` this replaces). It blocks the event loop while it waits, so
it suits a command that does one thing at a time, not a server or a long-running
watcher with other work to do.

Every wait is bounded: each socket operation by ``timeout``, and the whole
exchange by the same deadline (a server trickling bytes cannot stretch it).

Since nothing here ever suspends, a client on this transport needs no event
loop at all: :func:`run_blocking` runs its coroutines to completion directly,
and the CLI's one-shot commands never import asyncio (another fifth of their
start-up; bench/cli_start.py).
"""

from __future__ import annotations

import http.client
import json
import ssl  # http.client imports it anyway
import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from .http import HTTP, TransportError

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


class BlockingHTTP(HTTP):
    """:class:`HTTP` with a blocking ``http.client`` transport. Close it with :meth:`close`."""

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
        key = (scheme, netloc)
        if time.monotonic() - self._last_used.get(key, 0.0) > _REUSE_WITHIN:
            self._forget(scheme, netloc)
        connection = self._connections.get(key)
        if connection is None:
            if scheme == "https":
                context = self._ssl_context() or ssl.create_default_context()
                connection = http.client.HTTPSConnection(netloc, timeout=self._timeout, context=context)
            elif scheme == "http":
                connection = http.client.HTTPConnection(netloc, timeout=self._timeout)
            else:
                raise TransportError(f"cannot speak {scheme!r}", opened=False)
            self._connections[key] = connection
        return connection

    def _forget(self, scheme: str, netloc: str) -> None:
        connection = self._connections.pop((scheme, netloc), None)
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
        send_headers = dict(headers)
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        deadline = time.monotonic() + self._timeout
        connection = self._connection(parts.scheme, parts.netloc)
        if connection.sock is None:
            try:
                connection.connect()
            except ssl.SSLCertVerificationError:
                self._forget(parts.scheme, parts.netloc)
                raise TransportError("could not connect", opened=False, untrusted=True) from None
            except (OSError, http.client.HTTPException):
                self._forget(parts.scheme, parts.netloc)
                raise TransportError("could not connect", opened=False) from None
        try:
            connection.request(method, target, body=data, headers=send_headers)
            response = connection.getresponse()
            raw = self._read_response(response, deadline)
        except TimeoutError:
            self._forget(parts.scheme, parts.netloc)
            raise TransportError("timed out", opened=True) from None
        except (OSError, http.client.HTTPException):
            self._forget(parts.scheme, parts.netloc)
            raise TransportError("dropped the connection", opened=True) from None
        except BaseException:
            # A reply we refused to read (too large) leaves the connection mid-body.
            self._forget(parts.scheme, parts.netloc)
            raise
        if response.will_close:
            self._forget(parts.scheme, parts.netloc)
        else:
            self._last_used[(parts.scheme, parts.netloc)] = time.monotonic()
        return response.status, raw

    def _read_response(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > self._max_reply:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("the reply took longer than the timeout")
            # read(), not read1(): it marks the response done at its Content-Length, so the
            # connection can carry the next request.
            chunk = response.read(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_reply:
                raise self._too_large()
            chunks.append(chunk)
