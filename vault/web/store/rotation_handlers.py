"""HTTP handlers of managed rotation (docs/rotation.md, routes in docs/api.md): operators' policies and the
steps rotators report. Parsing here, decisions in :mod:`vault.store.rotation`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from vault.errors import BadRequest
from vault.macaroon import CONTROL, READ, WRITE
from vault.names import check_secret_name, check_value
from vault.store.caller import Caller
from vault.store.rotation import MAX_CLAIM, MAX_LEASE
from vault.store.rotation_models import STEPS, Claim, RotationPolicy, RotationStatus
from vault.types import RequestContext

from ..common import field, read_json
from ..metrics import METRICS_KEY
from .guard import guarded
from .services import services_of

__all__ = ["add_routes", "status_json"]

_VAULT = "/v1/orgs/{org}/vaults/{vault}"
_NAME = "{name:[A-Za-z0-9._/-]+}"
DEFAULT_LEASE = 60


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def status_json(s: RotationStatus) -> dict[str, Any]:
    p = s.policy
    return {
        "vault": s.vault,
        "name": s.name,
        "target": p.target,
        "strategy": p.strategy,
        "every_seconds": p.every_seconds,
        "admin_secret": p.admin_secret,
        "hook": p.hook,
        "password_length": p.password_length,
        "enabled": s.enabled,
        "next_due_at": _time(s.next_due_at),
        "holder": s.holder,
        "lease_expires_at": _time(s.lease_expires_at),
        "step": s.step,
        "pending_version": s.pending_version,
        "attempt": s.attempt,
        "rotations": s.rotations,
        "last_success_at": _time(s.last_success_at),
        "last_rotated": s.last_rotated,
        "last_failure_at": _time(s.last_failure_at),
        "last_failure": s.last_failure,
    }


def _claim_json(c: Claim) -> dict[str, Any]:
    return {**status_json(c.status), "connection": c.connection, "problem": c.problem}


def _int(data: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    value = field(data, name, int, required=default is None)
    value = default if value is None else value
    assert value is not None
    if not low <= value <= high:
        raise BadRequest(f"field {name!r} must be between {low} and {high}")
    return int(value)


def _count(request: web.Request, step: str, outcome: str) -> None:
    metrics = request.app.get(METRICS_KEY)
    if metrics is not None:
        metrics.rotation_steps.labels(step, outcome).inc()


# -- operators -------------------------------------------------------------------------------


@guarded("rotation.set_policy", CONTROL)
async def set_policy(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    data = await read_json(request)
    admin = field(data, "admin_secret", str, required=False)
    hook = field(data, "hook", str, required=False)
    policy = RotationPolicy(
        target=field(data, "target", str),
        strategy=field(data, "strategy", str, required=False) or "single",
        every_seconds=_int(data, "every_seconds", None, 1, 10 * 365 * 86400 + 1),
        admin_secret=check_secret_name(admin) if admin is not None else None,
        hook=hook,
        password_length=_int(data, "password_length", 32, 1, 1024),
    )
    m = request.match_info
    status = await services_of(request).rotation.set(ctx, m["vault"], m["name"], policy)
    return web.json_response(status_json(status))


@guarded("rotation.show", READ)
async def show(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return web.json_response(status_json(await services_of(request).rotation.show(ctx, m["vault"], m["name"])))


@guarded("rotation.list", READ, secrets_later=True)
async def list_policies(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    found = await services_of(request).rotation.statuses(ctx, request.match_info["vault"])
    return web.json_response({"rotations": [status_json(s) for s in found]})


@guarded("rotation.disable", CONTROL)
async def disable(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return web.json_response(status_json(await services_of(request).rotation.disable(ctx, m["vault"], m["name"])))


@guarded("rotation.now", WRITE)
async def rotate_now(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    m = request.match_info
    return web.json_response(status_json(await services_of(request).rotation.rotate_now(ctx, m["vault"], m["name"])))


# -- rotators ----------------------------------------------------------------------------------


@guarded("rotation.claim", WRITE, secrets_later=True)
async def claim(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    data = await read_json(request)
    claims = await services_of(request).rotation.claim(
        ctx,
        request.match_info["vault"],
        holder=field(data, "holder", str),
        limit=_int(data, "limit", 10, 1, MAX_CLAIM),
        lease_seconds=_int(data, "lease_seconds", DEFAULT_LEASE, 1, MAX_LEASE),
    )
    return web.json_response({"rotations": [_claim_json(c) for c in claims]})


@guarded("rotation.step", WRITE)
async def step(request: web.Request, ctx: RequestContext[Caller]) -> web.StreamResponse:
    """One step of a leased rotation, or (with ``error``) its failure. Audited as ``rotation.step.<step>``."""
    data = await read_json(request)
    name = field(data, "step", str)
    if name not in STEPS:
        raise BadRequest(f"step must be one of {', '.join(STEPS)}")
    holder = field(data, "holder", str)
    error = field(data, "error", str, required=False)
    vault, secret = request.match_info["vault"], request.match_info["name"]
    rotation = services_of(request).rotation
    ctx = ctx._replace(operation=f"rotation.step.{name}")
    lease = _int(data, "lease_seconds", DEFAULT_LEASE, 1, MAX_LEASE)
    if error is not None:
        status = await rotation.fail(ctx, vault, secret, holder=holder, step=name, reason=error)
        _count(request, name, "error")
        return web.json_response(status_json(status))
    reply: dict[str, Any]
    if name == "create":
        value = check_value(field(data, "value", str))
        written = await rotation.create(ctx, vault, secret, holder=holder, value=value, lease_seconds=lease)
        reply = {"name": secret, "version": written.version, "stage": written.stage}
    elif name == "promote":
        version = _int(data, "pending_version", None, 1, 2**31 - 1)
        current, previous = await rotation.promote(ctx, vault, secret, holder=holder, pending_version=version)
        reply = {"name": secret, "current": current, "previous": previous}
    else:
        version = _int(data, "pending_version", None, 1, 2**31 - 1)
        reply = status_json(
            await rotation.advance(
                ctx, vault, secret, holder=holder, step=name, pending_version=version, lease_seconds=lease
            )
        )
    _count(request, name, "ok")
    return web.json_response(reply)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_put(_VAULT + "/rotation/" + _NAME, set_policy)
    r.add_get(_VAULT + "/rotation/" + _NAME, show)
    r.add_delete(_VAULT + "/rotation/" + _NAME, disable)
    r.add_post(_VAULT + "/rotate/" + _NAME, rotate_now)
    r.add_get(_VAULT + "/rotations", list_policies)
    r.add_post(_VAULT + "/rotations/claim", claim)
    r.add_post(_VAULT + "/rotation-step/" + _NAME, step)
