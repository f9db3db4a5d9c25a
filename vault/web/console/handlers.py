"""The console's pages: timeline, secret, token, chain; the exports; the stylesheet.

Every page is rendered on the server from the reviewer's queries; the browser
gets HTML, inline SVG and one stylesheet, never a token and never a script.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from vault.errors import BadRequest

from .filters import OUTCOMES, Filters, parse_filters
from .histogram import histogram
from .keys import REVIEWER_KEY, TEMPLATES_KEY
from .lineage import lineage_graph
from .reviewer import SCAN_LIMIT, Reviewer

__all__ = ["EXPORT_COLUMNS", "add_routes", "csv_cell"]

PAGE_SIZES = (25, 50, 100, 200)
_DEFAULT_PAGE = 50
_MAX_CURSOR = 2**63 - 1
_TABLE_ROWS = 500
EXPORT_COLUMNS = (
    "seq",
    "at",
    "service",
    "action",
    "outcome",
    "org",
    "vault",
    "secret",
    "version",
    "token_id",
    "lineage",
    "actor",
    "client_addr",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
)
# A spreadsheet runs a cell starting with one of these as a formula; exports quote them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _reviewer(request: web.Request) -> Reviewer:
    return request.app[REVIEWER_KEY]


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    env = request.app[TEMPLATES_KEY]
    page = env.get_template(template).render(path=request.path, **context)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def _cursor(query: Mapping[str, str]) -> str | None:
    raw = query.get("cursor", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > _MAX_CURSOR:
        raise BadRequest("the cursor must be one of the console's own page links")
    return raw


def _page_size(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "").strip()
    if not raw:
        return _DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or int(raw) not in PAGE_SIZES:
        raise BadRequest(f"events per page must be one of {', '.join(map(str, PAGE_SIZES))}")
    return int(raw)


async def timeline(request: web.Request) -> web.StreamResponse:
    reviewer = _reviewer(request)
    filters = parse_filters(request.query)
    cursor = _cursor(request.query)
    limit = _page_size(request.query)
    page = await reviewer.page(filters, cursor, limit)
    scan = await reviewer.scan(filters)
    return _render(
        request,
        "timeline.html",
        title="Audit timeline",
        filters=filters,
        form=filters.form(),
        org=reviewer.org,
        org_name=await reviewer.org_name(),
        outcomes=OUTCOMES,
        page_sizes=PAGE_SIZES,
        limit=limit,
        cursor=cursor,
        events=page.events,
        next_link=filters.query(cursor=page.next_cursor, limit=limit) if page.next_cursor else None,
        first_link=filters.query(limit=limit) if cursor else None,
        export=filters.query(),
        chart=histogram(scan.events, since=filters.since, until=filters.until),
        scan=scan,
        scan_limit=SCAN_LIMIT,
        emails=await reviewer.emails(),
    )


async def secret_page(request: web.Request) -> web.StreamResponse:
    reviewer = _reviewer(request)
    vault, name = request.match_info["vault"], request.match_info["name"]
    filters = parse_filters({"vault": vault, "secret": name})
    scan = await reviewer.scan(filters)
    reads = [e for e in scan.events if e.get("action") == "secrets.read"]
    writes = [e for e in scan.events if e.get("action") == "secrets.write"]
    return _render(
        request,
        "secret.html",
        title=f"Secret {vault}/{name}",
        vault=vault,
        name=name,
        events=scan.events[:_TABLE_ROWS],
        scan=scan,
        reads=reads,
        writes=writes,
        refused=[e for e in scan.events if e.get("outcome") != "ok"],
        readers=sorted({str(e.get("actor")) for e in reads if e.get("outcome") == "ok" and e.get("actor")}),
        timeline=filters.query(),
        chart=histogram(scan.events),
        emails=await reviewer.emails(),
        table_rows=_TABLE_ROWS,
    )


async def token_page(request: web.Request) -> web.StreamResponse:
    reviewer = _reviewer(request)
    raw = request.match_info["id"]
    try:
        token_id = str(uuid.UUID(raw))
    except ValueError:
        raise BadRequest("a token id is a UUID, as the timeline shows them") from None
    filters = Filters(token=token_id)
    scan = await reviewer.scan(filters)
    emails = await reviewer.emails()
    graph = lineage_graph(scan.events, revoked=await reviewer.revoked(), emails=emails, focus=token_id)
    return _render(
        request,
        "token.html",
        title=f"Token {token_id}",
        token_id=token_id,
        graph=graph,
        events=scan.events[:_TABLE_ROWS],
        scan=scan,
        timeline=filters.query(),
        emails=emails,
        table_rows=_TABLE_ROWS,
    )


async def chain_page(request: web.Request) -> web.StreamResponse:
    reviewer = _reviewer(request)
    report = await reviewer.verify()
    return _render(request, "chain.html", title="Chain status", report=report, source=reviewer.verifier)


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        text = " ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def _export(request: web.Request, content_type: str, suffix: str, csv_rows: bool) -> web.StreamResponse:
    reviewer = _reviewer(request)
    filters = parse_filters(request.query)
    response: web.StreamResponse | None = None
    async for events in reviewer.pages(filters):
        buffer = io.StringIO()
        if csv_rows:
            writer = csv.writer(buffer, lineterminator="\r\n")
            if response is None:
                writer.writerow(EXPORT_COLUMNS)
            writer.writerows([csv_cell(e.get(c)) for c in EXPORT_COLUMNS] for e in events)
        else:
            buffer.writelines(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in events)
        if response is None:
            # Prepared after the first page, so an error before it is still a proper error page.
            response = web.StreamResponse(
                headers={
                    "Content-Type": content_type,
                    "Content-Disposition": f'attachment; filename="cvault-audit.{suffix}"',
                }
            )
            await response.prepare(request)
        await response.write(buffer.getvalue().encode("utf-8"))
    if response is None:
        empty = "\r\n".join([",".join(EXPORT_COLUMNS), ""]) if csv_rows else ""
        return web.Response(
            text=empty,
            content_type=content_type.split(";")[0],
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="cvault-audit.{suffix}"'},
        )
    await response.write_eof()
    return response


async def export_jsonl(request: web.Request) -> web.StreamResponse:
    return await _export(request, "application/x-ndjson; charset=utf-8", "jsonl", csv_rows=False)


async def export_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "text/csv; charset=utf-8", "csv", csv_rows=True)


def add_routes(app: web.Application, css: str) -> None:
    async def stylesheet(request: web.Request) -> web.StreamResponse:
        return web.Response(text=css, content_type="text/css", charset="utf-8")

    r = app.router
    r.add_get("/", timeline)
    r.add_get("/secrets/{vault}/{name:.+}", secret_page)
    r.add_get("/tokens/{id}", token_page)
    r.add_get("/chain", chain_page)
    r.add_get("/export.jsonl", export_jsonl)
    r.add_get("/export.csv", export_csv)
    r.add_get("/static/console.css", stylesheet)
