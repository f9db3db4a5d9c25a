"""The client's blocking transport, for one-shot commands: HTTP/1.1 over a plain socket.

Importing aiohttp costs a command-line run about as much as everything else it
does (bench/cli_start.py measures it), and even the standard library's
``http.client`` brings the ``email`` package (its header parser, dozens of
regular expressions compiled at import) and ``ssl``: a fifth of a command's
start-up. So the CLI's short commands send their few requests with the small
HTTP/1.1 exchange below: blocking, one keep-alive connection per service, ``ssl``
imported only for an ``https`` URL, the same retry loop, caps and error mapping
as :class:`~vault.client.http.HTTP` (whose :meth:`_send` this replaces).

What it speaks is what the services answer: a status line, headers, and a body
delimited by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the
connection; ``1xx`` interim replies are skipped. Anything else is a dropped
connection (retried only where that is safe).

Every wait is bounded: each socket operation by ``timeout``, and the whole
exchange by the same deadline (a server trickling bytes cannot stretch it).

Since nothing here ever suspends, a client on this transport needs no event
loop at all: :func:`run_blocking` runs its coroutines to completion directly,
and the CLI's one-shot commands never import asyncio (another fifth of their
start-up).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Coroutine, Mapping
from io import BufferedReader
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from .http import HTTP, TransportError

if TYPE_CHECKING:
    import ssl

__all__ = ["BlockingHTTP", "run_blocking"]

T = TypeVar("T")

_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 100
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
    """The server closed the connection, or broke the protocol, before the reply was complete."""


class _Reply:
    """The head of a reply, and a reader for its body."""

    def __init__(self, status: int, headers: dict[str, str], will_close: bool) -> None:
        self.status = status
        self.headers = headers
        self.will_close = will_close


class _Connection:
    """One keep-alive connection to ``netloc``: opened on first use, closed on any doubt."""

    def __init__(self, scheme: str, netloc: str, timeout: float, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(f"//{netloc}")
        if parts.hostname is None:
            raise TransportError(f"no host in {netloc!r}", opened=False)
        self.host = parts.hostname
        self.port = parts.port or (443 if scheme == "https" else 80)
        self.netloc = netloc
        self.tls = scheme == "https"
        self.timeout = timeout
        self.context = context
        self.sock: socket.socket | None = None
        self.file: BufferedReader | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                import ssl

                context = self.context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.file = sock.makefile("rb")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.file = None

    def send(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> None:
        assert self.sock is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}", "Accept-Encoding: identity"]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        for name, value in headers.items():
            # Our own values (tokens, keys): a line break would be a header injection.
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))

    def _line(self) -> bytes:
        assert self.file is not None
        line = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise _Dropped("a line of the reply is too long")
        if not line:
            raise _Dropped("the connection closed")
        return line

    def head(self, method: str) -> _Reply:
        while True:
            status_line = self._line().decode("latin-1").rstrip("\r\n")
            version, _, rest = status_line.partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not (code.isascii() and code.isdigit()):
                raise _Dropped("not an HTTP reply")
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS + 1):
                line = self._line()
                if line in (b"\r\n", b"\n"):
                    break
                name, sep, value = line.decode("latin-1").partition(":")
                if not sep:
                    raise _Dropped("a malformed header line")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            else:
                raise _Dropped("too many headers")
            status = int(code)
            if 100 <= status < 200:
                continue  # an interim reply (100 Continue): the real one follows
            connection = headers.get("connection", "").lower()
            delimited = (
                method == "HEAD"
                or status in (204, 304)
                or "content-length" in headers
                or "chunked" in headers.get("transfer-encoding", "").lower()
            )
            # Without a delimited body, the body ends with the connection.
            will_close = not delimited or "close" in connection
            will_close = will_close or (version == "HTTP/1.0" and "keep-alive" not in connection)
            return _Reply(status, headers, will_close)

    def body(self, method: str, reply: _Reply, limit: int, deadline: float, too_large: Exception) -> bytes:
        assert self.file is not None
        if method == "HEAD" or reply.status in (204, 304):
            return b""
        if "chunked" in reply.headers.get("transfer-encoding", "").lower():
            return self._chunked(limit, deadline, too_large)
        length = reply.headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise _Dropped("a malformed Content-Length")
            if int(length) > limit:
                raise too_large
            return self._exactly(int(length), deadline)
        return self._until_closed(limit, deadline, too_large)

    def _exactly(self, size: int, deadline: float) -> bytes:
        assert self.file is not None
        chunks: list[bytes] = []
        while size > 0:
            _check(deadline)
            chunk = self.file.read(min(size, _CHUNK))
            if not chunk:
                raise _Dropped("the connection closed mid-body")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _chunked(self, limit: int, deadline: float, too_large: Exception) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            _check(deadline)
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Dropped("a malformed chunk size") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise too_large
            chunks.append(self._exactly(size, deadline))
            if self._line() not in (b"\r\n", b"\n"):
                raise _Dropped("a chunk without its line end")

    def _until_closed(self, limit: int, deadline: float, too_large: Exception) -> bytes:
        assert self.file is not None
        chunks: list[bytes] = []
        total = 0
        while True:
            _check(deadline)
            chunk = self.file.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > limit:
                raise too_large
            chunks.append(chunk)


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError("the reply took longer than the timeout")


class BlockingHTTP(HTTP):
    """:class:`HTTP` with a blocking transport of its own (above). Close it with :meth:`close`."""

    blocking = True

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("sleep", _sleep)  # a retry's back-off blocks like everything else here
        super().__init__(**kwargs)
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._last_used: dict[tuple[str, str], float] = {}

    async def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connection(self, scheme: str, netloc: str) -> _Connection:
        key = (scheme, netloc)
        if time.monotonic() - self._last_used.get(key, 0.0) > _REUSE_WITHIN:
            self._forget(scheme, netloc)
        connection = self._connections.get(key)
        if connection is None:
            if scheme not in ("http", "https"):
                raise TransportError(f"cannot speak {scheme!r}", opened=False)
            context = self._ssl_context() if scheme == "https" else None
            connection = _Connection(scheme, netloc, self._timeout, context)
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
            except OSError as exc:
                self._forget(parts.scheme, parts.netloc)
                untrusted = False
                if connection.tls:  # ssl is imported for https only
                    import ssl

                    untrusted = isinstance(exc, ssl.SSLCertVerificationError)
                raise TransportError("could not connect", opened=False, untrusted=untrusted) from None
        try:
            connection.send(method, target, send_headers, data)
            reply = connection.head(method)
            raw = connection.body(method, reply, self._max_reply, deadline, self._too_large())
        except TimeoutError:
            self._forget(parts.scheme, parts.netloc)
            raise TransportError("timed out", opened=True) from None
        except (OSError, _Dropped):
            self._forget(parts.scheme, parts.netloc)
            raise TransportError("dropped the connection", opened=True) from None
        except BaseException:
            # A reply we refused to read (too large) leaves the connection mid-body.
            self._forget(parts.scheme, parts.netloc)
            raise
        if reply.will_close:
            self._forget(parts.scheme, parts.netloc)
        else:
            self._last_used[(parts.scheme, parts.netloc)] = time.monotonic()
        return reply.status, raw
