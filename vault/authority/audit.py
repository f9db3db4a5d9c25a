"""Recording the authority's decisions: one helper so every service fills events the same way."""

from __future__ import annotations

from typing import Any

from vault.types import RequestContext

from .interfaces import AuditSink, AuthorityEvent

__all__ = ["Auditor"]


class Auditor:
    """Writes :class:`AuthorityEvent`s with the request's address and id filled in.

    A decision that cannot be recorded is not acted on: :meth:`record` lets the
    sink's :class:`~vault.errors.Unavailable` propagate, so a token is not
    returned unless its minting is in the log. A state change records its event
    with :meth:`record_in`, inside the change's transaction (docs/audit.md).
    """

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def record(
        self,
        ctx: RequestContext[None],
        action: str,
        outcome: str,
        *,
        org: int | None = None,
        token_id: str | None = None,
        lineage: tuple[str, ...] = (),
        user_id: int | None = None,
        **detail: Any,
    ) -> None:
        """Record a decision through the group commit (reads, denials, failures)."""
        await self._sink.record(_event(ctx, action, outcome, org, token_id, lineage, user_id, detail))

    async def record_in(
        self,
        transaction: object,
        ctx: RequestContext[None],
        action: str,
        *,
        org: int | None = None,
        token_id: str | None = None,
        lineage: tuple[str, ...] = (),
        user_id: int | None = None,
        **detail: Any,
    ) -> None:
        """Record a state change's ``ok`` event in its own transaction (a ``before_commit``'s)."""
        await self._sink.record_in(transaction, _event(ctx, action, "ok", org, token_id, lineage, user_id, detail))


def _event(
    ctx: RequestContext[None],
    action: str,
    outcome: str,
    org: int | None,
    token_id: str | None,
    lineage: tuple[str, ...],
    user_id: int | None,
    detail: dict[str, Any],
) -> AuthorityEvent:
    return AuthorityEvent(
        action=action,
        outcome=outcome,
        org=org,
        token_id=token_id,
        lineage=lineage,
        actor=f"user:{user_id}" if user_id is not None else None,
        client_addr=ctx.client_addr,
        request_id=ctx.request_id,
        detail={k: v for k, v in detail.items() if v is not None},
    )
