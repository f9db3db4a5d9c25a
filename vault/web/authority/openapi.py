"""The authority's OpenAPI 3.1 document, generated from its operations (:mod:`vault.web.contract`)."""

from __future__ import annotations

from typing import Any

from .. import service_routes
from ..contract import Operation, openapi_document
from . import handlers, workload_handlers

__all__ = ["OPERATIONS", "document"]

SECURITY_SCHEMES = {
    "session": {"type": "http", "scheme": "bearer", "description": "cvs_ session secret"},
    "bundle": {"type": "http", "scheme": "bearer", "description": "cv1_ token bundle"},
    "feed": {"type": "http", "scheme": "bearer", "description": "cvf_ revocation feed token"},
    "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "a workload's JWT"},
}

OPERATIONS: tuple[Operation, ...] = handlers.OPERATIONS + workload_handlers.OPERATIONS + service_routes.OPERATIONS
"""Every route of the authority, in the order they are routed."""


def document(authority_url: str) -> dict[str, Any]:
    return openapi_document(
        title="cvault authority",
        version="1",
        server_url=authority_url,
        operations=OPERATIONS,
        security_schemes=SECURITY_SCHEMES,
    )
