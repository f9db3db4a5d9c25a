"""Failed-login limiting: an in-memory token bucket per key (an email, a client address).

Each key starts with ``burst`` allowed failures; one comes back every
``refill_seconds``. When a key has none left, :meth:`FailureLimiter.check`
refuses with :class:`~vault.errors.RateLimited` before the password is even
hashed, so a guesser cannot use the authority to burn CPU either. Buckets live
in one process: with several authority nodes a guesser gets ``burst`` tries
per node, which is still a handful per window. The table is bounded; when full,
the oldest buckets are dropped (an attacker flooding keys only resets
buckets of keys that have not failed recently).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from vault.errors import RateLimited

__all__ = ["FailureLimiter", "login_rate_limited"]


def login_rate_limited(retry_after: int) -> RateLimited:
    """Too many failed logins; ``retry_after`` is whole seconds until one more try is allowed."""
    return RateLimited(f"too many failed logins; try again in {retry_after} seconds", retry_after=retry_after)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailureLimiter:
    def __init__(self, *, burst: int = 5, refill_seconds: float = 60.0, max_keys: int = 100_000) -> None:
        self._burst = burst
        self._refill = refill_seconds
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) / self._refill)
        bucket.updated = now
        if bucket.tokens >= self._burst:
            del self._buckets[key]
            return None
        return bucket

    def check(self, keys: list[str], now: float) -> None:
        """Raise :class:`~vault.errors.RateLimited` (with ``retry_after``) if any key has no failures left."""
        wait = 0.0
        for key in keys:
            bucket = self._bucket(key, now)
            if bucket is not None and bucket.tokens < 1:
                wait = max(wait, (1 - bucket.tokens) * self._refill)
        if wait > 0:
            raise login_rate_limited(max(1, math.ceil(wait)))

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            bucket = self._bucket(key, now) or _Bucket(float(self._burst), now)
            bucket.tokens = max(0.0, bucket.tokens - 1)
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def succeeded(self, keys: list[str]) -> None:
        # A successful login clears the user's bucket, not the address's:
        # one valid account must not unlock guessing at others from that address.
        for key in keys:
            self._buckets.pop(key, None)
