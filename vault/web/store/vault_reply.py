"""What every Vault API route shares: Vault's reply shapes, the token header, mounts, the guard.

Errors are ``{"errors": [...]}`` with ``Content-Type: application/json`` exactly
(hvac parses error bodies only then): 403 ``["permission denied"]`` for any
refused or missing token (plus ``"discharge expired"``, ``"token expired"`` or
``"token revoked"`` when that is why), 404 ``[]`` for anything missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache, partial
from typing import Any

import msgspec
from aiohttp import web

from vault.errors import InvalidToken, NotFound, Unauthorized, VaultError
from vault.store.mounts import mount_org

from ..common import origin, required_credential
from .guard import Check, GuardedHandler, run_guarded
from .services import StoreServices, services_of
from .vault_messages import Envelope, VaultErrors

__all__ = [
    "envelope",
    "guard",
    "mount_of",
    "presented",
    "refusal_reason",
    "render_vault_error",
    "rfc3339",
    "slug_orgs",
    "token_org",
    "vault_credentials",
    "vault_json",
]

_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}
_ENCODER = msgspec.json.Encoder()


def vault_json(body: Any, status: int = 200) -> web.Response:
    """``body`` (a model of :mod:`.vault_messages`) as the reply.

    Exactly "application/json" (a bytes body gets no charset): hvac reads an error body only when the header
    is that string."""
    return web.Response(body=_ENCODER.encode(body), status=status, content_type=_JSON, headers=_NO_STORE)


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
        return vault_json(VaultErrors(errors=["permission denied", *([reason] if reason else [])]), 403)
    if status == 404:
        return vault_json(VaultErrors(errors=[]), 404)
    if status == 405:
        return vault_json(VaultErrors(errors=["unsupported operation"]), 405)
    return vault_json(VaultErrors(errors=[message]), status)


def envelope(request: web.Request, data: Any) -> Envelope[Any]:
    return Envelope(request_id=origin(request).request_id or "", data=data)


def rfc3339(value: dt.datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return _rfc3339_seconds(value)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=256)
def _rfc3339_seconds(value: int) -> str:
    # Every read formats its version's creation time: the same few secrets' times, over and over.
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat().replace("+00:00", "Z")


def vault_credentials(headers: Mapping[str, str]) -> str:
    """The bundle in ``X-Vault-Token``, else in ``Authorization: Bearer``."""
    return required_credential(headers, vault_token=True)


def presented(headers: Mapping[str, str]) -> str | None:
    """The bundle the request presents, or ``None`` (missing or malformed: the guard says which, and audits it)."""
    try:
        return vault_credentials(headers)
    except VaultError:
        return None


async def token_org(services: StoreServices, credentials: str | None) -> int | None:
    """The org whose root key signed the request's store token, unverified: it only picks the org to verify in."""
    return None if credentials is None else await services.tokens.claimed_org(credentials)


async def slug_orgs(services: StoreServices, slug: str, own: int | None) -> tuple[int, ...]:
    """The orgs enrolled under ``slug``, as far as they can change the answer to a token of org ``own``.

    A slug not in memory was enrolled in the last moments on another node, or (nearly always) never: the wait for
    the shared reload (at most one a second) is taken only when it could make the mount the token's own, that is
    when the token's org has no slug in memory yet. A request with no token, or with a token whose org is known
    under another slug, is Vault's 403 at once, without a second's wait per made-up slug."""
    ids = services.orgs.cached_orgs_with_slug(slug)
    if ids is not None:
        return ids
    if own is None or services.orgs.cached_slug_of(own) not in (None, slug):
        return ()
    return await services.orgs.orgs_with_slug(slug)


async def mount_of(request: web.Request, slug: str | None, credentials: str | None) -> int:
    """The org a mount names for this request's token: the slug's (``<slug>/<vault>``), or the token's own for a
    one-segment mount (``<vault>``). No such org is Vault's 403 for "no mount here"."""
    services = services_of(request)
    own = await token_org(services, credentials)
    if slug is None:
        if own is None:
            vault_credentials(request.headers)  # a missing token says so (still a 403 to Vault clients)
            raise InvalidToken()
        return own
    return mount_org(slug, own, await slug_orgs(services, slug, own))


async def guard(
    request: web.Request,
    handler: Any,
    operation: str,
    action: int,
    *,
    vault: str,
    slug: str | None,
    secret: str | None = None,
) -> web.StreamResponse:
    """Run a KV handler for ``<slug>/<vault>`` or ``<vault>`` (``slug`` ``None``) through the store's guard, with
    ``vault=`` and ``secret=``. A missing vault is Vault's 403 for a missing mount; a missing secret in it stays a
    404."""
    credentials = presented(request.headers)
    org_id = await mount_of(request, slug, credentials)
    bound: GuardedHandler = partial(handler, vault=vault, secret=secret)
    try:
        check = Check(
            org_id=org_id,
            operation=operation,
            action=action,
            vault=vault,
            secret=secret,
            # Read once above; a missing or malformed one is read again there, to be refused and audited.
            credentials_of=vault_credentials if credentials is None else lambda _headers: credentials,
        )
        return await run_guarded(request, bound, check)
    except NotFound:
        # Only after the token verified (the guard raises no NotFound before): the refusal is audited.
        if not await services_of(request).kv.has_vault(org_id, vault):
            raise Unauthorized(f"no vault {vault!r}") from None
        raise
