"""What the authority has revoked, as this store has heard it from the revocation feed.

The store never asks the authority about a request. A follower
(:mod:`vault.web.store.revocation_follower`) reads the authority's feed in the
background and :meth:`AuthorityRevocations.apply` keeps three in-memory views;
:meth:`AuthorityRevocations.check` consults them on every request, with no I/O:

* revoked token ids: an org discharge whose ``TokenLineage`` names one (the
  authority token it was issued for, or any ancestor) is refused;
* revoked login sessions: one whose ``LoginSession`` names one is refused;
* membership cut-offs per ``(org, user)``: a removal or a lowered role at time
  ``T`` refuses that user's discharges for that org issued at or before ``T``.

Fail closed when the feed is quiet: past ``max_lag`` seconds without a reply
from the feed (or before the first one), only org discharges issued in the last
``max_lag`` seconds are honoured. The authority checked revocation when it issued
them, so no discharge is ever honoured more than ``max_lag`` seconds after a
revocation, whatever happens to the feed (docs/revocation.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from typing import Any

from vault.errors import MissingDischarge
from vault.types import Clock

from .caller import Caller

__all__ = ["AuthorityRevocations"]


def _timestamp(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


class AuthorityRevocations:
    """The feed's state on this node (see the module docstring).

    Issue times and cut-offs are wall-clock seconds (the authority's); how long the feed has
    been quiet is measured on ``monotonic``, so a wall clock that jumps cannot hide an outage.
    """

    def __init__(self, *, org_location: str, max_lag: float, monotonic: Clock = time.monotonic) -> None:
        self._location = org_location
        self._max_lag = max_lag
        self._monotonic = monotonic
        self._tokens: set[str] = set()
        self._sessions: set[int] = set()
        self._cutoffs: dict[tuple[int, int], float] = {}
        self.cursor = 0
        self.synced_at: float | None = None  # monotonic

    def apply(self, events: Iterable[Mapping[str, Any]], cursor: int) -> None:
        """Take in one reply of the feed: its events, then its cursor; the feed is fresh as of now."""
        for event in events:
            kind = event["kind"]
            if kind == "token":
                self._tokens.add(str(event["token_id"]).lower())
            elif kind == "session":
                self._sessions.add(int(event["session_id"]))
            elif kind in ("member_removed", "role_downgraded"):
                key = (int(event["org"]), int(event["user_id"]))
                self._cutoffs[key] = max(self._cutoffs.get(key, 0.0), _timestamp(event["revoked_at"]))
            # Kinds this store does not know yet revoke nothing it could check; skipped.
        self.cursor = max(self.cursor, cursor)
        self.synced_at = self._monotonic()

    def check(self, caller: Caller, issued_at: int, now: float) -> None:
        """Refuse (:class:`MissingDischarge`) an org discharge issued at ``issued_at`` the feed revoked."""
        feed_quiet = self.synced_at is None or self._monotonic() - self.synced_at > self._max_lag
        if feed_quiet and now - issued_at > self._max_lag:
            raise MissingDischarge(
                self._location,
                "the store cannot reach the authority's revocation feed, so it honours only org discharges "
                f"issued in the last {self._max_lag:g} s",
            )
        for token_id in caller.lineage:
            if token_id.lower() in self._tokens:
                raise MissingDischarge(
                    self._location, f"the org discharge was issued for token {token_id}, which is revoked"
                )
        if caller.session_id is not None and caller.session_id in self._sessions:
            raise MissingDischarge(self._location, "the org discharge came from a login session that was revoked")
        if caller.user_id is not None:
            cutoff = self._cutoffs.get((caller.org_id, caller.user_id))
            if cutoff is not None and issued_at <= cutoff:
                raise MissingDischarge(
                    self._location,
                    f"user {caller.user_id}'s membership of organization {caller.org_id} changed after "
                    "the org discharge was issued",
                )
