"""The operations every cvault service serves alike: ``GET /healthz`` and ``GET /openapi.json``.

The document a service serves names these two as well; it is encoded once, when the app is built
(:func:`serve_document`), and served as those bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from .contract import Operation, Response, reply
from .models import Model

__all__ = ["DOCUMENT_KEY", "OPERATIONS", "Status", "serve_document"]

DOCUMENT_KEY: web.AppKey[bytes] = web.AppKey("openapi_document", bytes)


class Status(Model):
    status: str


async def healthz(request: web.Request) -> web.StreamResponse:
    return reply(Status(status="ok"))


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[DOCUMENT_KEY], content_type="application/json")


def serve_document(app: web.Application, document: Mapping[str, Any]) -> None:
    """Serve ``document`` at ``/openapi.json`` (routed by :data:`OPERATIONS`)."""
    app[DOCUMENT_KEY] = msgspec.json.encode(document)


_DOCUMENT = dict[str, Any]

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        route="/healthz",
        handler=healthz,
        id="healthz",
        summary="Process is up",
        responses={200: Response(Status)},
        errors=(405,),
    ),
    Operation(
        method="GET",
        route="/openapi.json",
        handler=openapi,
        id="openapi",
        summary="This document (OpenAPI 3.1)",
        responses={200: Response(_DOCUMENT, description="the service's OpenAPI document")},
        errors=(405,),
    ),
)
