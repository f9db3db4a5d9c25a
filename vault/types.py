"""Types shared by every layer, defined once.

Time and randomness are parameters (STYLE.md): production passes ``time.time`` and ``os.urandom``, tests pass
their own. These aliases are what those parameters are typed as, wherever they appear. :class:`RequestContext`
is the one request context both domains' services take.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, Protocol, TypeAlias, TypeVar

__all__ = ["BeforeCommit", "Clock", "IPAddress", "IPNetwork", "Random", "RequestContext", "utc"]

Clock: TypeAlias = Callable[[], float]
"""Seconds since the epoch (``time.time`` in production); a monotonic clock is typed so too (``time.monotonic``).

Services that need "now" take one in their constructor and read it themselves; no domain calls ``time.time``,
``datetime.now`` or a module-level clock function.
"""


def utc(seconds: float) -> dt.datetime:
    """A :data:`Clock` reading as the aware UTC datetime that ``timestamptz`` columns take."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


Random: TypeAlias = Callable[[int], bytes]
"""``n`` random bytes (``os.urandom`` in production)."""

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

_Outcome = TypeVar("_Outcome", contravariant=True)


class BeforeCommit(Protocol[_Outcome]):
    """Called inside a state change's transaction, just before it commits; raising rolls the change back.

    ``transaction`` is the repository's open transaction (opaque to the domain): the
    service appends the change's audit event there (``AuditSink.record_in`` of the
    store and of the authority), so the event commits exactly when the change does.
    """

    def __call__(self, outcome: _Outcome, transaction: object, /) -> Awaitable[None]: ...


CallerT = TypeVar("CallerT")


class RequestContext(NamedTuple, Generic[CallerT]):
    """One request as the services and the audit log see it, built once by the web layer.

    Both domains fill where it came from (``client_addr``, ``client_ip``, ``request_id``). The store also fills
    the org and operation its route names and, once the bundle verified, ``caller`` (a
    :class:`vault.store.caller.Caller`; the store's services take ``RequestContext[Caller]``). The authority's
    services are told their user and org explicitly and take ``RequestContext[None]``.

    Immutable; a named tuple because every request builds one, and it is cheaper than a frozen dataclass.
    """

    client_addr: str | None = None
    request_id: str | None = None
    client_ip: IPAddress | None = None
    org_id: int | None = None
    operation: str | None = None
    caller: CallerT | None = None
    # The store token's id even when verification failed (taken from the unverified nonce), for auditing a refusal.
    token_id: str | None = None

    @property
    def verified_caller(self) -> CallerT:
        assert self.caller is not None, "service called without an authenticated caller"
        return self.caller
