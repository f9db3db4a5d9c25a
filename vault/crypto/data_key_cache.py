"""Unwrapped data keys, kept for the next read of the same version.

Every secret read needs its version's data key, stored wrapped under a KEK.
Unwrapping is deterministic: the same KEK version, key id and wrapped bytes
always give the same key (or always fail), so the cache is keyed by exactly
those and a hit returns what unwrapping again would. A hit also requires the
KEK version to be in the keyring the caller holds, so a retired KEK stops
opening anything at once, cached or not.

The cost is that up to ``max_size`` data keys stay in memory beside the KEKs
that could unwrap them anyway (docs/performance.md). Destroying a version
removes its ciphertext, which no cached key can bring back; the store also
clears the cache then.
"""

from __future__ import annotations

from .envelope import DataKey
from .keyring import Keyring, WrappedKey

__all__ = ["DataKeyCache"]


class DataKeyCache:
    """Data keys of one purpose by ``(key id, KEK version, wrapped bytes)``; the oldest entry leaves first."""

    __slots__ = ("_keys", "_max_size", "_purpose", "hits", "misses")

    def __init__(self, purpose: str, *, max_size: int = 4096) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._purpose = purpose
        self._max_size = max_size
        self._keys: dict[tuple[int, int, bytes], DataKey] = {}
        # Read by the metrics at scrape time (vault.web.metrics).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._keys)

    def unwrap(self, keyring: Keyring, key_id: int, wrapped: WrappedKey) -> DataKey:
        """The data key of row ``key_id``; raises :class:`~vault.errors.DecryptionError` as unwrapping does."""
        cache_key = (key_id, wrapped.kek_version, wrapped.wrapped)
        found = self._keys.get(cache_key)
        if found is not None and keyring.has_version(wrapped.kek_version):
            self.hits += 1
            return found
        self.misses += 1
        key = DataKey(keyring.unwrap_key(self._purpose, key_id, wrapped))
        if len(self._keys) >= self._max_size:
            del self._keys[next(iter(self._keys))]
        self._keys[cache_key] = key
        return key

    def clear(self) -> None:
        self._keys.clear()
