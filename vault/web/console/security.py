"""The console's defences: it is read-only, framed by no one, scripted by no one, and answers only its own name.

- **Methods**: GET and HEAD only; anything else is a 405 before a handler runs,
  so no cross-site form can make the console act (it has no action to take).
- **Host**: the ``Host`` header must name the address the connection reached
  (``127.0.0.1:8300``, ``[::1]:8300``, ``localhost:8300`` on loopback) or a name
  given with ``--allow-host``. A DNS-rebinding page gets its own name in ``Host``
  and is refused, so it cannot read the console through the victim's browser.
  IP literals are always the address itself, so they are safe to accept.
- **Headers** on every response, errors included: a Content-Security-Policy with
  no script source at all (the pages have no JavaScript), ``frame-ancestors
  'none'`` and ``X-Frame-Options: DENY`` against clickjacking, ``no-store``
  caching (audit data stays out of the browser's disk cache), no referrer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "allowed_host", "guard_middleware", "set_security_headers"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_SAFE_METHODS = ("GET", "HEAD")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refusal = Callable[[web.Request, int, str, str], web.StreamResponse]


def _split_host(host: str) -> tuple[str, str] | None:
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        return name, rest[1:]
    name, sep, port = host.rpartition(":")
    return (name, port) if sep else None


def allowed_host(host: str, local: tuple[str, int] | None, names: Iterable[str]) -> bool:
    """Whether ``host`` (the Host header) names this console, reached on ``local`` (the socket's address)."""
    if local is None:
        return False
    parts = _split_host(host.strip().lower())
    if parts is None:
        return False
    name, port = parts
    if port != str(local[1]):
        return False
    try:
        bound = ipaddress.ip_address(local[0].split("%")[0])
    except ValueError:
        return False
    if name == "localhost":
        return bound.is_loopback
    try:
        return ipaddress.ip_address(name) == bound
    except ValueError:
        return name in {n.lower() for n in names}


def guard_middleware(names: Iterable[str], refuse: Refusal) -> Callable[..., Awaitable[web.StreamResponse]]:
    allowed_names = tuple(names)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in _SAFE_METHODS:
            response = refuse(request, 405, "method_not_allowed", "the console is read-only: only GET requests")
            response.headers["Allow"] = ", ".join(_SAFE_METHODS)
            return response
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local = (str(sockname[0]), int(sockname[1])) if sockname else None
        if not allowed_host(request.host, local, allowed_names):
            return refuse(
                request,
                421,
                "host_not_allowed",
                "this console answers only to the address it listens on; "
                "open it by that address, or start it with --allow-host NAME",
            )
        return await handler(request)

    return guard


async def set_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, error pages and static files included."""
    response.headers.update(SECURITY_HEADERS)
