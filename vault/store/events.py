"""What the store makes of a request's context: its caveat access and the audit events it produces.

Every store service call takes a :class:`vault.types.RequestContext` whose caller is a :class:`Caller`.

One request leaves one audit event (a batch read: one per secret returned),
whatever its outcome: services record ``ok`` events themselves, before the
write commits or before the value is returned; the web layer records the
``denied``/``error`` event of a request that raised. Events never carry a
secret value or a whole token: ``token_id`` is the store token's id, ``actor``
and ``lineage`` come from the org discharge's attestations. A discharge a workload
obtained with its JWT makes ``actor`` ``workload:<label>``, ``lineage`` the binding's
id, and ``detail["workload"]`` its issuer, subject, binding and label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vault.audit.event import AuditEvent
from vault.macaroon import Access
from vault.types import RequestContext

from .caller import Caller

__all__ = ["SERVICE", "access_for", "audit_event"]

SERVICE = "store"


def access_for(
    ctx: RequestContext[Caller], now: int, action: int, *, vault: str | None = None, secret: str | None = None
) -> Access:
    """What this request asks of the caveats, for one vault and secret."""
    return Access(
        now=now,
        action=action,
        org_id=ctx.org_id,
        vault=vault,
        secret=secret,
        operation=ctx.operation,
        client_ip=ctx.client_ip,
    )


def audit_event(
    ctx: RequestContext[Caller],
    outcome: str,
    *,
    action: str | None = None,
    vault: str | None = None,
    secret: str | None = None,
    version: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """The request's audit event; the caller's token, lineage and actor once verified, else the unverified id."""
    caller = ctx.caller
    if caller is not None and caller.workload is not None:
        w = caller.workload
        who = {"issuer": w.issuer, "subject": w.subject, "binding": w.binding_id, "label": w.label}
        detail = {**(detail or {}), "workload": who}
    return AuditEvent(
        service=SERVICE,
        action=action or ctx.operation or "",
        outcome=outcome,
        org=ctx.org_id,
        vault=vault,
        secret=secret,
        version=version,
        token_id=caller.token_id if caller is not None else ctx.token_id,
        lineage=caller.lineage if caller is not None else (),
        actor=caller.actor if caller is not None else None,
        client_addr=ctx.client_addr,
        request_id=ctx.request_id,
        detail=detail or {},
    )
