"""The revocation feed that stores follow: who may read it, and the long poll (docs/revocation.md).

The feed is every row of the authority's revocations in seq order: token ids
(each token and everything stripped from it), revoked login sessions, and
membership cut-offs (a member removed, a role lowered). A reader passes the
``cursor`` of its last reply and gets what came after, waiting up to ``wait``
seconds for something new: a revocation that commits while it waits is in the
reply within milliseconds (the watcher's LISTEN wakes it).

Readers authenticate with a feed token, ``cvf_`` + 32 random bytes, of which
the authority is configured with the SHA-256 only: a copy of the authority's
configuration does not let anyone read the feed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vault.authorization import FEED_TOKEN
from vault.errors import Unauthenticated

__all__ = ["MAX_FEED_WAIT", "MAX_SINCE_LIMIT", "FeedSource", "RevocationFeed", "feed_token_sha256", "new_feed_token"]

MAX_FEED_WAIT = 25
"""Seconds a reader may ask the authority to hold its request open."""
MAX_SINCE_LIMIT = 1000
"""The most revocations one page of the list or the feed holds."""


def feed_token_sha256(token: str) -> str:
    """The hex SHA-256 of a feed token, as ``revocation_feed_token_sha256`` lists it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_feed_token(random: Callable[[int], bytes] = os.urandom) -> tuple[str, str]:
    """A fresh ``(token, sha256)``: the store gets the token, the authority the digest."""
    token = "cvf_" + base64.urlsafe_b64encode(random(32)).rstrip(b"=").decode()
    return token, feed_token_sha256(token)


class FeedSource(Protocol):
    """The revocations table, as :class:`vault.storage.revocations.RevocationWatcher` serves it."""

    async def since(self, seq: int, limit: int = ...) -> tuple[list[dict[str, Any]], int]:
        """Revocations after ``seq`` (``GET /v1/revocations``), at most ``limit`` (up to :data:`MAX_SINCE_LIMIT`)."""

    async def feed(self, seq: int, limit: int) -> tuple[list[dict[str, Any]], int]: ...

    async def wait_past(self, seq: int, timeout: float) -> None: ...


class RevocationFeed:
    def __init__(self, source: FeedSource, token_sha256: Sequence[str]) -> None:
        self._source = source
        self._digests = [bytes.fromhex(d) for d in token_sha256]
        self._closing = asyncio.Event()

    def check(self, credential: str | None) -> None:
        """Raise :class:`Unauthenticated` unless ``credential`` is a configured feed token."""
        if not self._digests:
            raise Unauthenticated(
                "this authority serves its revocation feed to no one: set CVAULT_REVOCATION_FEED_TOKEN_SHA256"
            )
        if credential is None or not FEED_TOKEN.fullmatch(credential):
            raise Unauthenticated("the revocation feed needs 'Authorization: Bearer cvf_...' (a feed token)")
        presented = hashlib.sha256(credential.encode()).digest()
        # Every digest is compared, in constant time each: which one matched is not observable.
        matched = [hmac.compare_digest(presented, digest) for digest in self._digests]
        if not any(matched):
            raise Unauthenticated("unknown revocation feed token; check CVAULT_REVOCATION_FEED_TOKEN")

    async def read(self, cursor: int, wait: float, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Events after ``cursor`` and the cursor to pass next; waits up to ``wait`` s while there are none."""
        events, after = await self._source.feed(cursor, limit)
        if events or wait <= 0 or self._closing.is_set():
            return events, after
        waiting = asyncio.ensure_future(self._source.wait_past(cursor, wait))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((waiting, closing), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            closing.cancel()
        if self._closing.is_set():
            return [], cursor  # shutting down: the reader resumes from the same cursor elsewhere
        return await self._source.feed(cursor, limit)

    def close(self) -> None:
        """Answer every waiting reader now (the server is shutting down)."""
        self._closing.set()
