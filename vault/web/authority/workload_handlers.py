"""HTTP handlers of workload issuers and bindings (docs/workload-identity.md); decisions in ``vault.authority``.

Every route needs ``C`` on the org: an owner's session, or a bundle allowing ``C``.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta

from vault.authority.session_secret import SESSION_PREFIX
from vault.authority.workload_jwt import ALGORITHMS
from vault.authority.workload_records import WorkloadBinding, WorkloadIssuer
from vault.authority.workloads import BindingRequest, IssuerRequest
from vault.errors import Unauthenticated
from vault.macaroon import mask_to_string

from ..common import origin
from ..contract import Operation, Response, decode_body, decode_params, reply
from . import messages as msg
from .handlers import _bearer, _bundle, _ctx, _mask, _svc, _time, refusals_audited

__all__ = ["OPERATIONS"]


def issuer_reply(i: WorkloadIssuer) -> msg.Issuer:
    return msg.Issuer(
        id=i.id,
        org=i.org_id,
        issuer=i.issuer,
        jwks_url=i.jwks_url,
        static_keys=len(i.static_jwks["keys"]) if i.static_jwks else 0,
        algorithms=list(i.algorithms),
        created_at=_time(i.created_at),
    )


def binding_reply(b: WorkloadBinding) -> msg.Binding:
    return msg.Binding(
        id=b.id,
        org=b.org_id,
        name=b.name,
        issuer=b.issuer,
        issuer_id=b.issuer_id,
        audience=b.audience,
        claims=b.claims,
        mask=mask_to_string(b.mask),
        vaults=list(b.vaults) if b.vaults is not None else None,
        secrets=list(b.secrets) if b.secrets is not None else None,
        ttl=b.ttl,
        created_at=_time(b.created_at),
    )


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


def _org(request: web.Request) -> int:
    return decode_params(request.match_info, msg.OrgPath, "path").org


@refusals_audited("workload.issuer.add")
async def add_issuer(request: web.Request) -> web.StreamResponse:
    org = _org(request)
    user_id, allowed = await _caller(request, org, "workloads.manage")
    body = await decode_body(request, msg.IssuerBody)
    issuer = await _svc(request).workloads.add_issuer(
        user_id,
        org,
        IssuerRequest(
            issuer=body.issuer,
            jwks_url=body.jwks_url,
            jwks={"keys": body.jwks.keys} if body.jwks is not None else None,
            algorithms=tuple(body.algorithms) if body.algorithms is not None else ALGORITHMS,
        ),
        _ctx(request),
        allowed,
    )
    return reply(issuer_reply(issuer), status=201)


@refusals_audited("workload.issuers.list")
async def list_issuers(request: web.Request) -> web.StreamResponse:
    org = _org(request)
    await _caller(request, org, "workloads.list")
    issuers = await _svc(request).workloads.issuers(org)
    return reply(msg.IssuerList(issuers=[issuer_reply(i) for i in issuers]))


@refusals_audited("workload.issuer.remove")
async def remove_issuer(request: web.Request) -> web.StreamResponse:
    path = decode_params(request.match_info, msg.IssuerPath, "path")
    user_id, _ = await _caller(request, path.org, "workloads.manage")
    removed = await _svc(request).workloads.remove_issuer(user_id, path.org, path.id, _ctx(request))
    return reply(msg.RevokedBindings(revoked_bindings=removed))


@refusals_audited("workload.bind")
async def bind(request: web.Request) -> web.StreamResponse:
    org = _org(request)
    user_id, allowed = await _caller(request, org, "workloads.manage")
    body = await decode_body(request, msg.BindingBody)
    mask = _mask(body.mask)
    binding = await _svc(request).workloads.bind(
        user_id,
        org,
        BindingRequest(
            name=body.name,
            issuer=body.issuer,
            claims=body.claims,
            mask=mask,
            audience=body.audience,
            vaults=body.vaults,
            secrets=body.secrets,
            ttl=body.ttl,
        ),
        _ctx(request),
        allowed,
    )
    return reply(binding_reply(binding), status=201)


@refusals_audited("workload.bindings.list")
async def list_bindings(request: web.Request) -> web.StreamResponse:
    org = _org(request)
    await _caller(request, org, "workloads.list")
    bindings = await _svc(request).workloads.bindings(org)
    return reply(msg.BindingList(bindings=[binding_reply(b) for b in bindings]))


@refusals_audited("workload.binding.show")
async def show_binding(request: web.Request) -> web.StreamResponse:
    path = decode_params(request.match_info, msg.BindingPath, "path")
    await _caller(request, path.org, "workloads.list")
    binding = await _svc(request).workloads.binding(path.org, path.binding)
    return reply(binding_reply(binding))


@refusals_audited("workload.unbind")
async def unbind(request: web.Request) -> web.StreamResponse:
    path = decode_params(request.match_info, msg.BindingPath, "path")
    user_id, _ = await _caller(request, path.org, "workloads.manage")
    binding_id = await _svc(request).workloads.unbind(user_id, path.org, path.binding, _ctx(request))
    return reply(msg.Unbound(revoked=binding_id))


# An owner's session, or a bundle allowing 'C' on the org.
_MANAGER = ("session", "bundle")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        route="/v1/orgs/{org}/workload-issuers",
        handler=add_issuer,
        id="addWorkloadIssuer",
        summary="Trust an OIDC issuer (keys by discovery, a JWKS URL, or static keys; not both)",
        path=msg.OrgPath,
        body=Annotated[msg.IssuerBody, Meta(extra_json_schema=msg.ISSUER_RULES)],
        responses={201: Response(msg.Issuer)},
        security=_MANAGER,
    ),
    Operation(
        method="GET",
        route="/v1/orgs/{org}/workload-issuers",
        handler=list_issuers,
        id="listWorkloadIssuers",
        summary="The issuers the organization trusts",
        path=msg.OrgPath,
        responses={200: Response(msg.IssuerList)},
        security=_MANAGER,
    ),
    Operation(
        method="DELETE",
        route="/v1/orgs/{org}/workload-issuers/{id}",
        handler=remove_issuer,
        id="removeWorkloadIssuer",
        summary="Stop trusting an issuer; its bindings are deleted and revoked on the feed",
        path=msg.IssuerPath,
        responses={200: Response(msg.RevokedBindings)},
        security=_MANAGER,
    ),
    Operation(
        method="POST",
        route="/v1/orgs/{org}/workloads",
        handler=bind,
        id="bindWorkload",
        summary="Bind a workload: which JWTs of an issuer discharge the org caveat, with which mask and scope",
        path=msg.OrgPath,
        body=msg.BindingBody,
        responses={201: Response(msg.Binding)},
        security=_MANAGER,
    ),
    Operation(
        method="GET",
        route="/v1/orgs/{org}/workloads",
        handler=list_bindings,
        id="listWorkloads",
        summary="The organization's workload bindings",
        path=msg.OrgPath,
        responses={200: Response(msg.BindingList)},
        security=_MANAGER,
    ),
    Operation(
        method="GET",
        route="/v1/orgs/{org}/workloads/{binding}",
        handler=show_binding,
        id="showWorkload",
        summary="One binding, by name or id",
        path=msg.BindingPath,
        responses={200: Response(msg.Binding)},
        security=_MANAGER,
    ),
    Operation(
        method="DELETE",
        route="/v1/orgs/{org}/workloads/{binding}",
        handler=unbind,
        id="unbindWorkload",
        summary="Delete a binding and revoke it on the feed (stores refuse its discharges within a second)",
        path=msg.BindingPath,
        responses={200: Response(msg.Unbound)},
        security=_MANAGER,
    ),
)
