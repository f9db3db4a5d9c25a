"""What every Vault API route shares: Vault's reply shapes, the token header, mounts, the guard.

Errors are ``{"errors": [...]}`` with ``Content-Type: application/json`` exactly
(hvac parses error bodies only then): 403 ``["permission denied"]`` for any
refused or missing token (plus ``"discharge expired"``, ``"token expired"`` or
``"token revoked"`` when that is why), 404 ``[]`` for anything missing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

from vault.errors import VaultError
from vault.macaroon import parse_bundle
from vault.store.mounts import mount_org
from vault.store.names import check_vault_name
from vault.store.tokens import key_id_from_kid

from ..common import origin, required_credential
from .guard import GuardedHandler, run_guarded
from .services import StoreServices, services_of

__all__ = [
    "envelope",
    "guard",
    "mount_of",
    "refusal_reason",
    "render_vault_error",
    "rfc3339",
    "token_org",
    "vault_credentials",
    "vault_json",
]

_JSON = "application/json"


def vault_json(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": hvac reads an error body only when the header is that string.
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": _JSON, "Cache-Control": "no-store"}
    )


def refusal_reason(code: str, message: str) -> str | None:
    """The one reason a refusal may give a Vault client: its bundle expired or was revoked.

    Both are about the caller's own bundle, and both tell its owner what to do (fetch a
    new one; ask why it was revoked); every other reason stays in the audit log.
    """
    if "revoked" in message and code in ("invalid_token", "discharge_required"):
        return "token revoked"
    if code == "discharge_required" and "expired" in message:
        return "discharge expired"
    if code == "unauthorized" and message.startswith("token expired"):
        return "token expired"
    return None


def render_vault_error(request: web.Request, status: int, code: str, message: str) -> web.StreamResponse:
    """Every error inside ``/vault``, in Vault's shape. Reasons for refusals go to the audit log only,
    but for an expired or revoked bundle (:func:`refusal_reason`)."""
    if status in (401, 403):
        reason = refusal_reason(code, message)
        return vault_json({"errors": ["permission denied", *([reason] if reason else [])]}, 403)
    if status == 404:
        return vault_json({"errors": []}, 404)
    if status == 405:
        return vault_json({"errors": ["unsupported operation"]}, 405)
    return vault_json({"errors": [message]}, status)


def envelope(request: web.Request, data: Any) -> dict[str, Any]:
    return {
        "request_id": origin(request).request_id or "",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


def rfc3339(value: dt.datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def vault_credentials(headers: Mapping[str, str]) -> str:
    """The bundle in ``X-Vault-Token``, else in ``Authorization: Bearer``."""
    return required_credential(headers, vault_token=True)


async def token_org(services: StoreServices, headers: Mapping[str, str]) -> int | None:
    """The org whose root key signed the request's store token, unverified: it only picks the org to verify in."""
    try:
        token = parse_bundle(vault_credentials(headers)).permission_token(services.tokens.location)
        key_id = key_id_from_kid(token.nonce.kid)
    except VaultError:
        return None
    root = services.keys.cached(key_id) or await services.keys.load(key_id)
    return root.org_id if root is not None else None


async def mount_of(request: web.Request, slug: str) -> int:
    """The org a mount's slug names for this request's token (:func:`vault.store.mounts.mount_org`)."""
    services = services_of(request)
    return mount_org(slug, await token_org(services, request.headers), await services.orgs.orgs_with_slug(slug))


async def guard(
    request: web.Request,
    handler: Any,
    operation: str,
    action: int,
    *,
    secret: str | None = None,
) -> web.StreamResponse:
    """Run a KV handler for ``<slug>/<vault>`` through the store's guard, with ``vault=`` and ``secret=``."""
    vault = check_vault_name(request.match_info["vault"])
    org_id = await mount_of(request, request.match_info["slug"])
    bound: GuardedHandler = partial(handler, vault=vault, secret=secret)
    return await run_guarded(
        request,
        bound,
        org_id=org_id,
        operation=operation,
        action=action,
        vault=vault,
        secret=secret,
        credentials_of=vault_credentials,
    )
