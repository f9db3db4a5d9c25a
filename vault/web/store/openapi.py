"""The store's OpenAPI 3 document (hand-written; a test checks it names every route)."""

from __future__ import annotations

from typing import Any

from .vault_kv import vault_document

__all__ = ["spec"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_BUNDLE: list[dict[str, list[str]]] = [{"bundle": []}]
_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64"}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_MASK = {"type": "string", "pattern": "^[rwcdCa]+$", "description": "permission letters, e.g. rw"}
_MASKS = {"type": "object", "additionalProperties": _MASK}
# Server constraints, as vault/names.py and the handlers check them.
_VERSION = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_VERSIONS = {"type": "array", "items": _VERSION, "minItems": 1, "maxItems": 1000}
_VAULT_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
_SECRET_NAME = {"type": "string", "pattern": "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", "maxLength": 256}
_PREFIX = {"type": "string", "pattern": "^[A-Za-z0-9._/-]*$", "maxLength": 256}
_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
_VALUE = {"type": "string", "maxLength": 64 * 1024, "description": "at most 64 KiB of UTF-8 (413 beyond)"}
_STAGE = {"type": "string", "enum": ["current", "pending", "previous"]}
_LIMIT = {"type": "integer", "minimum": 1, "description": "values above 1000 are read as 1000"}
# Fields the server sends as null: no next page, no stage, no previous or current version.
_WHEN = {"type": "string", "description": "Unix seconds or an ISO 8601 time (empty: no bound)"}
_FILTER = {"type": "string", "maxLength": 1000}
_NULL_INT = {"type": "integer", "format": "int64", "nullable": True}
_NULL_STR = {"type": "string", "nullable": True}
_NULL_STAGE = {**_STAGE, "nullable": True}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _path(name: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_ORG = [_path("org", {**_INT, "minimum": 0, "maximum": 2**63 - 1})]
_VAULT = [*_ORG, _path("vault", _VAULT_NAME)]
_SECRET = [*_VAULT, _path("name", _SECRET_NAME)]
_TOKEN = _obj({"token": _STR, "id": _STR}, ["token", "id"])
_VERSIONS_BODY = _obj({"versions": _VERSIONS}, ["versions"])
_CHANGED = _obj({"changed": _VERSIONS}, ["changed"])


_NULL_TIME = _TIME
_ROTATION = _obj(
    {
        "vault": _STR,
        "name": _STR,
        "target": {"type": "string", "enum": ["postgres", "command"]},
        "strategy": {"type": "string", "enum": ["single", "alternating"]},
        "every_seconds": _INT,
        "admin_secret": _NULL_STR,
        "hook": _NULL_STR,
        "password_length": _INT,
        "enabled": {"type": "boolean"},
        "next_due_at": {"type": "string", "format": "date-time"},
        "holder": _NULL_STR,
        "lease_expires_at": _NULL_TIME,
        "step": {"type": "string", "enum": ["created", "set", "tested"], "nullable": True},
        "pending_version": _NULL_INT,
        "attempt": _INT,
        "rotations": _INT,
        "last_success_at": _NULL_TIME,
        "last_rotated": _NULL_INT,
        "last_failure_at": _NULL_TIME,
        "last_failure": _NULL_STR,
    },
    ["vault", "name", "target", "strategy", "every_seconds", "enabled", "next_due_at", "attempt", "rotations"],
)
_POLICY_BODY = _obj(
    {
        "target": {"type": "string", "enum": ["postgres", "command"]},
        "strategy": {"type": "string", "enum": ["single", "alternating"]},
        "every_seconds": {"type": "integer", "minimum": 60, "maximum": 10 * 365 * 86400},
        "admin_secret": _SECRET_NAME,
        "hook": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        "password_length": {"type": "integer", "minimum": 16, "maximum": 128},
    },
    ["target", "every_seconds"],
)
_HOLDER = {"type": "string", "pattern": "^[!-~]{1,128}$"}
_LEASE = {"type": "integer", "minimum": 1, "maximum": 3600}
_STEP_BODY = _obj(
    {
        "step": {"type": "string", "enum": ["create", "set", "test", "promote"]},
        "holder": _HOLDER,
        "value": {**_VALUE, "description": "create: the new value"},
        "pending_version": {**_VERSION, "description": "set, test, promote: the rotation's pending version"},
        "lease_seconds": _LEASE,
        "error": {"type": "string", "maxLength": 2000, "description": "the step failed at the target: why"},
    },
    ["step", "holder"],
)


def _rotation_paths(v: str) -> dict[str, Any]:
    """Managed rotation (docs/rotation.md)."""
    rotations = _obj({"rotations": {"type": "array", "items": _ROTATION}}, ["rotations"])
    return {
        v + "/rotation/{name}": {
            "put": _op(
                "rotation.set_policy",
                "Rotate the secret on a schedule",
                200,
                _ROTATION,
                body=_POLICY_BODY,
                params=_SECRET,
            ),
            "get": _op("rotation.show", "The secret's rotation policy and state", 200, _ROTATION, params=_SECRET),
            "delete": _op("rotation.disable", "Stop rotating the secret", 200, _ROTATION, params=_SECRET),
        },
        v + "/rotate/{name}": {
            "post": _op("rotation.now", "Make the secret's rotation due now", 200, _ROTATION, params=_SECRET)
        },
        v + "/rotations": {"get": _op("rotation.list", "The vault's rotation policies", 200, rotations, params=_VAULT)},
        v + "/rotations/claim": {
            "post": _op(
                "rotation.claim",
                "Lease due rotations (rotators)",
                200,
                rotations,
                body=_obj(
                    {
                        "holder": _HOLDER,
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                        "lease_seconds": _LEASE,
                    },
                    ["holder"],
                ),
                params=_VAULT,
            )
        },
        v + "/rotation-step/{name}": {
            "post": _op(
                "rotation.step",
                "Report a step of a leased rotation, or its failure (rotators)",
                200,
                {"type": "object"},
                body=_STEP_BODY,
                params=_SECRET,
            )
        },
    }


def _op(
    operation: str,
    summary: str,
    status: int,
    reply: dict[str, Any] | None,
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"description": "success"}
        if reply is None
        else {"description": "success", "content": {"application/json": {"schema": reply}}}
    }
    for code in (400, 401, 403, 404, 409, 413, 503):
        responses[str(code)] = {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
    op: dict[str, Any] = {
        "operationId": operation,
        "summary": summary,
        "responses": responses,
        "security": _BUNDLE if security is None else security,
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _export_op() -> dict[str, Any]:
    op = _op("audit.export", "Export the org's audit events with every chain's head and the checkpoints", 200, None)
    op["parameters"] = _ORG
    op["responses"]["200"] = {
        "description": "JSON lines, streamed: checkpoint lines, the heads line, the org's events and skip lines "
        'for the other orgs\' events between them, the end line (docs/audit.md, "Export")',
        "content": {"application/x-ndjson": {"schema": _STR}},
    }
    return op


def spec(store_url: str) -> dict[str, Any]:
    o, v = "/v1/orgs/{org}", "/v1/orgs/{org}/vaults/{vault}"
    revealed = _obj({"name": _STR, "version": _INT, "value": _STR, "stage": _NULL_STAGE, "created_at": _TIME})
    names_or_prefix = _obj(
        {
            "names": {
                "type": "array",
                "items": _SECRET_NAME,
                "minItems": 1,
                "maxItems": 1000,
                "nullable": True,
                "description": "or a prefix, not both",
            },
            "prefix": {**_PREFIX, "nullable": True},
        }
    )
    version_info = _obj(
        {"version": _INT, "state": _STR, "stage": _NULL_STAGE, "created_at": _TIME, "created_by_token": _NULL_STR}
    )
    paths: dict[str, Any] = {
        o + "/enroll": {
            "get": _op(
                "enroll.challenge",
                "Get an enrolment challenge",
                200,
                _obj({"challenge": _STR}),
                params=_ORG,
                security=[],
            ),
            "post": _op(
                "enroll",
                "Enrol the org (challenge + org discharge with C)",
                201,
                _TOKEN,
                body=_obj({"slug": {**_SLUG, "description": "optional; must be the slug the org discharge attests"}}),
                params=_ORG,
            ),
        },
        o + "/tokens": {
            "post": _op(
                "tokens.mint",
                "Mint a store token no wider than the caller's",
                201,
                _TOKEN,
                body=_obj(
                    {
                        "mask": _MASK,
                        "vaults": {**_MASKS, "nullable": True},
                        "secrets": {**_MASKS, "nullable": True},
                        "ttl": {"type": "integer", "minimum": 1, "maximum": 10 * 365 * 86400, "nullable": True},
                    },
                    ["mask"],
                ),
                params=_ORG,
            ),
        },
        o + "/tokens/{id}/revoke": {
            "post": _op(
                "tokens.revoke",
                "Revoke a store token and those minted from it",
                200,
                _obj({"revoked": _STR, "with_descendants": {"type": "array", "items": _STR}}),
                params=[*_ORG, _path("id")],
            ),
        },
        o + "/vaults": {
            "get": _op(
                "vaults.list",
                "List vaults",
                200,
                _obj({"vaults": {"type": "array", "items": _obj({"name": _STR, "created_at": _TIME})}}),
                params=_ORG,
            ),
            "post": _op(
                "vaults.create",
                "Create a vault",
                201,
                _obj({"name": _STR, "created_at": _TIME}),
                body=_obj({"name": _VAULT_NAME}, ["name"]),
                params=_ORG,
            ),
        },
        v: {"delete": _op("vaults.delete", "Delete an empty vault", 204, None, params=_VAULT)},
        v + "/secrets": {
            "get": _op(
                "secrets.list",
                "List secret names (no values)",
                200,
                _obj(
                    {
                        "secrets": {
                            "type": "array",
                            "items": _obj({"name": _STR, "current_version": _NULL_INT, "updated_at": _TIME}),
                        },
                        "next_cursor": _NULL_STR,
                    }
                ),
                params=[*_VAULT, _query("prefix", _PREFIX), _query("limit", _LIMIT), _query("cursor")],
            ),
        },
        v + "/secrets/{name}": {
            "put": _op(
                "secrets.write",
                "Write a new version (w; c too when new)",
                200,
                _obj({"name": _STR, "version": _INT, "stage": _NULL_STAGE}),
                body=_obj(
                    {
                        "value": _VALUE,
                        "cas": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "nullable": True},
                        "stage": {"type": "string", "enum": ["pending"], "nullable": True},
                        "max_versions": {"type": "integer", "minimum": 1, "maximum": 1000, "nullable": True},
                    },
                    ["value"],
                ),
                params=_SECRET,
            ),
            "get": _op(
                "secrets.read",
                "Read the current, a pinned or a staged version",
                200,
                revealed,
                params=[*_SECRET, _query("version", _VERSION), _query("stage", _STAGE)],
            ),
        },
        v + "/read": {
            "post": _op(
                "secrets.batch_read",
                "Read many secrets in one request",
                200,
                _obj({"secrets": {"type": "object"}, "missing": {"type": "array", "items": _STR}}),
                body=names_or_prefix,
                params=_VAULT,
            ),
        },
        v + "/versions": {
            "post": _op(
                "secrets.versions",
                "The current versions of many secrets, without their values (one audit event)",
                200,
                _obj(
                    {
                        "versions": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "missing": {"type": "array", "items": _STR},
                    }
                ),
                body=names_or_prefix,
                params=_VAULT,
            ),
        },
        v + "/metadata/{name}": {
            "get": _op(
                "secrets.metadata",
                "Versions of a secret, without values",
                200,
                _obj(
                    {
                        "name": _STR,
                        "current_version": _NULL_INT,
                        "max_versions": _INT,
                        "versions": {"type": "array", "items": version_info},
                    }
                ),
                params=_SECRET,
            ),
            "delete": _op("secrets.destroy", "Destroy the secret and every version", 204, None, params=_SECRET),
        },
        v + "/delete/{name}": {
            "post": _op("secrets.delete", "Soft-delete versions", 200, _CHANGED, body=_VERSIONS_BODY, params=_SECRET)
        },
        v + "/undelete/{name}": {
            "post": _op("secrets.undelete", "Undelete versions", 200, _CHANGED, body=_VERSIONS_BODY, params=_SECRET)
        },
        v + "/destroy/{name}": {
            "post": _op(
                "secrets.destroy_versions",
                "Destroy versions (ciphertext gone)",
                200,
                _CHANGED,
                body=_VERSIONS_BODY,
                params=_SECRET,
            )
        },
        v + "/promote/{name}": {
            "post": _op(
                "secrets.promote",
                "Make the pending version current",
                200,
                _obj({"name": _STR, "current": _INT, "previous": _NULL_INT}),
                params=_SECRET,
            )
        },
        **_rotation_paths(v),
        o + "/audit": {
            "get": _op(
                "audit.query",
                "Query the org's audit events",
                200,
                _obj({"events": {"type": "array", "items": {"type": "object"}}, "next_cursor": _NULL_INT}),
                params=[
                    *_ORG,
                    *(_query(n, _FILTER) for n in ("vault", "secret", "actor", "token", "action")),
                    _query("outcome", {"type": "string", "enum": ["ok", "denied", "error"]}),
                    _query("order", {"type": "string", "enum": ["oldest", "newest"]}),
                    _query(
                        "own",
                        {
                            "type": "string",
                            "enum": ["show", "hide"],
                            "description": "hide: leave out the caller's own audit.* events (default show)",
                        },
                    ),
                    *(_query(n, _WHEN) for n in ("since", "until")),
                    _query("cursor", {**_INT, "minimum": 0, "maximum": 2**63 - 1}),
                    _query("limit", _LIMIT),
                ],
            ),
        },
        o + "/audit/export": {
            "get": _export_op(),
        },
        o + "/audit/verify": {
            "get": _op(
                "audit.verify",
                "Recompute every chain of the store's audit log up to its head and check the checkpoints",
                200,
                _obj(
                    {
                        "ok": {"type": "boolean"},
                        "checked": _INT,
                        "message": _STR,
                        "chains": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "chain": {**_INT, "description": "-1: the checkpoints' own chain"},
                                    "ok": {"type": "boolean"},
                                    "checked": _INT,
                                    "last_seq": _INT,
                                    "broken_seq": _NULL_INT,
                                    "message": _STR,
                                }
                            ),
                        },
                    },
                    ["ok", "checked", "message", "chains"],
                ),
                params=_ORG,
            )
        },
        "/healthz": {"get": _op("healthz", "Process is up", 200, _obj({"status": _STR}), security=[])},
        "/readyz": {"get": _op("readyz", "Database reachable, keys loaded", 200, _obj({"status": _STR}), security=[])},
        "/.well-known/cvault/keys": {
            "get": _op(
                "publicKeys",
                "The store's ticket public keys and the authority org key it seals new tickets to",
                200,
                _obj({"location": _STR, "ticket": _obj({}), "authority_org": _obj({})}),
                security=[],
            )
        },
    }
    # Temporary, until this document is generated too: the Vault API's generated paths and schemas merged in.
    vault = vault_document(store_url)
    paths.update(vault["paths"])
    return {
        "openapi": "3.1.0",
        "info": {"title": "cvault store", "version": "1"},
        "servers": [{"url": store_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
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
            },
            "schemas": {
                **vault["components"]["schemas"],
                "Error": _obj({"error": _obj({"code": _STR, "message": _STR}, ["code", "message"])}, ["error"]),
            },
        },
    }
