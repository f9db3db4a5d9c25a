"""What every cvault web app shares: the one place errors become HTTP, request ids,
the caller's address, an access log without secrets (bodies are decoded by :mod:`vault.web.contract`).

Handlers raise :class:`vault.errors.VaultError` subclasses; the request middleware (:func:`middlewares`)
turns them into ``{"error": {"code", "message"}}`` with the class's status, and
turns anything unexpected into a 500 that says nothing about the internals (the
traceback goes to the server log, tagged with the request id, never to the client).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from random import getrandbits as _random_bits
from typing import Any, NamedTuple, Protocol

from aiohttp import StreamReader, web

from vault.authorization import authorization_credential, redact_credentials
from vault.errors import RateLimited, Unauthenticated, Unavailable, VaultError
from vault.logs import REQUEST_ID
from vault.types import IPAddress, IPNetwork

log = logging.getLogger("cvault.web")
access_log = logging.getLogger("cvault.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Methods routed as aliases of a documented operation but not listed in a 405's Allow, since the OpenAPI
# document cannot name them: Vault's LIST (docs/vault-compat.md, "The LIST method").
UNADVERTISED_METHODS: frozenset[str] = frozenset({"LIST"})

MAX_BODY_BYTES = 256 * 1024
"""Default cap on request bodies (secret values are capped separately, at 64 KiB)."""


class Origin(NamedTuple):
    """Where a request came from, resolved once by the request middleware (:func:`middlewares`)."""

    request_id: str | None
    # The peer, or the forwarded address when the peer is a trusted proxy.
    client_addr: str | None
    client_ip: IPAddress | None


_NO_ORIGIN = Origin(None, None, None)
ORIGIN_KEY = web.RequestKey("origin", Origin)


class Readiness(Protocol):
    """What a readiness probe asks (``/readyz``, Vault's ``sys/health``); the app factory wires the database's."""

    async def ready(self, *, timeout: float = ...) -> bool:
        """True when the service's database answered within ``timeout`` seconds."""
        ...


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


ErrorRenderer = Callable[[web.Request, int, str, str], web.StreamResponse]


def _default_renderer(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
    return json_error(status, code, message)


RENDERER_KEY: web.AppKey[ErrorRenderer] = web.AppKey("error_renderer")
# Renderers for the app's own routes under a path prefix (the Vault API's KV routes, served by the store app
# itself for speed): (prefix, renderer) pairs, the first whose prefix the request's path has wins.
PATH_RENDERERS_KEY: web.AppKey[tuple[tuple[str, ErrorRenderer], ...]] = web.AppKey("path_error_renderers")


def _render(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
    # A sub-application (the Vault-compatible API) may render errors its own way. The
    # innermost matched app's renderer wins; request.config_dict would not do, since the
    # middlewares run with the outer app current and their config_dict stops there.
    for app in reversed(request.match_info.apps):
        renderer = app.get(RENDERER_KEY)
        if renderer is not None:
            return renderer(request, status, code, message)
        for prefix, by_path in app.get(PATH_RENDERERS_KEY, ()):
            if request.path.startswith(prefix):
                return by_path(request, status, code, message)
    return _default_renderer(request, status, code, message)


def origin(request: web.Request) -> Origin:
    """The request's :class:`Origin` (all ``None`` for a request the middleware did not see)."""
    try:
        return request[ORIGIN_KEY]
    except KeyError:
        return _NO_ORIGIN


def _error_response(request: web.Request, exc: BaseException) -> web.StreamResponse:
    """The JSON error a handler's exception becomes (a redirect is re-raised: aiohttp sends it)."""
    rid = origin(request).request_id
    if isinstance(exc, VaultError):
        if exc.detail is not None:
            log.warning("request %s: %s (%s)", rid, exc.code, exc.detail)
        response = _render(request, exc.status, exc.code, exc.message)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        response = _render(request, exc.status, code, exc.reason)
        if isinstance(exc, web.HTTPMethodNotAllowed):
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods - UNADVERTISED_METHODS))
        return response
    if isinstance(exc, ConnectionError | OSError):
        log.warning("request %s: backend unavailable: %s", rid, type(exc).__name__)
        err = Unavailable()
        return _render(request, err.status, err.code, err.message)
    log.exception("request %s failed", rid, exc_info=exc)
    return _render(request, 500, "internal", f"internal error (request id {rid})")


def rendered_status(request: web.Request, exc: VaultError | web.HTTPException) -> int:
    """The status the client gets for ``exc`` (a sub-app's renderer may change it: the Vault API's 401 is 403)."""
    return _error_response(request, exc).status


_SECURITY_HEADERS = {
    # Replies carry sessions, tokens, bundles, discharges and secret values; no cache along
    # the way may keep one, so every reply says so (simpler and safer than picking routes).
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # aiohttp fills in "Python/3.x aiohttp/3.x" unless the header is set; a version string
    # only helps an attacker pick an exploit.
    "Server": "cvault",
}
_CHALLENGE = 'Bearer realm="cvault"'


def security_headers(response: web.StreamResponse) -> None:
    """Headers every reply carries, plus ``WWW-Authenticate`` on a 401 (a 405's ``Allow`` comes with its error)."""
    response.headers.update(_SECURITY_HEADERS)
    if response.status == 401:
        response.headers["WWW-Authenticate"] = _CHALLENGE


def new_request_id() -> str:
    # A correlation id, not a secret: the process's PRNG (reseeded in forked children)
    # avoids a getrandom system call per request.
    return f"{_random_bits(64):016x}"


def middlewares(trusted_proxies: tuple[str, ...] = ()) -> list[Any]:
    """The middleware of every cvault app, outermost first, one concern each; ``trusted_proxies`` are the CIDRs
    whose X-Forwarded-For counts.

    1. the access log: one line per request, with the status the client got (499 for a request cancelled before
       its answer, as when its client went away or the server stopped; 500 if nothing else answered);
    2. the origin: a request id (also on every log line written meanwhile) and the client's address;
    3. the headers every reply carries (its request id, :func:`security_headers`);
    4. the errors: a handler's exception becomes its JSON error reply (:func:`_error_response`).
    """

    @web.middleware
    async def origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = new_request_id()
        rid_token = REQUEST_ID.set(rid)
        addr = client_address(request, trusted_proxies)
        request[ORIGIN_KEY] = Origin(rid, addr, _parse_ip(addr))
        try:
            return await handler(request)
        finally:
            REQUEST_ID.reset(rid_token)

    return [
        access_log_middleware,
        origin_middleware,
        headers_middleware,
        error_middleware,
    ]


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One access-log line per request: path only, since query strings and headers can carry tokens."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status  # a redirect, which the error middleware leaves to aiohttp to send
        raise
    except asyncio.CancelledError:
        # nginx's "client closed request": nothing was sent, and nothing failed (a long poll ended by a shutdown).
        status = 499
        raise
    finally:
        if access_log.isEnabledFor(logging.INFO):
            rid = origin(request).request_id
            duration_ms = (time.perf_counter() - started) * 1000
            resource = request.match_info.route.resource
            access_log.info(
                "%s %s %s %d %.1fms",
                rid,
                request.method,
                redact_credentials(request.path),
                status,
                duration_ms,
                # The fields of log_format = "json" (vault.logs).
                extra={
                    "request_id": rid,
                    "route": resource.canonical if resource is not None else None,
                    "method": request.method,
                    "status": status,
                    "duration_ms": round(duration_ms, 1),
                },
            )


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request id and :func:`security_headers` on every reply, errors included."""
    response = await handler(request)
    rid = origin(request).request_id
    if rid is not None:
        response.headers["X-Request-Id"] = rid
    security_headers(response)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A handler's exception as its error reply (:func:`_error_response`)."""
    try:
        return await handler(request)
    except Exception as exc:
        return _error_response(request, exc)


@functools.lru_cache(maxsize=64)
def _networks(trusted_proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# Peers repeat (keep-alive, few proxies); parsing each request's address again is wasted work.
_cached_ip = functools.lru_cache(maxsize=4096)(_ip_or_none)


def _parse_ip(text: str) -> IPAddress | None:
    # Only address-sized text is cached, so forwarded headers cannot fill the cache with large keys.
    return _cached_ip(text) if len(text) <= 64 else _ip_or_none(text)


def client_address(request: web.Request, trusted_proxies: Iterable[str]) -> str:
    """The caller's address: the peer, or the forwarded address when the peer is a trusted proxy."""
    peer = request.remote or ""
    if not trusted_proxies:
        return peer
    nets = _networks(tuple(trusted_proxies))
    peer_ip = _parse_ip(peer)
    if peer_ip is None or not any(peer_ip in n for n in nets):
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    # Walk from the right, skipping our own proxies: the first untrusted hop is the client.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        ip = _parse_ip(hop)
        if ip is None:
            return peer
        if not any(ip in n for n in nets):
            return str(ip)
    return peer


def credential(headers: Mapping[str, str], *, vault_token: bool = False) -> str | None:
    """The credential a request presents, or ``None`` if it presents none: the one ``Authorization`` reader.

    ``Authorization: Bearer <credential>`` (or ``FlyV1``; any case, spaces around ignored;
    :func:`vault.authorization.authorization_credential` is the grammar); with ``vault_token``
    (the Vault-compatible API) ``X-Vault-Token`` is read first. Another scheme, or a scheme
    with nothing after it, is :class:`Unauthenticated` (whose message never quotes the
    header: it may hold a credential sent to the wrong place).
    """
    if vault_token:
        token = headers.get("X-Vault-Token", "").strip()
        if token:
            return token
    return authorization_credential(headers.get("Authorization", ""))


def required_credential(headers: Mapping[str, str], *, vault_token: bool = False) -> str:
    """:func:`credential`, with no credential at all a 401 that says what to send."""
    found = credential(headers, vault_token=vault_token)
    if found is None:
        raise Unauthenticated("no token: send 'Authorization: Bearer <token bundle>'")
    return found


async def read_capped(content: StreamReader, max_bytes: int) -> bytes:
    """A body, whole, or its first ``max_bytes + 1`` bytes when it is longer (the caller refuses those).

    ``content.read(n)`` alone returns what has arrived so far, which for a body sent in pieces is
    only its beginning.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)[: max_bytes + 1]
