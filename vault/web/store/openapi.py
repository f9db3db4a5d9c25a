"""The store's OpenAPI 3.1 document, generated from its operations (:mod:`vault.web.contract`): the native API
and the Vault-compatible API under ``/vault``."""

from __future__ import annotations

from typing import Any, Final

from .. import service_routes
from ..contract import Operation, openapi_document
from . import handlers, rotation_handlers
from .vault_kv import SECURITY_SCHEMES, VAULT_OPERATIONS

__all__ = ["OPERATIONS", "VAULT_OPERATIONS", "spec"]

OPERATIONS: Final[tuple[Operation, ...]] = (
    *handlers.OPERATIONS,  # the secret read first: aiohttp tries routes in the order they were added
    *rotation_handlers.OPERATIONS,
    *service_routes.OPERATIONS,
)
"""The native API's operations, in routing order."""


def spec(store_url: str) -> dict[str, Any]:
    return openapi_document(
        title="cvault store",
        version="1",
        server_url=store_url,
        operations=(*OPERATIONS, *VAULT_OPERATIONS),
        security_schemes=SECURITY_SCHEMES,
    )
