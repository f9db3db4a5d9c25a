"""Vault's JWT and Kubernetes logins: a workload trades its platform's JWT for a store bundle.

``POST /vault/v1/auth/jwt/login`` and ``/vault/v1/auth/kubernetes/login`` with
``{"role": "<org slug>/<binding name>", "jwt": "..."}``. The store mints a fresh
store token for the org (its own validity window no longer than an org
discharge), asks the authority's org discharger for its discharge with the JWT
(the authority verifies the JWT and the binding: docs/workload-identity.md; the
Kubernetes login is the same JWT check against the cluster's issuer, no
TokenReview), and answers Vault's ``auth`` block: ``client_token`` is the bundle,
``lease_duration`` the discharge's remaining life, ``renewable: false``, so Vault
Agent and OpenBao Agent log in again before it ends. The workload holds nothing
on disk but its platform's token.

These tokens are not recorded at the store (one per login); they die with their
window, and unbinding the workload stops their discharges through the revocation
feed. Every login, allowed or refused, leaves a ``vault.login`` audit event.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from vault.audit.event import AuditEvent
from vault.errors import BadRequest, InvalidToken, Unauthorized, Unavailable, VaultError
from vault.macaroon import ALL, Bundle, decode_token
from vault.macaroon.caveats import ValidityWindow
from vault.macaroon.cvault_caveats import WorkloadIdentity
from vault.store.events import SERVICE

from ..common import origin, read_capped
from ..contract import Operation, Response, decode_json, read_body
from .revocation_follower import client_tls
from .services import StoreServices, services_of
from .vault_messages import LoginAuth, LoginEnvelope, LoginPath, LoginRequest, LoginRole, VaultErrors
from .vault_reply import envelope, vault_json

__all__ = ["AUTH_OPERATIONS"]

_ROLE = re.compile(r"(?P<org>[a-z0-9][a-z0-9-]{1,62})/(?P<binding>[a-z0-9][a-z0-9_.-]{0,62})")
_DISCHARGE_PATH = "/org/.well-known/macfly/3p"
_MAX_REPLY_BYTES = 64 * 1024
_TIMEOUT = 10.0
# A compact JWS: three base64url parts (LoginRequest says so too). It is sent on as a header, where a control or
# non-ASCII character is a ValueError of the HTTP client (a 500), so anything else is refused here.
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _authority_base(services: StoreServices) -> str:
    """Where the store reaches the authority: the feed's host when configured apart (compose), else its URL."""
    feed = services.config.revocation_feed_url
    if feed and feed.endswith("/v1/revocations/feed"):
        return feed.removesuffix("/v1/revocations/feed")
    return services.config.authority_url.rstrip("/")


async def _org_of(services: StoreServices, name: str) -> int:
    """The org a role names: by its slug (as the Vault mounts are), else by its id."""
    ids = await services.orgs.orgs_with_slug(name)
    if len(ids) == 1:
        return ids[0]
    if not ids and name.isdigit() and len(name) <= 19 and 0 < int(name) < 2**63:
        return int(name)
    raise Unauthorized(f"role names organization {name!r}, which is not enrolled here (or not uniquely)")


async def _discharge(services: StoreServices, ticket: bytes, binding_id: bytes, jwt: str, binding: str) -> str:
    body = {
        "ticket": base64.b64encode(ticket).decode(),
        "binding_id": base64.b64encode(binding_id).decode(),
        "binding": binding,
    }
    connector = aiohttp.TCPConnector(ssl=client_tls(services.config.revocation_feed_ca_file))
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIMEOUT), connector=connector) as http,
            http.post(
                _authority_base(services) + _DISCHARGE_PATH,
                json=body,
                headers={"Authorization": f"Bearer {jwt}"},
                allow_redirects=False,
            ) as resp,
        ):
            raw = await read_capped(resp.content, _MAX_REPLY_BYTES)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"the authority is unreachable ({type(exc).__name__})") from None
    try:
        reply: Any = json.loads(raw) if len(raw) <= _MAX_REPLY_BYTES else None
    except ValueError:
        reply = None
    if status == 201 and isinstance(reply, dict) and isinstance(reply.get("discharge"), str):
        discharge: str = reply["discharge"]
        return discharge
    error = reply.get("error") if isinstance(reply, dict) else None
    reason = error.get("message") if isinstance(error, dict) else None
    if status in (401, 403):
        raise Unauthorized(f"the authority refused the workload: {reason or status}")
    raise Unavailable(f"the authority answered {status} to the workload's discharge")


def _record_role(raw: bytes, seen: dict[str, Any]) -> None:
    """The role a refused body names, for its audit event, when it is one."""
    try:
        role = msgspec.json.decode(raw, type=LoginRole).role
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return
    if isinstance(role, str) and _ROLE.fullmatch(role):
        seen["role"] = role


async def _login(request: web.Request, services: StoreServices, seen: dict[str, Any]) -> web.StreamResponse:
    """The login's reply; ``seen`` collects what the audit event records, refused or not."""
    raw = await read_body(request)
    try:
        data = decode_json(raw, LoginRequest)
    except BadRequest as exc:
        _record_role(raw, seen)
        if "$.jwt" in exc.message:
            raise BadRequest("jwt must be a signed JWT") from None
        if "$.role" in exc.message:
            raise BadRequest("role must be '<org slug>/<workload binding name>'") from None
        raise
    role, jwt = data.role, data.jwt
    # The model's patterns, whole (a pattern's $ also matches before a final newline).
    if not (match := _ROLE.fullmatch(role)):
        raise BadRequest("role must be '<org slug>/<workload binding name>'")
    seen["role"] = role
    if not _JWT.fullmatch(jwt):
        raise BadRequest("jwt must be a signed JWT")
    org_id = await _org_of(services, match["org"])
    seen["org"] = org_id
    root = await services.keys.root_key_for(org_id)
    if root is None:
        raise Unauthorized(f"organization {org_id} is not enrolled at this store")
    now = int(services.clock())
    ttl = services.config.org_discharge_ttl
    token = services.tokens.mint(root, org_id, ALL, [ValidityWindow(now - 5, now + ttl)])
    [caveat] = token.third_party_tickets(services.tokens.org_location)
    discharge = decode_token(await _discharge(services, caveat.ticket, token.binding_id(), jwt, match["binding"]))
    ends = [c.not_after for c in discharge.unverified_caveats if isinstance(c, ValidityWindow)]
    if not discharge.is_proof or discharge.nonce.kid != caveat.ticket or not ends:
        raise InvalidToken("the authority answered with a discharge for another ticket")
    found = [c for c in discharge.unverified_caveats if isinstance(c, WorkloadIdentity)]
    seen.update(token_id=token.token_id)
    if found:
        seen.update(workload=found[0].label, binding=found[0].binding_id)
    auth = LoginAuth(
        client_token=Bundle((token, discharge)).encode(),
        accessor="",
        policies=["default"],
        token_policies=["default"],
        metadata={"role": role, "workload": seen.get("workload", ""), "binding": seen.get("binding", "")},
        lease_duration=max(0, min(ends) - now),
        renewable=False,
        entity_id="",
        token_type="service",  # noqa: S106 (Vault's token type, not a secret)
        orphan=True,
        num_uses=0,
    )
    return vault_json(LoginEnvelope(request_id=envelope(request, None).request_id, auth=auth))


async def login(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    seen: dict[str, Any] = {}
    outcome, detail = "ok", {}
    try:
        response = await _login(request, services, seen)
    except VaultError as exc:
        outcome = "denied" if exc.status in (400, 401, 403, 404) else "error"
        detail = {"code": exc.code, "status": exc.status, "reason": exc.message}
        await _audit(request, services, outcome, seen, detail)
        raise
    await _audit(request, services, outcome, seen, detail)
    return response


async def _audit(
    request: web.Request, services: StoreServices, outcome: str, seen: dict[str, Any], detail: dict[str, Any]
) -> None:
    where = origin(request)
    method = request.match_info.get("method", "jwt")
    workload = seen.get("workload")
    await services.audit.record(
        AuditEvent(
            SERVICE,
            "vault.login",
            outcome,
            seen.get("org"),
            token_id=seen.get("token_id"),
            lineage=(seen["binding"],) if "binding" in seen else (),
            actor=f"workload:{workload}" if workload else None,
            client_addr=where.client_addr,
            request_id=where.request_id,
            detail={"method": method, "role": seen.get("role"), **detail},
        )
    )


AUTH_OPERATIONS: tuple[Operation, ...] = tuple(
    Operation(
        method=method,
        route="/vault/v1/auth/{method:jwt|kubernetes}/login",
        handler=login,
        id=f"vault.login_{method.lower()}",
        summary="Workload login {role: '<org slug>/<binding>', jwt}: auth.client_token is a store bundle",
        description="docs/workload-identity.md",
        path=LoginPath,
        body=LoginRequest,
        responses={200: Response(LoginEnvelope)},
        errors=(400, 403, 404, 405, 413, 429, 503),
        error_model=VaultErrors,
    )
    for method in ("POST", "PUT")
)
"""The JWT and Kubernetes logins (no token: the JWT is the credential)."""
