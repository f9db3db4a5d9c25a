"""The authority's OpenAPI 3 document (hand-written; a test checks it names every route)."""

from __future__ import annotations

from typing import Any

__all__ = ["spec"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_SESSION: list[dict[str, list[str]]] = [{"session": []}]
_BUNDLE: list[dict[str, list[str]]] = [{"bundle": []}]
_ANY: list[dict[str, list[str]]] = [{"session": []}, {"bundle": []}]
_FEED: list[dict[str, list[str]]] = [{"feed": []}]


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64"}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_MASK = {"type": "string", "pattern": "^[rwcdCa]+$", "description": "permission letters, e.g. rw"}
_ROLE = {"type": "string", "enum": ["owner", "operator", "reader", "auditor"]}
_ID = {**_INT, "minimum": 1, "maximum": 2**63 - 1}
_ORG_PATH = {"name": "org", "in": "path", "required": True, "schema": _ID}
_USER_PATH = {"name": "user_id", "in": "path", "required": True, "schema": _ID}
# Server constraints, as vault/authority/roles.py and accounts.py check them.
_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}$"}
_DISCHARGE_BODY = _obj(
    {"ticket": {"type": "string", "format": "byte"}, "binding_id": {"type": "string", "format": "byte"}},
    ["ticket", "binding_id"],
)


def _op(
    summary: str,
    status: int,
    reply: dict[str, Any] | None,
    *,
    body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 401, 403, 404, 409, 413, 429, 503),
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"description": "success"}
        if reply is None
        else {"description": "success", "content": {"application/json": {"schema": reply}}}
    }
    for code in errors:
        responses[str(code)] = {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "security": security or []}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


_CLAIMS = {
    "type": "object",
    "additionalProperties": _STR,
    "description": "claim name (or a '/' path into nested claims) -> pattern ('*' matches any run); 'sub' required",
}


def _workload_paths() -> dict[str, Any]:
    """Workload issuers and bindings (docs/workload-identity.md): a session or bundle with 'C' on the org."""
    issuer = _obj(
        {
            "id": {**_STR, "format": "uuid"},
            "org": _INT,
            "issuer": _STR,
            "jwks_url": {**_STR, "nullable": True},
            "static_keys": _INT,
            "algorithms": {"type": "array", "items": _STR},
            "created_at": _TIME,
        }
    )
    scope = {"type": "array", "items": _STR, "nullable": True}
    binding = _obj(
        {
            "id": {**_STR, "format": "uuid"},
            "org": _INT,
            "name": _STR,
            "issuer": _STR,
            "issuer_id": {**_STR, "format": "uuid"},
            "audience": _STR,
            "claims": _CLAIMS,
            "mask": _MASK,
            "vaults": scope,
            "secrets": scope,
            "ttl": _INT,
            "created_at": _TIME,
        }
    )
    algorithms = {"type": "array", "items": {"type": "string", "enum": ["RS256", "ES256", "EdDSA"]}}
    name = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"}
    binding_path = {"name": "binding", "in": "path", "required": True, "schema": _STR}
    issuer_path = {"name": "id", "in": "path", "required": True, "schema": {**_STR, "format": "uuid"}}
    return {
        "/v1/orgs/{org}/workload-issuers": {
            "post": _op(
                "Trust an OIDC issuer (keys by discovery, a JWKS URL, or static keys)",
                201,
                issuer,
                body=_obj(
                    {
                        "issuer": {**_STR, "description": "https:// URL, exactly as the JWTs' iss"},
                        "jwks_url": _STR,
                        "jwks": _obj({"keys": {"type": "array", "items": {"type": "object"}}}),
                        "algorithms": algorithms,
                    },
                    ["issuer"],
                ),
                security=_ANY,
                params=[_ORG_PATH],
            ),
            "get": _op(
                "The issuers the organization trusts",
                200,
                _obj({"issuers": {"type": "array", "items": issuer}}),
                security=_ANY,
                params=[_ORG_PATH],
            ),
        },
        "/v1/orgs/{org}/workload-issuers/{id}": {
            "delete": _op(
                "Stop trusting an issuer; its bindings are deleted and revoked on the feed",
                200,
                _obj({"revoked_bindings": {"type": "array", "items": _STR}}),
                security=_ANY,
                params=[_ORG_PATH, issuer_path],
            ),
        },
        "/v1/orgs/{org}/workloads": {
            "post": _op(
                "Bind a workload: which JWTs of an issuer discharge the org caveat, with which mask and scope",
                201,
                binding,
                body=_obj(
                    {
                        "name": name,
                        "issuer": {**_STR, "description": "the issuer's URL or id"},
                        "claims": _CLAIMS,
                        "mask": _MASK,
                        "audience": {**_STR, "description": "required aud (default: the authority's URL)"},
                        "vaults": {"type": "array", "items": _STR},
                        "secrets": {"type": "array", "items": _STR},
                        "ttl": {**_INT, "minimum": 1, "maximum": 3600},
                    },
                    ["name", "issuer", "claims", "mask"],
                ),
                security=_ANY,
                params=[_ORG_PATH],
            ),
            "get": _op(
                "The organization's workload bindings",
                200,
                _obj({"bindings": {"type": "array", "items": binding}}),
                security=_ANY,
                params=[_ORG_PATH],
            ),
        },
        "/v1/orgs/{org}/workloads/{binding}": {
            "get": _op("One binding, by name or id", 200, binding, security=_ANY, params=[_ORG_PATH, binding_path]),
            "delete": _op(
                "Delete a binding and revoke it on the feed (stores refuse its discharges within a second)",
                200,
                _obj({"revoked": _STR}),
                security=_ANY,
                params=[_ORG_PATH, binding_path],
            ),
        },
    }


def _accept_op() -> dict[str, Any]:
    op = _op(
        "Accept an invitation with its code: with a session of the invited email; or, with no account, first "
        "without a verification code (the authority mails one to the invited address: 202), then with it and a "
        "new password (creates the account)",
        200,
        _obj({"org": _INT, "slug": _STR, "role": _ROLE, "user_id": _INT}),
        body=_obj({"code": _STR, "verification": {**_STR, "nullable": True}, "password": _STR}, ["code"]),
        security=[{"session": []}, {}],
        params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}],
        errors=(400, 401, 404, 409, 413, 429, 503),
    )
    op["responses"]["202"] = {
        "description": "no session and no verification code: a message went to the invited address (the same reply "
        "whether or not it has an account)",
        "content": {"application/json": {"schema": _obj({"status": _STR, "message": _STR}, ["status", "message"])}},
    }
    return op


def spec(authority_url: str) -> dict[str, Any]:
    membership = _obj({"id": _INT, "slug": _STR, "role": _ROLE})
    member = _obj({"user_id": _INT, "email": _STR, "role": _ROLE})
    invitation = _obj({"id": _STR, "org": _INT, "slug": _STR, "email": _STR, "role": _ROLE, "expires_at": _TIME})
    token_info = _obj(
        {
            "id": _STR,
            "org": _INT,
            "kind": {"type": "string", "enum": ["permission", "service"]},
            "mask": _MASK,
            "parent": {"type": "string", "nullable": True},
            "lineage": {"type": "array", "items": _STR},
            "created_at": _TIME,
            "expires_at": _TIME,
            "revoked_at": _TIME,
        }
    )
    discharge = _obj({"discharge": _STR})
    paths: dict[str, Any] = {
        "/v1/sessions": {
            "post": _op(
                "Log in with email and password; returns a cvs_ session secret (shown once)",
                201,
                _obj({"session": _STR, "user_id": _INT, "expires_at": _TIME}),
                body=_obj({"email": _STR, "password": _STR}, ["email", "password"]),
            )
        },
        "/v1/sessions/current": {"delete": _op("Revoke the presented session", 204, None, security=_SESSION)},
        "/v1/me": {
            "get": _op(
                "The session's user and orgs",
                200,
                _obj({"user_id": _INT, "email": _STR, "orgs": {"type": "array", "items": membership}}),
                security=_SESSION,
            )
        },
        "/v1/orgs": {
            "post": _op(
                "Create an organization (the caller becomes its owner)",
                201,
                _obj({"id": _INT, "slug": _STR}),
                body=_obj({"slug": _SLUG}, ["slug"]),
                security=_SESSION,
            ),
            "get": _op(
                "The caller's organizations",
                200,
                _obj({"orgs": {"type": "array", "items": membership}}),
                security=_SESSION,
            ),
        },
        "/v1/orgs/{org}/members": {
            "get": _op(
                "Members of an organization (owners and auditors)",
                200,
                _obj({"members": {"type": "array", "items": member}}),
                security=_SESSION,
                params=[_ORG_PATH],
            ),
        },
        "/v1/orgs/{org}/invitations": {
            "post": _op(
                "Invite an email into the organization (owner only); the same reply whether or not it has an account",
                201,
                _obj({**invitation["properties"], "code": _STR}),
                body=_obj({"email": _STR, "role": _ROLE}, ["email", "role"]),
                security=_SESSION,
                params=[_ORG_PATH],
            ),
        },
        "/v1/invitations": {
            "get": _op(
                "Pending invitations of the session's email",
                200,
                _obj({"invitations": {"type": "array", "items": invitation}}),
                security=_SESSION,
            ),
        },
        "/v1/invitations/{id}/accept": {"post": _accept_op()},
        "/v1/orgs/{org}/members/{user_id}": {
            "patch": _op(
                "Change a member's role (owner only)",
                200,
                _obj({"user_id": _INT, "role": _ROLE}),
                body=_obj({"role": _ROLE}, ["role"]),
                security=_SESSION,
                params=[_ORG_PATH, _USER_PATH],
            ),
            "delete": _op(
                "Remove a member (owner only); their next org discharge is refused",
                204,
                None,
                security=_SESSION,
                params=[_ORG_PATH, _USER_PATH],
            ),
        },
        "/v1/tokens": {
            "post": _op(
                "Mint a permission token (mask never above the caller's role)",
                201,
                _obj({"token": _STR, "id": _STR, "expires_at": _TIME}),
                body=_obj(
                    {
                        "org": _ID,
                        "mask": {**_MASK, "nullable": True},
                        "ttl": {"type": "integer", "minimum": 1, "maximum": 90 * 24 * 3600, "nullable": True},
                    },
                    ["org"],
                ),
                security=_ANY,
            ),
            "get": _op(
                "The caller's tokens with times and lineage",
                200,
                _obj({"tokens": {"type": "array", "items": token_info}}),
                security=_SESSION,
            ),
        },
        "/v1/tokens/strip": {
            "post": _op(
                "Turn a permission token and its login discharge into a service token",
                201,
                _obj({"token": _STR, "id": _STR, "parent": _STR, "expires_at": _TIME}),
                security=_BUNDLE,
            )
        },
        "/v1/tokens/{id}/revoke": {
            "post": _op(
                "Revoke a token and every token stripped from it",
                200,
                _obj({"revoked": {"type": "array", "items": _STR}}),
                security=_SESSION,
                params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}],
            )
        },
        "/v1/revocations": {
            "get": _op(
                "Revoked token ids after sequence number `since`, for verifiers",
                200,
                _obj(
                    {
                        "revocations": {
                            "type": "array",
                            "items": _obj({"token_id": _STR, "seq": _INT, "revoked_at": _TIME}),
                        },
                        "next": _INT,
                    }
                ),
                params=[
                    {"name": "since", "in": "query", "schema": {**_INT, "minimum": 0, "maximum": 2**63 - 1}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "values above 1000 are read as 1000",
                        },
                    },
                ],
            )
        },
        "/v1/revocations/feed": {
            "get": _op(
                "The revocation feed stores follow (docs/revocation.md): events after `cursor`, "
                "waiting up to `wait` seconds for one",
                200,
                _obj(
                    {
                        "events": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "seq": _INT,
                                    "kind": {
                                        "type": "string",
                                        "enum": ["token", "session", "member_removed", "role_downgraded"],
                                    },
                                    "revoked_at": {"type": "string", "format": "date-time"},
                                    "token_id": {"type": "string", "format": "uuid"},
                                    "session_id": _INT,
                                    "org": _INT,
                                    "user_id": _INT,
                                },
                                ["seq", "kind", "revoked_at"],
                            ),
                        },
                        "cursor": _INT,
                    },
                    ["events", "cursor"],
                ),
                params=[
                    {"name": "cursor", "in": "query", "schema": {**_INT, "minimum": 0, "maximum": 2**63 - 1}},
                    {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 25}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                security=_FEED,
                errors=(400, 401, 503),
            )
        },
        "/login/.well-known/macfly/3p": {
            "post": _op(
                "Login discharger: a session of the ticket's user gets a bound UserID discharge",
                201,
                discharge,
                body=_DISCHARGE_BODY,
                security=_SESSION,
            )
        },
        "/org/.well-known/macfly/3p": {
            "post": _op(
                "Org discharger: a live membership check for a store ticket; or, with 'Bearer <JWT>', a workload's "
                "platform-signed JWT checked against the org's trusted issuers and bindings",
                201,
                discharge,
                body=_obj(
                    {
                        **_DISCHARGE_BODY["properties"],
                        "binding": {**_STR, "description": "with a JWT: the workload binding's name (optional)"},
                    },
                    ["ticket", "binding_id"],
                ),
                security=[{"bundle": []}, {"jwt": []}],
            )
        },
        **_workload_paths(),
        "/.well-known/cvault/keys": {
            "get": _op(
                "The authority's locations and unretired X25519 ticket public keys (newest first)",
                200,
                _obj({"location": _STR, "login": _obj({}), "org": _obj({})}),
                params=[
                    {
                        "name": "first_party",
                        "in": "query",
                        "required": False,
                        "description": "a store's X25519 public key (base64): the org keys come endorsed for it",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "nonce",
                        "in": "query",
                        "required": False,
                        "description": "with first_party: 32 hex digits, fresh per read, that the endorsements cover",
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
                    },
                ],
                errors=(400, 503),
            )
        },
        "/healthz": {"get": _op("The process is up", 200, _obj({"status": _STR}), errors=())},
        "/readyz": {"get": _op("Database reachable and keys loaded", 200, _obj({"status": _STR}), errors=(503,))},
        "/openapi.json": {"get": _op("This document", 200, {"type": "object"}, errors=())},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "cvault authority", "version": "1"},
        "servers": [{"url": authority_url}],
        "paths": paths,
        "components": {
            "schemas": {
                "Error": _obj({"error": _obj({"code": _STR, "message": _STR}, ["code", "message"])}, ["error"])
            },
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer", "description": "cvs_ session secret"},
                "bundle": {"type": "http", "scheme": "bearer", "description": "cv1_ token bundle"},
                "feed": {"type": "http", "scheme": "bearer", "description": "cvf_ revocation feed token"},
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "a workload's JWT"},
            },
        },
    }
