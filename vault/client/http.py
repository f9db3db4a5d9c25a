"""The client's HTTP transport: timeouts, bounded retries with full jitter, capped replies.

Retries happen only where repeating cannot do harm: a ``503 unavailable`` (the
services promise nothing was changed), a connection that never opened, and, for
requests that are idempotent (GET, or a write sent with an ``Idempotency-Key``,
which the store answers with the first outcome), a ``503 outcome_unknown`` (lost
during COMMIT: it may have been applied), a timeout or a connection dropped
mid-request. A write without a key is never retried after it may have reached
the database. Never on another 4xx or 5xx: those are answers, not accidents. Error replies
become :mod:`vault.errors` exceptions with the server's code and message
(:mod:`vault.client.errors`).

A request that changes something (any method but GET and HEAD, unless its caller
declares it idempotent without a key, as discharge requests are) whose outcome one
attempt left unknown (``503 outcome_unknown``, a timeout, a connection dropped
mid-request) ends in :class:`~vault.errors.OutcomeUnknown` carrying its
``Idempotency-Key`` unless a later attempt settled it with a reply: the error of a
later attempt that failed before reaching the database (``503 unavailable``, a
connection refused) speaks for that attempt only, and raising it would tell the
caller "nothing was changed" about a change that may be stored.

:class:`HTTP` sends with aiohttp (imported on first use); :class:`BlockingHTTP`
(:mod:`vault.client.blocking_http`) sends the same requests over a plain socket,
for one-shot commands that should not pay aiohttp's (or ``http.client``'s)
import. Both share the retry loop and reply handling here; a transport only
implements :meth:`HTTP._send`. Nothing here imports asyncio: a blocking transport's
calls are driven without an event loop (:func:`vault.client.blocking_http.run_blocking`),
so a one-shot command does not pay for it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vault.errors import BadReply, ConfigError, ConnectionFailed, OutcomeUnknown, Unavailable, VaultError

from .errors import error_from_reply

if TYPE_CHECKING:
    import ssl

    import aiohttp

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "HTTP", "RetryPolicy", "TransportError"]

DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
"""A batch read of many 64 KiB secrets fits; a misbehaving server cannot exhaust memory."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (first try included); waits are full jitter: uniform in ``[0, min(cap, base * 2**n)]``."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 2.0

    def delay(self, retry: int, uniform: Callable[[], float]) -> float:
        return float(uniform() * min(self.cap, self.base * 2.0**retry))


def _service(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _outcome_unknown(why: str, last: VaultError | None, idempotency_key: str | None) -> OutcomeUnknown:
    """The error of a change whose outcome an attempt left unknown and no later attempt settled.

    ``last``: the error of a later attempt (``None`` when the last attempt is the one in doubt).
    """
    if idempotency_key is not None:
        retry = f"retry with the same Idempotency-Key ({idempotency_key}): the store answers with the first outcome"
    else:
        retry = "it was sent without an Idempotency-Key, so check before sending it again"
    later = "" if last is None else f"; no later attempt settled it (the last: {last.message})"
    return OutcomeUnknown(
        f"the change may have been applied: an attempt's answer was lost ({why}){later}; {retry}",
        idempotency_key=idempotency_key,
    )


class TransportError(Exception):
    """A request that got no answer: ``opened`` says whether the connection was ever made.

    ``untrusted``: the server's TLS certificate was refused (not retried: it would be again).
    """

    def __init__(self, what: str, *, opened: bool, untrusted: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.opened = opened
        self.untrusted = untrusted


def ssl_context(ca_cert: str | None) -> ssl.SSLContext | None:
    """How the client verifies servers: ``ca_cert`` (a PEM file), else ``$CVAULT_CACERT``, else the system store.

    Read as Vault's clients read ``VAULT_CACERT``; certificates and host names are always
    verified. ``$CVAULT_CLIENT_CERT`` and ``$CVAULT_CLIENT_KEY`` (PEM files) are presented to
    services that require mutual TLS. ``None``: the transport's default (the system store).
    """
    path = ca_cert or os.environ.get("CVAULT_CACERT", "").strip() or None
    client_cert = os.environ.get("CVAULT_CLIENT_CERT", "").strip() or None
    client_key = os.environ.get("CVAULT_CLIENT_KEY", "").strip() or None
    if path is None and client_cert is None:
        return None
    import ssl  # only when TLS settings are given: a plain CLI run does not pay for it

    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError):
        raise ConfigError(f"CVAULT_CACERT / --ca-cert: cannot read a PEM certificate from {path}") from None
    if client_cert is not None:
        try:
            context.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError):
            raise ConfigError(
                f"CVAULT_CLIENT_CERT / CVAULT_CLIENT_KEY: cannot load a certificate and its key from {client_cert}"
            ) from None
    return context


class HTTP:
    """cvault's retry, timeout and error rules over one aiohttp session. Close it with :meth:`close`."""

    blocking = False
    """True when :meth:`_send` never suspends: calls may then be driven without an event loop, and the
    discharge cache fetches one discharge at a time with no background refresh (nothing would run it)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        uniform: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        ca_cert: str | None = None,
    ) -> None:
        self._ca_cert = ca_cert
        self._ssl: ssl.SSLContext | bool | None = False  # False: not built yet
        self._timeout = timeout
        self._retry = retry
        self._max_reply = max_reply_bytes
        self._trace_configs = list(trace_configs)
        self._uniform = uniform
        self._sleep = sleep  # None: asyncio.sleep, imported when a retry first waits
        self._session: aiohttp.ClientSession | None = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context both transports verify servers with (built once, on first use)."""
        if self._ssl is False:
            self._ssl = ssl_context(self._ca_cert)
        assert self._ssl is not True
        return self._ssl

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            context = self._ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trace_configs=self._trace_configs,
                # Tokens travel in headers; never pick them up from the environment.
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        authorization: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request (retrying as above); the decoded JSON reply, or ``None`` for an empty one.

        ``idempotency_key`` goes out as ``Idempotency-Key`` on every attempt (one key per logical
        write, the same on each retry), which makes the request idempotent.
        """
        # A change: what a lost answer leaves in doubt. A request its caller declares idempotent without a key
        # (a discharge request) changes nothing the caller must account for.
        changes = method not in ("GET", "HEAD") and not (idempotent and idempotency_key is None)
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or idempotency_key is not None
        headers = {"Accept": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        service = _service(url)
        unknown: str | None = None  # what left an attempt's outcome unknown (a change only)
        in_doubt: VaultError | None = None  # that attempt's error
        attempt = 0
        while True:
            try:
                return await self._once(method, url, headers, body, params, service)
            except Unavailable as exc:
                error: VaultError = exc
                retryable = True
            except OutcomeUnknown as exc:
                error = exc
                retryable = idempotent
                if changes:
                    unknown, in_doubt = "the service lost the database while committing it", exc
            except VaultError as exc:
                # An answer: it settles the request only if nothing before it is in doubt.
                if unknown is not None:
                    raise _outcome_unknown(unknown, exc, idempotency_key) from exc
                raise
            except TransportError as exc:
                if exc.untrusted:
                    # Not retried: the same certificate will be refused again. Still no word on an earlier attempt.
                    if unknown is not None:
                        raise _outcome_unknown(unknown, None, idempotency_key) from None
                    raise ConnectionFailed(
                        f"the TLS certificate of {service} is not trusted; set CVAULT_CACERT (or --ca-cert) "
                        "to the CA certificate that signed it"
                    ) from None
                if not exc.opened:
                    error = ConnectionFailed(f"could not connect to {service}; check the URL and that it is running")
                    retryable = True
                else:
                    error = ConnectionFailed(f"{service} {exc.what} during {method} {urlsplit(url).path}")
                    retryable = idempotent
                    if changes:
                        unknown, in_doubt = error.message, error
            attempt += 1
            if not retryable or attempt >= self._retry.attempts:
                if unknown is not None:
                    later = None if error is in_doubt else error
                    raise _outcome_unknown(unknown, later, idempotency_key) from error
                raise error
            await self._pause(self._retry.delay(attempt - 1, self._uniform))

    async def _pause(self, seconds: float) -> None:
        if self._sleep is None:
            import asyncio

            self._sleep = asyncio.sleep
        await self._sleep(seconds)

    async def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        params: Mapping[str, str] | None,
        service: str,
    ) -> Any:
        status, raw = await self._send(method, url, headers, body, params)
        payload: Any = None
        if raw:
            try:
                payload = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                payload = None
        if status >= 400:
            raise error_from_reply(status, payload, service=service)
        if raw and payload is None:
            raise BadReply(f"{service} sent a reply that is not JSON (HTTP {status})")
        return payload

    async def stream_lines(
        self, url: str, *, authorization: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[str]:
        """GET a reply of JSON lines and yield each line (with its ``\\n``) as it arrives: an audit export.

        No cap on the whole reply and no total timeout (each read must come within the timeout); a
        line longer than the reply cap is refused. Never retried: the caller may have used the first
        lines. Always the aiohttp transport, so it needs an event loop.
        """
        import aiohttp

        headers = {"Accept": "application/x-ndjson", "Authorization": authorization}
        service = _service(url)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self._timeout)
        try:
            async with self._client().get(
                url, headers=headers, params=params, allow_redirects=False, timeout=timeout
            ) as resp:
                if resp.status >= 400:
                    raw = await self._read(resp)
                    try:
                        payload = json.loads(raw) if raw else None
                    except (ValueError, RecursionError):
                        payload = None
                    raise error_from_reply(resp.status, payload, service=service)
                pending = b""
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    *lines, pending = (pending + chunk).split(b"\n")
                    if len(pending) > self._max_reply:
                        raise self._too_large()
                    for line in lines:
                        yield line.decode("utf-8") + "\n"
                if pending:
                    yield pending.decode("utf-8")
        except aiohttp.ClientConnectorError:
            raise ConnectionFailed(f"could not connect to {service}; check the URL and that it is running") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "dropped the connection"
            raise ConnectionFailed(f"{service} {what} during GET {urlsplit(url).path}") from None
        except UnicodeDecodeError:
            raise BadReply(f"{service} sent a line that is not UTF-8") from None

    def _too_large(self) -> BadReply:
        # Not retried: a server that sends too much will send it again.
        return BadReply(f"the reply is larger than {self._max_reply} bytes; refusing to read it")

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: Any, params: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        """One exchange: the status and the (capped) body, or :class:`TransportError` without an answer."""
        import aiohttp

        try:
            async with self._client().request(
                method, url, headers=headers, json=body, params=params, allow_redirects=False
            ) as resp:
                return resp.status, await self._read(resp)
        except aiohttp.ClientConnectorCertificateError:
            raise TransportError("could not connect", opened=False, untrusted=True) from None
        except aiohttp.ClientConnectorError:
            raise TransportError("could not connect", opened=False) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "dropped the connection"
            raise TransportError(what, opened=True) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None and resp.content_length > self._max_reply:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_reply:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)
