"""HTTP handlers of workload issuers and bindings (docs/workload-identity.md); decisions in ``vault.authority``.

Every route needs ``C`` on the org: an owner's session, or a bundle allowing ``C``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from vault.authority.session_secret import SESSION_PREFIX
from vault.authority.workload_jwt import ALGORITHMS
from vault.authority.workload_records import WorkloadBinding, WorkloadIssuer
from vault.authority.workloads import BindingRequest, IssuerRequest
from vault.errors import BadRequest, Unauthenticated
from vault.macaroon import mask_from_string, mask_to_string

from ..common import field, origin, read_json
from .handlers import _bearer, _bundle, _ctx, _path_id, _svc, refusals_audited

__all__ = ["add_workload_routes"]


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def issuer_json(i: WorkloadIssuer) -> dict[str, Any]:
    return {
        "id": i.id,
        "org": i.org_id,
        "issuer": i.issuer,
        "jwks_url": i.jwks_url,
        "static_keys": len(i.static_jwks["keys"]) if i.static_jwks else 0,
        "algorithms": list(i.algorithms),
        "created_at": _time(i.created_at),
    }


def binding_json(b: WorkloadBinding) -> dict[str, Any]:
    return {
        "id": b.id,
        "org": b.org_id,
        "name": b.name,
        "issuer": b.issuer,
        "issuer_id": b.issuer_id,
        "audience": b.audience,
        "claims": b.claims,
        "mask": mask_to_string(b.mask),
        "vaults": list(b.vaults) if b.vaults is not None else None,
        "secrets": list(b.secrets) if b.secrets is not None else None,
        "ttl": b.ttl,
        "created_at": _time(b.created_at),
    }


async def _caller(request: web.Request, org: int, operation: str) -> tuple[int, int]:
    """The caller's user id and the mask they may grant in ``org`` (``C`` required)."""
    svc = _svc(request)
    credential = _bearer(request)
    if credential is None:
        raise Unauthenticated("send an owner's session ('Bearer cvs_...') or a bundle allowing 'C' on the org")
    if credential.startswith(SESSION_PREFIX):
        session = await svc.sessions.authenticate(credential)
        allowed = await svc.workloads.allowed_mask(session.user_id, org, None, None, operation)
        return session.user_id, allowed
    principal = await svc.verifier.verify(_bundle(request), now=int(svc.clock()))
    allowed = await svc.workloads.allowed_mask(principal.user_id, org, principal, origin(request).client_ip, operation)
    return principal.user_id, allowed


def _optional_list(data: dict[str, Any], name: str) -> list[Any] | None:
    value = data.get(name)
    if value is not None and not isinstance(value, list):
        raise BadRequest(f"field {name!r} must be a list")
    return value


@refusals_audited("workload.issuer.add")
async def add_issuer(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    user_id, allowed = await _caller(request, org, "workloads.manage")
    data = await read_json(request)
    jwks = data.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise BadRequest("field 'jwks' must be a JWKS object")
    algorithms = _optional_list(data, "algorithms")
    issuer = await _svc(request).workloads.add_issuer(
        user_id,
        org,
        IssuerRequest(
            issuer=field(data, "issuer", str),
            jwks_url=field(data, "jwks_url", str, required=False),
            jwks=jwks,
            algorithms=tuple(algorithms) if algorithms is not None else ALGORITHMS,
        ),
        _ctx(request),
        allowed,
    )
    return web.json_response(issuer_json(issuer), status=201)


@refusals_audited("workload.issuers.list")
async def list_issuers(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    await _caller(request, org, "workloads.list")
    issuers = await _svc(request).workloads.issuers(org)
    return web.json_response({"issuers": [issuer_json(i) for i in issuers]})


@refusals_audited("workload.issuer.remove")
async def remove_issuer(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    user_id, _ = await _caller(request, org, "workloads.manage")
    removed = await _svc(request).workloads.remove_issuer(user_id, org, request.match_info["id"], _ctx(request))
    return web.json_response({"revoked_bindings": removed})


@refusals_audited("workload.bind")
async def bind(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    user_id, allowed = await _caller(request, org, "workloads.manage")
    data = await read_json(request)
    try:
        mask = mask_from_string(field(data, "mask", str))
    except ValueError as exc:
        raise BadRequest(f"field 'mask': {exc}") from None
    claims = data.get("claims")
    binding = await _svc(request).workloads.bind(
        user_id,
        org,
        BindingRequest(
            name=field(data, "name", str),
            issuer=field(data, "issuer", str),
            claims=claims if isinstance(claims, dict) else {},
            mask=mask,
            audience=field(data, "audience", str, required=False),
            vaults=_optional_list(data, "vaults"),
            secrets=_optional_list(data, "secrets"),
            ttl=field(data, "ttl", int, required=False),
        ),
        _ctx(request),
        allowed,
    )
    return web.json_response(binding_json(binding), status=201)


@refusals_audited("workload.bindings.list")
async def list_bindings(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    await _caller(request, org, "workloads.list")
    bindings = await _svc(request).workloads.bindings(org)
    return web.json_response({"bindings": [binding_json(b) for b in bindings]})


@refusals_audited("workload.binding.show")
async def show_binding(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    await _caller(request, org, "workloads.list")
    binding = await _svc(request).workloads.binding(org, request.match_info["binding"])
    return web.json_response(binding_json(binding))


@refusals_audited("workload.unbind")
async def unbind(request: web.Request) -> web.StreamResponse:
    org = _path_id(request, "org")
    user_id, _ = await _caller(request, org, "workloads.manage")
    binding_id = await _svc(request).workloads.unbind(user_id, org, request.match_info["binding"], _ctx(request))
    return web.json_response({"revoked": binding_id})


def add_workload_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/orgs/{org}/workload-issuers", add_issuer)
    r.add_get("/v1/orgs/{org}/workload-issuers", list_issuers)
    r.add_delete("/v1/orgs/{org}/workload-issuers/{id}", remove_issuer)
    r.add_post("/v1/orgs/{org}/workloads", bind)
    r.add_get("/v1/orgs/{org}/workloads", list_bindings)
    r.add_get("/v1/orgs/{org}/workloads/{binding}", show_binding)
    r.add_delete("/v1/orgs/{org}/workloads/{binding}", unbind)
