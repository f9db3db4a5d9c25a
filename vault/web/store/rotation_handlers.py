"""HTTP handlers of managed rotation (docs/rotation.md, routes in docs/api.md), declared in :data:`OPERATIONS`:
operators' policies and the steps rotators report. Parsing here, decisions in :mod:`vault.store.rotation`."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from vault.macaroon import CONTROL, READ, WRITE
from vault.names import check_secret_name, check_value
from vault.store.caller import Caller
from vault.store.rotation_models import Claim, RotationPolicy, RotationStatus
from vault.types import RequestContext

from ..contract import Operation, Response, decode_body, decode_json, read_body, reply
from ..metrics import METRICS_KEY
from .guard import guarded
from .handlers import secret_operation
from .messages import (
    ClaimBody,
    ClaimReply,
    ClaimsReply,
    CommandPolicy,
    CreateStep,
    PolicyBody,
    PostgresPolicy,
    Promoted,
    PromoteStep,
    RotationReply,
    RotationsReply,
    SetStep,
    StepDone,
    StepFailure,
    StepReport,
    TestStep,
    VaultPath,
    Written,
)
from .services import services_of

__all__ = ["OPERATIONS", "rotation_reply"]

_VAULT = "/v1/orgs/{org}/vaults/{vault}"
R = TypeVar("R", bound=RotationReply)


def rotation_reply(s: RotationStatus, kind: type[R] = RotationReply, **extra: Any) -> R:  # type: ignore[assignment]
    """``s`` as its reply (``kind``: :class:`ClaimReply`, with ``extra`` its further fields)."""
    p = s.policy
    return kind(
        vault=s.vault,
        name=s.name,
        target=p.target,
        strategy=p.strategy,
        every_seconds=p.every_seconds,
        admin_secret=p.admin_secret,
        hook=p.hook,
        password_length=p.password_length,
        enabled=s.enabled,
        next_due_at=s.next_due_at,
        holder=s.holder,
        lease_expires_at=s.lease_expires_at,
        step=s.step,
        pending_version=s.pending_version,
        attempt=s.attempt,
        rotations=s.rotations,
        last_success_at=s.last_success_at,
        last_rotated=s.last_rotated,
        last_failure_at=s.last_failure_at,
        last_failure=s.last_failure,
        **extra,
    )


def _claim_reply(c: Claim) -> ClaimReply:
    return rotation_reply(c.status, ClaimReply, connection=c.connection, problem=c.problem)


def _count(request: web.Request, step: str, outcome: str) -> None:
    metrics = request.app.get(METRICS_KEY)
    if metrics is not None:
        metrics.rotation_steps.labels(step, outcome).inc()


# -- operators -------------------------------------------------------------------------------


@guarded("rotation.set_policy", CONTROL)
async def set_policy(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body: PostgresPolicy | CommandPolicy = await decode_body(request, PolicyBody)  # type: ignore[arg-type]
    if isinstance(body, PostgresPolicy):
        target, admin_secret, hook = "postgres", check_secret_name(body.admin_secret), None
    else:
        target, admin_secret, hook = "command", None, body.hook
    policy = RotationPolicy(
        target=target,
        strategy=body.strategy or "single",
        every_seconds=body.every_seconds,
        admin_secret=admin_secret,
        hook=hook,
        password_length=body.password_length,
    )
    m = request.match_info
    status = await services_of(request).rotation.set(ctx, m["vault"], m["name"], policy)
    return reply(rotation_reply(status))


@guarded("rotation.show", READ)
async def show(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return reply(rotation_reply(await services_of(request).rotation.show(ctx, m["vault"], m["name"])))


@guarded("rotation.list", READ, secrets_later=True)
async def list_policies(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    found = await services_of(request).rotation.statuses(ctx, request.match_info["vault"])
    return reply(RotationsReply(rotations=[rotation_reply(s) for s in found]))


@guarded("rotation.disable", CONTROL)
async def disable(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return reply(rotation_reply(await services_of(request).rotation.disable(ctx, m["vault"], m["name"])))


@guarded("rotation.now", WRITE)
async def rotate_now(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return reply(rotation_reply(await services_of(request).rotation.rotate_now(ctx, m["vault"], m["name"])))


# -- rotators ----------------------------------------------------------------------------------


@guarded("rotation.claim", WRITE, secrets_later=True)
async def claim(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    body = await decode_body(request, ClaimBody)
    claims = await services_of(request).rotation.claim(
        ctx, request.match_info["vault"], holder=body.holder, limit=body.limit, lease_seconds=body.lease_seconds
    )
    return reply(ClaimsReply(rotations=[_claim_reply(c) for c in claims]))


@guarded("rotation.step", WRITE)
async def step(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    """One step of a leased rotation, or (with ``error``) its failure. Audited as ``rotation.step.<step>``."""
    raw = await read_body(request)
    vault, secret = request.match_info["vault"], request.match_info["name"]
    rotation = services_of(request).rotation
    if decode_json(raw, StepReport).error is not None:
        failure = decode_json(raw, StepFailure)
        ctx = ctx._replace(operation=f"rotation.step.{failure.step}")
        status = await rotation.fail(ctx, vault, secret, holder=failure.holder, step=failure.step, reason=failure.error)
        _count(request, failure.step, "error")
        return reply(rotation_reply(status))
    body: CreateStep | SetStep | TestStep | PromoteStep = decode_json(raw, StepDone)  # type: ignore[arg-type]
    name = str(body.__struct_config__.tag)
    ctx = ctx._replace(operation=f"rotation.step.{name}")
    done: Written | Promoted | RotationReply
    if isinstance(body, CreateStep):
        value = check_value(body.value)
        written = await rotation.create(
            ctx, vault, secret, holder=body.holder, value=value, lease_seconds=body.lease_seconds
        )
        done = Written(name=secret, version=written.version, stage=written.stage)
    elif isinstance(body, PromoteStep):
        current, previous = await rotation.promote(
            ctx, vault, secret, holder=body.holder, pending_version=body.pending_version
        )
        done = Promoted(name=secret, current=current, previous=previous)
    else:
        status = await rotation.advance(
            ctx,
            vault,
            secret,
            holder=body.holder,
            step=name,
            pending_version=body.pending_version,
            lease_seconds=body.lease_seconds,
        )
        done = rotation_reply(status)
    _count(request, name, "ok")
    return reply(done)


_STATUS = {200: Response(RotationReply)}
# A step answers what it did: the version it wrote (create), the promotion (promote), else the rotation's state.
_STEP = {200: Response((Written, Promoted, RotationReply))}

OPERATIONS: tuple[Operation, ...] = (
    secret_operation(
        "PUT",
        "/rotation/",
        set_policy,
        "rotation.set_policy",
        "Rotate the secret on a schedule",
        body=PolicyBody,
        responses=_STATUS,
    ),
    secret_operation(
        "GET", "/rotation/", show, "rotation.show", "The secret's rotation policy and state", responses=_STATUS
    ),
    secret_operation(
        "DELETE", "/rotation/", disable, "rotation.disable", "Stop rotating the secret", responses=_STATUS
    ),
    secret_operation(
        "POST", "/rotate/", rotate_now, "rotation.now", "Make the secret's rotation due now", responses=_STATUS
    ),
    Operation(
        method="GET",
        route=_VAULT + "/rotations",
        handler=list_policies,
        id="rotation.list",
        summary="The vault's rotation policies",
        path=VaultPath,
        responses={200: Response(RotationsReply)},
        security=("bundle",),
    ),
    Operation(
        method="POST",
        route=_VAULT + "/rotations/claim",
        handler=claim,
        id="rotation.claim",
        summary="Lease due rotations (rotators)",
        path=VaultPath,
        body=ClaimBody,
        responses={200: Response(ClaimsReply)},
        security=("bundle",),
    ),
    secret_operation(
        "POST",
        "/rotation-step/",
        step,
        "rotation.step",
        "Report a step of a leased rotation, or its failure (rotators)",
        body=(StepFailure, StepDone),
        responses=_STEP,
    ),
)
