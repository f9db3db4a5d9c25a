"""Type aliases shared by every layer, defined once.

Time and randomness are parameters (STYLE.md): production passes ``time.time`` and ``os.urandom``, tests pass
their own. These aliases are what those parameters are typed as, wherever they appear.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["Clock", "IPAddress", "IPNetwork", "Random"]

Clock: TypeAlias = Callable[[], float]
"""Seconds since the epoch (``time.time`` in production)."""

Random: TypeAlias = Callable[[int], bytes]
"""``n`` random bytes (``os.urandom`` in production)."""

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
