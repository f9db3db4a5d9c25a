"""Type aliases shared by every layer, defined once.

Time and randomness are parameters (STYLE.md): production passes ``time.time`` and ``os.urandom``, tests pass
their own. These aliases are what those parameters are typed as, wherever they appear.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias, TypeVar

__all__ = ["BeforeCommit", "Clock", "IPAddress", "IPNetwork", "Random"]

Clock: TypeAlias = Callable[[], float]
"""Seconds since the epoch (``time.time`` in production)."""

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
