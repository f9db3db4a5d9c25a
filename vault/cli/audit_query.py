"""``cvault audit query``: the store's audit log through its API, as a table or JSON.

Answers "who read this secret, when, with which token, on whose authority":
each row shows the store token used, the user the authority attested (the
operator behind a service token) and the lineage of the authority token.
Needs a store token with ``a`` (audit) on the org. ``--limit N`` shows the newest N
events, newest first, as the console does; ``--reverse`` the oldest N, oldest first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
import uuid
from typing import Any

from vault.client import Client
from vault.errors import BadRequest

from .client_options import runs_with_client
from .output import print_json, print_table

__all__ = ["parse_time", "register"]

_RELATIVE = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PAGE = 500


def parse_time(text: str, now: float) -> int:
    """Unix seconds, ISO 8601 (``2026-01-31``, ``2026-01-31T10:00:00Z``), or an age like ``15m``, ``2h``, ``7d``."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = _RELATIVE.fullmatch(text)
    if m:
        return int(now) - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"cannot read the time {text!r}: use Unix seconds, 2026-01-31T10:00:00Z, or 2h / 7d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def register(audit_sub: Any) -> None:
    p: argparse.ArgumentParser = audit_sub.add_parser(
        "query",
        help="search the store's audit log (who read what, when, with which token)",
        description="Needs CVAULT_STORE_TOKEN with 'a' (audit) on the org. Times: Unix seconds, ISO 8601 or 2h/7d.",
    )
    p.add_argument("--secret", help="events about this secret")
    p.add_argument("--actor", help="events by this user id")
    p.add_argument("--token", help="events with this store token id")
    p.add_argument("--action", help="e.g. secrets.read, secrets.write")
    p.add_argument("--outcome", choices=["ok", "denied", "error"])
    p.add_argument("--since", metavar="T")
    p.add_argument("--until", metavar="T")
    p.add_argument("--limit", type=int, default=1000, help="the newest N events, newest first (default 1000)")
    p.add_argument("--reverse", action="store_true", help="the oldest N events instead, oldest first")
    runs_with_client(p, _query)


def _check_filters(args: argparse.Namespace) -> None:
    # The store matches these exactly: a malformed one would silently match nothing.
    if args.token is not None:
        try:
            uuid.UUID(args.token)
        except ValueError:
            raise BadRequest(
                f"--token takes a store token id, a UUID such as 0b9f6c1e-...; {args.token!r} is not one "
                "(`cvault tokens debug TOKEN` shows a token's id)"
            ) from None
    if args.actor is not None and not args.actor.isdigit():
        raise BadRequest(f"--actor takes a user id (a number, see `cvault orgs members`), not {args.actor!r}")
    if args.limit < 1:
        raise BadRequest("--limit must be at least 1")


async def _query(client: Client, args: argparse.Namespace) -> int:
    _check_filters(args)
    now = time.time()
    since = parse_time(args.since, now) if args.since else None
    until = parse_time(args.until, now) if args.until else None
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(events) < args.limit:
        page = await client.store.audit(
            secret=args.secret,
            actor=args.actor,
            token=args.token,
            action=args.action,
            outcome=args.outcome,
            since=since,
            until=until,
            cursor=cursor,
            limit=min(_PAGE, args.limit - len(events)),
            newest_first=not args.reverse,
        )
        events.extend(page["events"])
        cursor = page.get("next_cursor")
        if not cursor or not page["events"]:
            break
    if args.json:
        print_json(events)
        return 0
    emails = await client.member_emails()
    rows = []
    for e in events:
        actor = e.get("actor") or ""
        who = f"{actor} ({emails[actor]})" if actor in emails else actor
        lineage = e.get("lineage") or []
        rows.append(
            [
                str(e.get("at", ""))[:19].replace("T", " "),
                e.get("action"),
                e.get("outcome"),
                "/".join(x for x in (e.get("vault"), e.get("secret")) if x),
                e.get("version"),
                e.get("token_id"),
                who,
                " <- ".join(lineage),
                e.get("client_addr"),
            ]
        )
    print_table(
        ["AT (UTC)", "ACTION", "OUTCOME", "SECRET", "VER", "STORE TOKEN", "ACTOR", "AUTHORITY TOKEN", "FROM"], rows
    )
    return 0
