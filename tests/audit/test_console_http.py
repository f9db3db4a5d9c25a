"""The audit console over plain HTTP: its defences, its exports, and that no token ever leaves it."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import math
import time

import aiohttp
import pytest

from tests.support.audited_store import Audited
from vault.storage.pool import Pool
from vault.web.console.handlers import EXPORT_COLUMNS, csv_cell
from vault.web.console.security import CONTENT_SECURITY_POLICY, allowed_host

_TOKEN_PREFIXES = ("cv1_", "cvs_")


def _pages(a: Audited) -> list[str]:
    return [
        "",
        "?secret=db/url&action=secrets.read",
        "?outcome=denied",
        "?limit=25&cursor=3",
        "secrets/prod/db/url",
        f"tokens/{a.service_id}",
        f"tokens/{a.read_token_id}",
        "chain",
        "export.jsonl",
        "export.csv?secret=db/url",
        "static/console.css",
        "tokens/not-a-uuid",
        "?since=yesterday",
        "nowhere",
    ]


async def test_no_page_or_header_carries_a_token(audited: Audited) -> None:
    async with aiohttp.ClientSession() as http:
        for page in _pages(audited):
            async with http.get(audited.console_url + page) as resp:
                body = await resp.text()
                assert resp.status in (200, 400, 404), (page, resp.status, body[:500])
                seen = body + "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
                assert not any(p in seen for p in _TOKEN_PREFIXES), page
                assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
                assert "script-src" not in resp.headers["Content-Security-Policy"]
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["Cache-Control"] == "no-store"
                if resp.content_type == "text/html":
                    assert "<script" not in body.lower() and " on" + "click" not in body.lower()


async def test_bad_input_is_a_4xx_page(audited: Audited) -> None:
    async with aiohttp.ClientSession() as http:
        for page, status in (
            ("tokens/not-a-uuid", 400),
            ("?since=yesterday", 400),
            ("?outcome=maybe", 400),
            ("?limit=7", 400),
            ("?cursor=-1", 400),
            ("nowhere", 404),
        ):
            async with http.get(audited.console_url + page) as resp:
                assert resp.status == status, page
                assert resp.content_type == "text/html"
                assert "Traceback" not in await resp.text()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_only_get_is_served(audited: Audited, method: str) -> None:
    async with aiohttp.ClientSession() as http, http.request(method, audited.console_url) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD"
        assert resp.headers["X-Frame-Options"] == "DENY"


async def test_a_rebound_host_name_is_refused(audited: Audited) -> None:
    port = audited.console_url.rsplit(":", 1)[1].rstrip("/")
    async with aiohttp.ClientSession() as http:
        for host, status in (
            (f"evil.example:{port}", 421),
            (f"127.0.0.1:{int(port) + 1}", 421),
            (f"localhost:{port}", 200),
            (f"127.0.0.1:{port}", 200),
        ):
            async with http.get(audited.console_url, headers={"Host": host}) as resp:
                assert resp.status == status, host
                if status == 421:
                    assert "ops@example.com" not in await resp.text()


def test_allowed_host_rules() -> None:
    assert allowed_host("127.0.0.1:8300", ("127.0.0.1", 8300), ())
    assert allowed_host("[::1]:8300", ("::1", 8300), ())
    assert allowed_host("LOCALHOST:8300", ("::1", 8300), ())
    assert not allowed_host("localhost:8300", ("192.0.2.7", 8300), ())
    assert allowed_host("console.internal:8300", ("192.0.2.7", 8300), ("console.internal",))
    assert not allowed_host("console.internal:8300", ("192.0.2.7", 8300), ())
    assert not allowed_host("127.0.0.1", ("127.0.0.1", 8300), ())
    assert not allowed_host("127.0.0.1:8300", None, ())


async def test_exports_hold_exactly_the_filtered_events(audited: Audited, pool: Pool) -> None:
    org = audited.world.org
    expected = [
        r["seq"]
        for r in await pool.fetch(
            "SELECT seq FROM store.audit_events WHERE org = $1 AND secret = 'db/url' ORDER BY seq", org
        )
    ]
    assert len(expected) >= 5
    async with aiohttp.ClientSession() as http:
        async with http.get(audited.console_url + "export.jsonl?secret=db/url") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Disposition"] == 'attachment; filename="cvault-audit.jsonl"'
            lines = (await resp.text()).splitlines()
        async with http.get(audited.console_url + "export.csv?secret=db/url") as resp:
            assert resp.status == 200 and resp.content_type == "text/csv"
            table = list(csv.reader(io.StringIO(await resp.text())))
        async with http.get(audited.console_url + "export.csv?secret=nothing-here") as resp:
            assert list(csv.reader(io.StringIO(await resp.text()))) == [list(EXPORT_COLUMNS)]
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == expected
    assert {e["secret"] for e in events} == {"db/url"}
    assert table[0] == list(EXPORT_COLUMNS)
    assert [int(row[0]) for row in table[1:]] == expected
    assert [row[EXPORT_COLUMNS.index("hash")] for row in table[1:]] == [e["hash"] for e in events]


def test_csv_cells_never_start_a_formula() -> None:
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("-1+2") == "'-1+2"
    assert csv_cell(["a", "b"]) == "a b"
    assert csv_cell({"b": 1, "a": None}) == '{"a":null,"b":1}'
    assert csv_cell(None) == ""
    assert csv_cell(3) == "3"


async def test_the_time_range_filter_matches_the_database(audited: Audited, pool: Pool) -> None:
    # The form has whole seconds: start the next second, then read once more, so events fall on both sides.
    boundary = dt.datetime.fromtimestamp(math.ceil(time.time()), dt.UTC)
    await asyncio.sleep(max(0.0, boundary.timestamp() - time.time()) + 0.05)
    r = await audited.h.store("GET", audited.world.secret("db/url"), audited.world.bundle)
    assert r.status == 200

    async def seqs_in_db(where: str) -> list[int]:
        sql = f"SELECT seq FROM store.audit_events WHERE org = $1 AND {where} ORDER BY seq"
        return [row["seq"] for row in await pool.fetch(sql, audited.world.org, boundary)]

    before, after = await seqs_in_db("at < $2"), await seqs_in_db("at >= $2")
    assert before and after
    async with aiohttp.ClientSession() as http:
        for query, expected in (("since", after), ("until", before)):
            url = f"{audited.console_url}export.jsonl?{query}={boundary:%Y-%m-%dT%H:%M:%S}"
            async with http.get(url) as resp:
                assert resp.status == 200
                assert [json.loads(line)["seq"] for line in (await resp.text()).splitlines()] == expected, query
