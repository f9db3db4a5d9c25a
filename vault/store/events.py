"""The request context every store service call carries, and the audit events it produces.

One request leaves one audit event (a batch read: one per secret returned),
whatever its outcome: services record ``ok`` events themselves, before the
write commits or before the value is returned; the web layer records the
``denied``/``error`` event of a request that raised. Events never carry a
secret value or a whole token: ``token_id`` is the store token's id, ``actor``
and ``lineage`` come from the org discharge's attestations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from vault.audit.event import AuditEvent
from vault.macaroon import Access
from vault.types import IPAddress

from .caller import Caller

__all__ = ["SERVICE", "RequestContext"]

SERVICE = "store"


class RequestContext(NamedTuple):
    """What audit needs to know about a request; ``caller`` is set once the bundle verified.

    Immutable (a named tuple: every request builds one, and it is cheaper than a frozen dataclass).
    """

    org_id: int
    operation: str
    client_addr: str | None = None
    client_ip: IPAddress | None = None
    request_id: str | None = None
    caller: Caller | None = None
    # The store token's id even when verification failed (taken from the unverified nonce).
    token_id: str | None = None

    @property
    def verified_caller(self) -> Caller:
        assert self.caller is not None, "service called without an authenticated caller"
        return self.caller

    def access(self, now: int, action: int, *, vault: str | None = None, secret: str | None = None) -> Access:
        """What this request asks of the caveats, for one vault and secret."""
        return Access(
            now=now,
            action=action,
            org_id=self.org_id,
            vault=vault,
            secret=secret,
            operation=self.operation,
            client_addr=self.client_ip,
        )

    def event(
        self,
        outcome: str,
        *,
        action: str | None = None,
        vault: str | None = None,
        secret: str | None = None,
        version: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        caller = self.caller
        # Positional, in AuditEvent's field order: every request builds one.
        return AuditEvent(
            SERVICE,
            action or self.operation,
            outcome,
            self.org_id,
            vault,
            secret,
            version,
            caller.token_id if caller is not None else self.token_id,
            caller.lineage if caller is not None else (),
            caller.actor if caller is not None else None,
            self.client_addr,
            self.request_id,
            detail,
        )
