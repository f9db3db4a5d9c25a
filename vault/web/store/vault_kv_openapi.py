"""OpenAPI paths of the Vault-compatible API (``/vault``); merged into the store's document."""

from __future__ import annotations

from typing import Any

__all__ = ["MERGE_PATCH", "vault_kv_paths"]

_STR = {"type": "string"}
_KINDS = {"type": "string", "enum": ["data", "metadata", "delete", "undelete", "destroy", "subkeys"]}
_VAULT_ERROR = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": _STR}},
    "required": ["errors"],
}
_SEE = "Vault KV version 2 semantics; see docs/vault-compat.md."
MERGE_PATCH = "application/merge-patch+json"


def _p(name: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _op(
    operation: str,
    summary: str,
    params: list[dict[str, Any]],
    *,
    body: bool = False,
    media: str = "application/json",
    token: bool = True,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "Vault response envelope", "content": {"application/json": {"schema": {}}}},
        "204": {"description": "no body"},
    }
    for code in (400, 403, 404, 405, 413, 415, 503):
        responses[str(code)] = {"description": "error", "content": {"application/json": {"schema": _VAULT_ERROR}}}
    op: dict[str, Any] = {
        "operationId": operation,
        "summary": summary,
        "description": _SEE,
        "parameters": params,
        "responses": responses,
        "security": [{"vaultToken": []}] if token else [],
    }
    if body:
        op["requestBody"] = {"content": {media: {"schema": {"type": "object"}}}}
    return op


def _mount_paths(prefix: str, mount: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """The KV routes under one form of mount: ``<slug>/<vault>`` or the token's org's ``<vault>``."""
    kv = [*mount, _p("kind", _KINDS), _p("path")]
    listing = [*mount, _p("kind", {"type": "string", "enum": ["metadata"]})]
    list_op = _op(f"vault.list{suffix}", "List keys (GET ?list=true; the LIST method too)", listing)
    return {
        f"{prefix}/{{kind}}/{{path}}": {
            "get": _op(
                f"vault.read{suffix}",
                "Read data (?version=N), metadata, subkeys (?depth=N), or list (?list=true; LIST)",
                kv,
            ),
            "post": _op(
                f"vault.write{suffix}",
                "Write data {options: {cas}, data}; metadata {max_versions, cas_required, delete_version_after, "
                "custom_metadata}; delete/undelete/destroy {versions}",
                kv,
                body=True,
            ),
            "put": _op(f"vault.write_put{suffix}", "Same as POST", kv, body=True),
            "patch": _op(
                f"vault.patch{suffix}",
                "JSON merge patch of data {options: {cas}, data} or of metadata",
                kv,
                body=True,
                media=MERGE_PATCH,
            ),
            "delete": _op(
                f"vault.delete{suffix}", "data: soft-delete the current version; metadata: the secret, for good", kv
            ),
        },
        f"{prefix}/{{kind}}/": {"get": list_op},
        f"{prefix}/{{kind}}": {"get": {**list_op, "operationId": f"vault.list_root{suffix}"}},
        f"{prefix}/config": {
            "get": _op(f"vault.config{suffix}", "The mount's max_versions, cas_required, delete_version_after", mount),
            "post": _op(f"vault.configure{suffix}", "Set them (needs 'C')", mount, body=True),
            "put": _op(f"vault.configure_put{suffix}", "Same as POST", mount, body=True),
        },
    }


def vault_kv_paths() -> dict[str, Any]:
    lookup = _op("vault.lookup_self", "Describe the token (data.id: the token as sent)", [])
    renew = _op("vault.renew_self", "Always 400 'lease is not renewable' for a live bundle", [], body=True)
    health = _op("vault.health", "200 serving; 503 (sealedcode) when the database is unreachable", [], token=False)
    capabilities = _op("vault.capabilities_self", "The token's capabilities at each of {paths: [...]}", [], body=True)
    ui_mount = _op("vault.ui_mount", "Mount preflight: KV version 2; 403 for an unknown org slug", [_p("path")])
    login = _op(
        "vault.login",
        "Workload login {role: '<org slug>/<binding>', jwt}: auth.client_token is a store bundle "
        "(docs/workload-identity.md)",
        [_p("method", {"type": "string", "enum": ["jwt", "kubernetes"]})],
        body=True,
        token=False,
    )
    return {
        "/vault/v1/auth/{method}/login": {"post": login, "put": {**login, "operationId": "vault.login_put"}},
        "/vault/v1/auth/token/lookup-self": {
            "get": lookup,
            "post": {**lookup, "operationId": "vault.lookup_self_post"},
        },
        "/vault/v1/auth/token/renew-self": {"post": renew, "put": {**renew, "operationId": "vault.renew_self_put"}},
        "/vault/v1/sys/health": {"get": health, "head": {**health, "operationId": "vault.health_head"}},
        "/vault/v1/sys/seal-status": {
            "get": _op("vault.seal_status", "Sealed exactly when not ready", [], token=False)
        },
        "/vault/v1/sys/leader": {"get": _op("vault.leader", "No HA: every node serves", [], token=False)},
        "/vault/v1/sys/mounts": {"get": _op("vault.mounts", "The vaults the token can use, as KV v2 mounts", [])},
        "/vault/v1/sys/internal/ui/mounts": {
            "get": _op("vault.ui_mounts", "The same, as {secret: {...}, auth: {}}", [])
        },
        "/vault/v1/sys/internal/ui/mounts/{path}": {"get": {**ui_mount, "security": []}},
        "/vault/v1/sys/mounts-all/{path}": {"get": {**ui_mount, "operationId": "vault.mounts_all", "security": []}},
        "/vault/v1/sys/capabilities-self": {
            "post": capabilities,
            "put": {**capabilities, "operationId": "vault.capabilities_self_put"},
        },
        **_mount_paths("/vault/v1/{slug}/{vault}", [_p("slug"), _p("vault")], ""),
        **_mount_paths("/vault/v1/{vault}", [_p("vault")], "_own_org"),
    }
