"""The authority's OpenAPI 3.1 document, generated from its operations (:mod:`vault.web.contract`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..common import healthz
from ..contract import Operation, Response, openapi_document
from . import handlers, workload_handlers
from .messages import Status

__all__ = ["OPERATIONS", "document"]

DOCUMENT_KEY: web.AppKey[bytes] = web.AppKey("authority_openapi", bytes)

SECURITY_SCHEMES = {
    "session": {"type": "http", "scheme": "bearer", "description": "cvs_ session secret"},
    "bundle": {"type": "http", "scheme": "bearer", "description": "cv1_ token bundle"},
    "feed": {"type": "http", "scheme": "bearer", "description": "cvf_ revocation feed token"},
    "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "a workload's JWT"},
}


async def serve_document(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[DOCUMENT_KEY], content_type="application/json")


_SERVICE: tuple[Operation, ...] = (
    Operation(
        method="GET",
        route="/healthz",
        handler=healthz,
        id="healthz",
        summary="The process is up",
        responses={200: Response(Status)},
    ),
    Operation(
        method="GET",
        route="/openapi.json",
        handler=serve_document,
        id="openapi",
        summary="This document",
        responses={200: Response(dict[str, Any])},
    ),
)

OPERATIONS: tuple[Operation, ...] = handlers.OPERATIONS + workload_handlers.OPERATIONS + _SERVICE
"""Every route of the authority, in the order they are routed."""


def document(authority_url: str) -> dict[str, Any]:
    return openapi_document(
        title="cvault authority",
        version="1",
        server_url=authority_url,
        operations=OPERATIONS,
        security_schemes=SECURITY_SCHEMES,
    )
