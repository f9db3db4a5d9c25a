"""The issuers' signing keys, cached with bounds; the fetching itself is a port (the web layer's, over TLS).

Per issuer, the last key set fetched is kept for ``max_age`` seconds. A JWT whose
``kid`` the cached set lacks makes the cache fetch again, but at most once every
``refetch_interval`` seconds per issuer, so a flood of JWTs with made-up kids costs
the issuer one request per interval, not one per JWT; a failed fetch counts as a
fetch for that bound too. Keys older than ``max_age`` are never used: when the issuer
cannot be reached and no fresh set is cached, every JWT of that issuer is refused
(fail closed). Rotation is followed without a restart: a new ``kid`` triggers a
refetch, and sets expire anyway. At most ``max_issuers`` issuers are cached (the least
recently used goes first) and at most ``MAX_KEYS`` keys per set are read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from vault.errors import InvalidToken, Unavailable, VaultError
from vault.types import Clock

from .workload_records import WorkloadIssuer

__all__ = ["MAX_KEYS", "JwksCache", "KeySetFetcher"]

MAX_KEYS = 64


class KeySetFetcher(Protocol):
    async def fetch(self, issuer: WorkloadIssuer) -> Mapping[str, Any]:
        """The issuer's JWKS document (its ``jwks_url``, or the one OIDC discovery names).

        Raises :class:`~vault.errors.Unavailable` when it cannot be fetched or is not a JWKS.
        """


@dataclass
class _Entry:
    keys: dict[str | None, dict[str, Any]]  # kid -> JWK (None: a key without a kid)
    fetched_at: float | None  # monotonic; None: never fetched successfully
    attempted_at: float
    parsed: dict[tuple[str | None, str], jwt.PyJWK] = field(default_factory=dict)


def _key_map(document: Mapping[str, Any]) -> dict[str | None, dict[str, Any]]:
    found = document.get("keys")
    if not isinstance(found, list):
        raise Unavailable("the issuer's key set has no 'keys' list")
    keys: dict[str | None, dict[str, Any]] = {}
    for jwk in found[:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        keys[kid if isinstance(kid, str) else None] = jwk
    return keys


class JwksCache:
    def __init__(
        self,
        fetcher: KeySetFetcher,
        *,
        max_age: float = 300.0,
        refetch_interval: float = 30.0,
        max_issuers: int = 256,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._max_age = max_age
        self._refetch_interval = refetch_interval
        self._max_issuers = max_issuers
        self._monotonic = monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._static: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # fetch attempts, for tests and metrics

    async def key(self, issuer: WorkloadIssuer, kid: str | None, algorithm: str) -> jwt.PyJWK:
        """The issuer's key for ``kid`` usable with ``algorithm``.

        :class:`InvalidToken` for a kid the issuer does not publish; :class:`Unavailable`
        when no fresh key set can be had.
        """
        if issuer.static_jwks is not None:
            # Parsed once per issuer row (a removed and re-added issuer has a new id).
            entry = self._static.get(issuer.id)
            if entry is None:
                entry = _Entry(_key_map(issuer.static_jwks), None, 0.0)
                self._static[issuer.id] = entry
                while len(self._static) > self._max_issuers:
                    self._static.popitem(last=False)
            return self._pick(entry, issuer, kid, algorithm)
        entry = await self._entry(issuer, kid)
        return self._pick(entry, issuer, kid, algorithm)

    def _fresh(self, entry: _Entry | None, now: float) -> bool:
        return entry is not None and entry.fetched_at is not None and now - entry.fetched_at < self._max_age

    def _has(self, entry: _Entry, kid: str | None) -> bool:
        return kid in entry.keys if kid is not None else len(entry.keys) == 1

    async def _entry(self, issuer: WorkloadIssuer, kid: str | None) -> _Entry:
        key = issuer.id
        entry = self._entries.get(key)
        now = self._monotonic()
        if entry is not None and self._fresh(entry, now) and self._has(entry, kid):
            self._entries.move_to_end(key)
            return entry
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # Whoever held the lock may have fetched what we need.
            entry = self._entries.get(key)
            now = self._monotonic()
            if entry is not None and self._fresh(entry, now) and self._has(entry, kid):
                return entry
            if entry is not None and now - entry.attempted_at < self._refetch_interval:
                if self._fresh(entry, now):
                    return entry  # the kid is unknown; _pick says so
                raise Unavailable(
                    f"no fresh signing keys of {issuer.issuer}: the last fetch failed; trying again within "
                    f"{self._refetch_interval:g} s"
                )
            entry = await self._fetch(issuer, entry, now)
        return entry

    async def _fetch(self, issuer: WorkloadIssuer, old: _Entry | None, now: float) -> _Entry:
        self.fetches += 1
        try:
            document = await self._fetcher.fetch(issuer)
            entry = _Entry(_key_map(document), self._monotonic(), now)
        except VaultError:
            # Remember the attempt (the refetch bound holds for failures too); stale keys are never used.
            failed = _Entry(old.keys if old else {}, old.fetched_at if old else None, now, old.parsed if old else {})
            self._store(issuer.id, failed)
            if self._fresh(failed, self._monotonic()):
                return failed
            raise
        self._store(issuer.id, entry)
        return entry

    def _store(self, key: str, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_issuers:
            old, _ = self._entries.popitem(last=False)
            self._locks.pop(old, None)

    def _pick(self, entry: _Entry, issuer: WorkloadIssuer, kid: str | None, algorithm: str) -> jwt.PyJWK:
        if kid is None:
            if len(entry.keys) != 1:
                raise InvalidToken("invalid workload JWT: it names no key ('kid') and the issuer publishes several")
            [(kid, _)] = entry.keys.items()
        jwk = entry.keys.get(kid)
        if jwk is None:
            raise InvalidToken(f"invalid workload JWT: {issuer.issuer} publishes no key with its 'kid'")
        if jwk.get("alg", algorithm) != algorithm:
            raise InvalidToken(f"invalid workload JWT: the issuer's key for its 'kid' is not for {algorithm}")
        parsed = entry.parsed.get((kid, algorithm))
        if parsed is None:
            try:
                parsed = jwt.PyJWK(jwk, algorithm)
            except jwt.PyJWTError:
                raise InvalidToken(
                    f"invalid workload JWT: the issuer's key for its 'kid' is not a {algorithm} key"
                ) from None
            entry.parsed[(kid, algorithm)] = parsed
        return parsed
