"""Fetching, binding and caching discharges for third-party caveats.

Protocol (docs/api.md): ``POST <location>/.well-known/macfly/3p`` with
``{"ticket": b64, "binding_id": b64}`` and the caller's credentials; the third
party binds the discharge to the parent named by ``binding_id`` and answers
``201 {"discharge": "cv1_..."}``.

A discharge is cached per (location, ticket, binding id) until ``margin``
seconds (one minute) before its validity window closes. A discharge that was
used while cached is fetched again in the background ``lead`` seconds before
that point, so a steady caller never waits for the authority; one that nobody
used simply lapses. Concurrent callers wanting the same discharge share one
request, and the tickets of one token are fetched in parallel.

No wait is unbounded: a fetch that (through the credential it needs) asks for
the very discharge it is fetching fails at once instead of waiting on itself,
and a shared fetch is waited for at most ``wait`` seconds.

On a blocking transport (``http.blocking``: the CLI's one-shot commands) there is
nobody to share with and no loop to refresh in the background: discharges are
fetched one after another, in line, and asyncio is never imported (it is
imported inside the methods that need it, for that reason).
"""

from __future__ import annotations

import base64
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vault.errors import ConnectionFailed, InvalidToken, VaultError
from vault.macaroon import Macaroon, decode_token
from vault.macaroon.caveats import ThirdParty, ValidityWindow

from .http import HTTP

if TYPE_CHECKING:
    import asyncio

__all__ = ["AuthorizationFor", "Discharges", "discharge_expiry"]

AuthorizationFor = Callable[[str], Awaitable[str]]
"""``location -> Authorization header value`` for that third party; raises if the caller has none."""

DISCHARGE_PATH = "/.well-known/macfly/3p"
MAX_DISCHARGE_CHARS = 64 * 1024


def discharge_expiry(discharge: Macaroon) -> int | None:
    """The end of the narrowest validity window a discharge carries (``None`` if it carries none)."""
    ends = [c.not_after for c in discharge.unverified_caveats if isinstance(c, ValidityWindow)]
    return min(ends) if ends else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(eq=False)
class _Entry:
    discharge: Macaroon
    usable_until: float
    authorization: AuthorizationFor = field(repr=False)
    lead: float = 0.0
    used: bool = False
    refresher: asyncio.Task[None] | None = None


_Key = tuple[str, bytes, bytes]

# The discharges being fetched by the current task and the tasks it waits for.
_FETCHING: ContextVar[frozenset[_Key]] = ContextVar("cvault_discharges_fetching", default=frozenset())


class Discharges:
    """A cache of bound discharges; :meth:`close` cancels its background refreshes."""

    def __init__(
        self,
        http: HTTP,
        *,
        margin: float = 60.0,
        lead: float = 30.0,
        wait: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._margin = margin
        self._lead = lead
        self._wait = wait
        self._clock = clock
        self._cache: dict[_Key, _Entry] = {}
        self._inflight: dict[_Key, asyncio.Future[_Entry]] = {}
        self._closed = False

    async def for_token(
        self, token: Macaroon, authorization: AuthorizationFor, have: tuple[Macaroon, ...] = ()
    ) -> list[Macaroon]:
        """Bound discharges for every 3P caveat of ``token`` not already discharged by one in ``have``."""
        held = {d.nonce.kid for d in have}
        binding = token.binding_id()
        wanted = [c for c in token.third_party_tickets() if c.ticket not in held]
        if self._http.blocking:
            found = [await self.get(c, binding, authorization) for c in wanted]
        else:
            import asyncio

            found = await asyncio.gather(*(self.get(c, binding, authorization) for c in wanted))
        return [d for d in have if d.nonce.kid in {c.ticket for c in token.third_party_tickets()}] + list(found)

    async def get(self, caveat: ThirdParty, binding_id: bytes, authorization: AuthorizationFor) -> Macaroon:
        key: _Key = (caveat.location, caveat.ticket, binding_id)
        entry = self._cache.get(key)
        if entry is not None and self._clock() < entry.usable_until:
            entry.used = True
            return entry.discharge
        if key in _FETCHING.get():
            raise InvalidToken(
                f"getting the discharge from {caveat.location} needs that same discharge first: the credential "
                "sent to the authority is the token being discharged (are CVAULT_STORE_TOKEN and "
                "CVAULT_AUTH_TOKEN swapped?)"
            )
        if self._http.blocking:
            return (await self._fetch_and_store(key, authorization)).discharge
        return (await self._shared(key, authorization, caveat.location)).discharge

    async def _shared(self, key: _Key, authorization: AuthorizationFor, location: str) -> _Entry:
        """Join the fetch of ``key`` in flight, or start it; bounded by ``wait``."""
        import asyncio

        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_and_store(key, authorization))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self._wait)
        except TimeoutError:
            raise ConnectionFailed(
                f"no discharge from {location} after {self._wait:g} s; check that the authority is up"
            ) from None

    async def _fetch_and_store(self, key: _Key, authorization: AuthorizationFor) -> _Entry:
        # While `key` is being fetched here, a fetch it leads to that wants `key` again fails at once.
        marked = _FETCHING.set(_FETCHING.get() | {key})
        try:
            location, ticket, binding_id = key
            discharge = await self.fetch(location, ticket, binding_id, authorization)
        finally:
            _FETCHING.reset(marked)
        expiry = discharge_expiry(discharge)
        if expiry is None or self._margin == math.inf:
            # An infinite margin means "never cache": `cvault vault-token --sink` wants each bundle to
            # carry a discharge fetched for it, not one cached for part of its life (issue 29).
            usable_until = 0.0
        else:
            # A discharge shorter-lived than the margin (a test's, or an authority configured
            # for minutes) is still worth caching and refreshing: keep the last quarter of it.
            usable_until = expiry - min(self._margin, (expiry - self._clock()) / 4)
        lead = min(self._lead, max(0.0, usable_until - self._clock()) / 2)
        entry = _Entry(discharge, usable_until, authorization, lead=lead)
        old = self._cache.pop(key, None)
        if old is not None and old.refresher is not None:
            _cancel_unless_current(old.refresher)
        if entry.usable_until > self._clock() and not self._closed:
            self._cache[key] = entry
            if not self._http.blocking:
                import asyncio

                entry.refresher = asyncio.get_running_loop().create_task(self._refresh_later(key, entry))
        return entry

    async def fetch(self, location: str, ticket: bytes, binding_id: bytes, authorization: AuthorizationFor) -> Macaroon:
        """Ask ``location`` for a discharge of ``ticket`` bound to ``binding_id`` (no cache)."""
        reply = await self._http.request(
            "POST",
            location.rstrip("/") + DISCHARGE_PATH,
            authorization=await authorization(location),
            body={"ticket": _b64(ticket), "binding_id": _b64(binding_id)},
            idempotent=True,
        )
        text = reply.get("discharge") if isinstance(reply, dict) else None
        if not isinstance(text, str) or len(text) > MAX_DISCHARGE_CHARS:
            raise InvalidToken(f"{location} answered without a discharge")
        discharge = decode_token(text)
        if not discharge.is_proof or discharge.nonce.kid != ticket:
            raise InvalidToken(f"{location} answered with a discharge for another ticket")
        return discharge

    async def _refresh_later(self, key: _Key, entry: _Entry) -> None:
        import asyncio

        await asyncio.sleep(max(0.0, entry.usable_until - entry.lead - self._clock()))
        if self._cache.get(key) is not entry or not entry.used or self._closed:
            return
        try:
            await self._fetch_and_store(key, entry.authorization)
        except VaultError as exc:
            # The cached discharge stays usable until its cut-off; a caller after
            # that fetches synchronously and sees the error itself.
            import logging

            logging.getLogger("cvault.client").warning(
                "background refresh of the discharge from %s failed: %s (%s)", key[0], exc.message, exc.code
            )

    def cached(self) -> int:
        return len(self._cache)

    async def close(self) -> None:
        self._closed = True
        tasks = [e.refresher for e in self._cache.values() if e.refresher is not None]
        self._cache.clear()
        if not tasks:
            return
        import asyncio

        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _cancel_unless_current(task: asyncio.Task[None]) -> None:
    """Cancel a replaced entry's refresher, unless it is the one replacing it."""
    import asyncio

    if task is not asyncio.current_task():
        task.cancel()
