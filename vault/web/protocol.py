"""The connection handler every cvault server uses: header limits sized for tokens, parser errors as our JSON.

aiohttp answers a request its HTTP parser refuses (a bad byte in a header, a line
over its limit) from :meth:`web.RequestHandler.handle_error`: it logs the parser's
exception, whose text quotes the offending line (an ``Authorization`` header with
a bundle or a session), at ERROR with a traceback, and replies ``text/plain`` with
the same text. Here such a request gets the ``{"error": {"code", "message"}}`` every
other refusal gets, with the usual security headers, and the log line names the
peer and the kind of error only: nothing of the request reaches a log or a body.

A legal token is at most 32 KiB (:data:`vault.macaroon.wire.MAX_TOKEN_BYTES`), about
44 000 characters in its ``cv1_`` form, and its discharge carries the ticket of the
caveat it discharges (up to the same cap): :data:`MAX_HEADER_BYTES` lets such a bundle
through where aiohttp's default of 8190 bytes would refuse it.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http import HttpProcessingError

from .common import error_body, new_request_id, security_headers

__all__ = ["MAX_HEADER_BYTES", "SERVER_LIMITS", "CvaultRequestHandler"]

log = logging.getLogger("cvault.web")

MAX_HEADER_BYTES = 128 * 1024
"""Longest request line or header value: a 32 KiB token and a discharge at the cap, in base64, with room."""

SERVER_LIMITS: dict[str, Any] = {"max_line_size": MAX_HEADER_BYTES, "max_field_size": MAX_HEADER_BYTES}
"""The ``web.Server`` keyword arguments that apply :data:`MAX_HEADER_BYTES`."""


class CvaultRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with parser errors answered and logged without the request's bytes."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            # Not the parser: an unexpected failure outside the apps' middleware (aiohttp's own
            # handling, which logs the traceback; cvault's exceptions never quote credentials).
            return super().handle_error(request, status, exc, message)
        # No middleware ran, so the id docs/api.md promises on every reply is made here (and logged).
        rid = new_request_id()
        log.warning("request %s from %s refused by the HTTP parser: %s", rid, request.remote, type(exc).__name__)
        # aiohttp exports no finer kind of parser error (LineTooLong is not public), so one text covers them.
        text = (
            "the request is not valid HTTP/1.1 (a malformed request line or header, "
            f"or one longer than {MAX_HEADER_BYTES} bytes); nothing was done"
        )
        response = web.json_response(error_body("bad_request", text), status=400)
        security_headers(response)
        response.headers["X-Request-Id"] = rid
        response.force_close()
        return response
