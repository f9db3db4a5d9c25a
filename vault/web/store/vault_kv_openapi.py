"""OpenAPI paths of the Vault-compatible API (``/vault``); merged into the store's document."""

from __future__ import annotations

from typing import Any

__all__ = ["vault_kv_paths"]

_STR = {"type": "string"}
_KINDS = {"type": "string", "enum": ["data", "metadata", "delete", "undelete", "destroy"]}
_VAULT_ERROR = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": _STR}},
    "required": ["errors"],
}
_SEE = "Vault KV version 2 semantics; see docs/vault-compat.md."


def _p(name: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _op(operation: str, summary: str, params: list[dict[str, Any]], *, body: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "Vault response envelope", "content": {"application/json": {"schema": {}}}},
        "204": {"description": "no body"},
    }
    for code in (400, 403, 404, 405, 413, 503):
        responses[str(code)] = {"description": "error", "content": {"application/json": {"schema": _VAULT_ERROR}}}
    op: dict[str, Any] = {
        "operationId": operation,
        "summary": summary,
        "description": _SEE,
        "parameters": params,
        "responses": responses,
        "security": [{"vaultToken": []}],
    }
    if body:
        op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return op


def vault_kv_paths() -> dict[str, Any]:
    mount = [_p("slug"), _p("vault")]
    kv = [*mount, _p("kind", _KINDS), _p("path")]
    listing = [*mount, _p("kind", {"type": "string", "enum": ["metadata"]})]
    list_op = _op("vault.list", "List keys (GET ?list=true; the LIST method too)", listing)
    return {
        "/vault/v1/auth/token/lookup-self": {"get": _op("vault.lookup_self", "Describe the token", [])},
        "/vault/v1/sys/internal/ui/mounts/{path}": {
            "get": _op("vault.ui_mount", "Mount preflight: every mount is KV version 2", [_p("path")])
        },
        "/vault/v1/{slug}/{vault}/{kind}/{path}": {
            "get": _op("vault.read", "Read data (?version=N), metadata, or list (?list=true; LIST)", kv),
            "post": _op(
                "vault.write", "Write data {options: {cas}, data}; delete/undelete/destroy {versions}", kv, body=True
            ),
            "put": _op("vault.write_put", "Same as POST", kv, body=True),
            "delete": _op("vault.delete_metadata", "Delete the secret and every version (metadata only)", kv),
        },
        "/vault/v1/{slug}/{vault}/{kind}/": {"get": list_op},
        "/vault/v1/{slug}/{vault}/{kind}": {"get": {**list_op, "operationId": "vault.list_root"}},
    }
