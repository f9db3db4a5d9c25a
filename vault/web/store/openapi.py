"""The store's OpenAPI 3.1 document, generated from its operations (:mod:`vault.web.contract`)."""

from __future__ import annotations

from typing import Any, Final

from .. import service_routes
from ..contract import Operation, openapi_document
from . import handlers, rotation_handlers
from .vault_kv_openapi import vault_kv_paths

__all__ = ["OPERATIONS", "spec"]

OPERATIONS: Final[tuple[Operation, ...]] = (
    *handlers.OPERATIONS,  # the secret read first: aiohttp tries routes in the order they were added
    *rotation_handlers.OPERATIONS,
    *service_routes.OPERATIONS,
)
"""The native API's operations, in routing order."""

SECURITY_SCHEMES: Final = {
    "bundle": {
        "type": "http",
        "scheme": "bearer",
        "description": "a store token and its bound org discharge, comma-separated (cv1_...)",
    },
    "vaultToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Vault-Token",
        "description": "a store bundle, for the Vault-compatible API under /vault",
    },
}


def spec(store_url: str) -> dict[str, Any]:
    document = openapi_document(
        title="cvault store",
        version="1",
        server_url=store_url,
        operations=OPERATIONS,
        security_schemes=SECURITY_SCHEMES,
    )
    # The Vault-compatible API's hand-written paths, until its operations are declared (issue 28 item 1).
    document["paths"].update(vault_kv_paths())
    return document
