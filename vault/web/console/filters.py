"""The console's filter form: one parser from the query string, one way back to links and API calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from vault.errors import BadRequest

__all__ = ["OUTCOMES", "Filters", "parse_filters"]

OUTCOMES = ("ok", "denied", "error")
_MAX_TEXT = 512
_TEXT_FIELDS = ("vault", "secret", "actor", "token", "action")
_TIME_FIELDS = ("since", "until")
# datetime-local inputs send minutes (or seconds); the API takes Unix seconds.
_LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    """What the reviewer asked for; every field ``None`` (or empty) means "any"."""

    org: int | None = None
    vault: str | None = None
    secret: str | None = None
    actor: str | None = None
    token: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    show_own: str | None = None
    """``"1"``: also the reviewer's own ``audit.*`` events, which are hidden by default (the console's own queries
    would otherwise fill the first page)."""

    def api_params(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`vault.client.store.StoreClient.audit`."""
        params: dict[str, Any] = {name: getattr(self, name) for name in (*_TEXT_FIELDS, "outcome", "org")}
        params["hide_own"] = self.show_own is None
        params["since"] = int(self.since.timestamp()) if self.since else None
        params["until"] = int(self.until.timestamp()) if self.until else None
        return params

    def form(self) -> dict[str, str]:
        """The values the form shows (and the query string carries): strings, empty for "any"."""
        values = {}
        for name, value in asdict(self).items():
            if value is None:
                values[name] = ""
            elif isinstance(value, dt.datetime):
                values[name] = value.strftime("%Y-%m-%dT%H:%M:%S")
            else:
                values[name] = str(value)
        return values

    def query(self, **extra: str | int | None) -> str:
        """A query string for a link that keeps these filters (``extra`` adds e.g. a cursor)."""
        pairs = [(k, v) for k, v in self.form().items() if v]
        pairs += [(k, str(v)) for k, v in extra.items() if v is not None and v != ""]
        return urlencode(pairs)

    def active(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def with_(self, **changes: Any) -> Filters:
        return replace(self, **changes)


def _text(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > _MAX_TEXT or "\x00" in raw:
        raise BadRequest(f"the {name} filter must be at most {_MAX_TEXT} characters")
    return raw


def _time(query: Mapping[str, str], name: str) -> dt.datetime | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"the {name} time must look like 2026-01-31T10:00 (UTC)") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return min(when.astimezone(dt.UTC), _LATEST)


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The filters of a console URL; :class:`BadRequest` (a 400 page) for values that cannot be one."""
    org_text = query.get("org", "").strip()
    org = None
    if org_text:
        if not (org_text.isascii() and org_text.isdigit()) or len(org_text) > 19:
            raise BadRequest("the org filter must be an organization id")
        org = int(org_text)
    outcome = query.get("outcome", "").strip() or None
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest("the outcome filter must be ok, denied or error")
    since, until = (_time(query, name) for name in _TIME_FIELDS)
    if since is not None and until is not None and until <= since:
        raise BadRequest("the until time must be after the since time")
    texts = {name: _text(query, name) for name in _TEXT_FIELDS}
    show_own = "1" if query.get("show_own", "").strip() == "1" else None
    return Filters(org=org, outcome=outcome, since=since, until=until, show_own=show_own, **texts)
