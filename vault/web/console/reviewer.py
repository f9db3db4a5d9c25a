"""What the console reads, and with which credentials: the reviewer's, held in this process only.

The store's audit log is read through the store's API with the reviewer's store
token (mask ``a``) and authority credential, exactly as ``cvault audit query``
does (:class:`vault.client.Client`, which narrows the token per call). Nothing
here hands a token to a page: handlers get events, reports and ids.

The chain's integrity is checked by the store (``GET /v1/orgs/{org}/audit/verify``, mask ``a``)
as ``cvault audit verify`` asks it without a database URL; given a database URL, the console
recomputes the chains itself (:meth:`vault.audit.query.AuditQueries.verify`), trusting no service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from vault.audit.chain import LogReport
from vault.audit.query import AuditQueries
from vault.client import Client
from vault.errors import BadReply, VaultError

from .filters import Filters

__all__ = ["Page", "Reviewer", "Scan"]

log = logging.getLogger("cvault.console")

_API_PAGE = 1000
SCAN_LIMIT = 5000
"""Events one page's histogram, secret history or lineage graph looks at (newest first)."""
_REVOCATION_PAGES = 100


@dataclass(frozen=True, slots=True)
class Page:
    events: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Scan:
    """The newest events of a filter, at most :data:`SCAN_LIMIT`; ``complete`` when that was all of them."""

    events: list[dict[str, Any]]
    complete: bool


class Reviewer:
    """The reviewer's view of the store's audit log (one org: the store token's)."""

    def __init__(self, client: Client, audit: AuditQueries | None = None) -> None:
        self._client = client
        self._audit = audit

    @property
    def org(self) -> int:
        return self._client.store_org()

    @property
    def verifier(self) -> str:
        """Who recomputes the chains: this console on the database, or the store."""
        return "this console, on the database" if self._audit is not None else "the store, through its API"

    async def page(self, filters: Filters, cursor: str | None, limit: int) -> Page:
        reply = await self._client.store.audit(**filters.api_params(), cursor=cursor, limit=limit, newest_first=True)
        return Page(list(reply["events"]), reply.get("next_cursor"))

    async def pages(self, filters: Filters, *, newest_first: bool = False) -> AsyncIterator[list[dict[str, Any]]]:
        """Every matching event, one API page at a time (for exports)."""
        cursor: str | None = None
        while True:
            reply = await self._client.store.audit(
                **filters.api_params(), cursor=cursor, limit=_API_PAGE, newest_first=newest_first
            )
            events = list(reply["events"])
            if events:
                yield events
            cursor = reply.get("next_cursor")
            if not cursor or not events:
                return

    async def scan(self, filters: Filters, limit: int = SCAN_LIMIT) -> Scan:
        found: list[dict[str, Any]] = []
        async for events in self.pages(filters, newest_first=True):
            found.extend(events)
            if len(found) >= limit:
                return Scan(found[:limit], False)
        return Scan(found, True)

    async def org_name(self) -> str:
        """``slug (id)`` when the authority says, else the id."""
        slug = await self._client.org_slug()
        return f"{slug} ({self.org})" if slug else str(self.org)

    async def emails(self) -> dict[str, str]:
        return await self._client.member_emails()

    async def revoked(self) -> set[str]:
        """Ids of revoked tokens: the store's (its ``tokens.revoke`` events) and the authority's (its feed)."""
        revoked: set[str] = set()
        async for events in self.pages(Filters(action="tokens.revoke", outcome="ok")):
            for event in events:
                detail = event.get("detail") or {}
                revoked.update(str(t) for t in [detail.get("revoked"), *detail.get("with_descendants", [])] if t)
        try:
            since = 0
            for _ in range(_REVOCATION_PAGES):
                reply = await self._client.authority.revocations(since)
                revoked.update(item.token_id for item in reply.revocations)
                following = reply.next
                if not reply.revocations or following == since:
                    break
                since = following
        except (VaultError, KeyError, TypeError):
            # The graph still shows the store's revocations; the page says the feed was unreadable.
            log.warning("console: the authority's revocation feed could not be read")
        return revoked

    async def check_access(self) -> None:
        """Fail at start, not at the first page, when the credentials cannot read the log."""
        await self._client.store.audit(limit=1)

    async def verify(self) -> LogReport:
        if self._audit is not None:
            return await self._audit.verify()
        reply = await self._client.store.audit_verify()
        try:
            return LogReport.from_json(reply)
        except ValueError as exc:
            raise BadReply(f"the store's verification reply is malformed: {exc}") from None
