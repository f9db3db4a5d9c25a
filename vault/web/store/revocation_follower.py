"""The store's follower of the authority's revocation feed (docs/revocation.md).

One background task long-polls ``GET <authority>/v1/revocations/feed`` with
the store's feed token, from the cursor of its last reply, and hands each reply
to :class:`~vault.store.authority_revocations.AuthorityRevocations`, which the
verify path consults without I/O. A failed poll is logged (class name only, once
per burst) and retried after a short, growing pause; while the feed stays
unreachable the state's fail-closed rule applies. The poll after a failure does
not wait (``wait=0``, with a short timeout of its own): the feed answers it at
once, so the store counts the feed as fresh again within a retry pause (at most
a second) of the feed's return, not a long poll later. The cursor lives in memory: a
store that restarts reads the feed again from the start (it is small: one row per
revocation), so nothing revoked while it was down is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from vault.errors import ConfigError
from vault.store.authority_revocations import AuthorityRevocations

__all__ = ["MAX_WAIT", "RevocationFollower", "client_tls"]

log = logging.getLogger("cvault.store.revocations")

PAGE = 1000
MAX_WAIT = 25  # the longest long poll the authority grants (its MAX_FEED_WAIT)
MAX_REPLY_BYTES = 4 * 1024 * 1024  # a full page is ~200 KB
FIRST_SYNC_SECONDS = 5.0
SHORT_POLL_TIMEOUT = 5.0  # seconds for a poll that does not wait (the feed answers it at once)


def client_tls(ca_file: Path | None) -> ssl.SSLContext | bool:
    """Verified TLS always (https); a private CA when the operator names one (for the feed and the key list)."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError):
        raise ConfigError(f"CVAULT_REVOCATION_FEED_CA_FILE: cannot read CA certificates in {ca_file}") from None


class RevocationFollower:
    def __init__(
        self,
        *,
        feed_url: str,
        token: str,
        state: AuthorityRevocations,
        wait: int,
        ca_file: Path | None = None,
        retry_delays: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0),
    ) -> None:
        self._url = feed_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._state = state
        self._wait = wait
        self._ssl = client_tls(ca_file)
        self._delays = retry_delays
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._failures = 0

    async def start(self) -> None:
        """Start following; wait up to a few seconds for the first reply (without it, only fresh discharges pass)."""
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._wait + 10), connector=aiohttp.TCPConnector(ssl=self._ssl)
        )
        self._task = asyncio.create_task(self._run(), name="revocation-feed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), FIRST_SYNC_SECONDS)
        if not self._synced.is_set():
            log.warning("revocation feed: no reply from %s yet; honouring only fresh org discharges", self._url)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        wait = 0  # the first read pages through everything without waiting
        while True:
            try:
                full = await self._poll(wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                if self._failures == 1 or self._failures % 100 == 0:
                    log.warning("revocation feed: poll failed (%s); retrying", _name(exc))
                await asyncio.sleep(self._delays[min(self._failures, len(self._delays)) - 1])
                wait = 0  # the feed answers a poll that does not wait at once: fresh again as soon as it is back
                continue
            if self._failures:
                log.info("revocation feed: recovered after %d failure(s)", self._failures)
            self._failures = 0
            wait = 0 if full else self._wait

    async def _poll(self, wait: int) -> bool:
        """One request; returns True when the reply was a full page (more is waiting)."""
        assert self._http is not None
        params = {"cursor": str(self._state.cursor), "wait": str(wait), "limit": str(PAGE)}
        timeout = aiohttp.ClientTimeout(total=wait + (10 if wait else SHORT_POLL_TIMEOUT))
        async with self._http.get(self._url, params=params, headers=self._headers, timeout=timeout) as resp:
            body = await resp.content.read(MAX_REPLY_BYTES + 1)
            if resp.status != 200:
                raise FeedError(f"HTTP {resp.status}")
        if len(body) > MAX_REPLY_BYTES:
            raise FeedError("reply too large")
        reply = json.loads(body)
        events, cursor = _parse(reply)
        self._state.apply(events, cursor)
        self._synced.set()
        return len(events) >= PAGE


class FeedError(Exception):
    """The feed answered something other than a page of events."""


def _parse(reply: Any) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(reply, dict) or not isinstance(reply.get("events"), list):
        raise FeedError("not a feed page")
    cursor = reply.get("cursor")
    if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
        raise FeedError("no cursor")
    events = reply["events"]
    if not all(isinstance(e, dict) and isinstance(e.get("kind"), str) for e in events):
        raise FeedError("malformed event")
    return events, cursor


def _name(exc: BaseException) -> str:
    return type(exc).__name__
