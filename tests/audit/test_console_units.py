"""The console's pure parts: filters, histogram bins, the lineage graph."""

from __future__ import annotations

import datetime as dt

import pytest

from vault.errors import BadRequest
from vault.web.console.filters import Filters, parse_filters
from vault.web.console.histogram import histogram
from vault.web.console.lineage import lineage_graph

T0 = dt.datetime(2026, 1, 31, 10, 0, tzinfo=dt.UTC)


def _event(seconds: int, outcome: str = "ok", **fields: object) -> dict[str, object]:
    return {"at": (T0 + dt.timedelta(seconds=seconds)).isoformat(), "outcome": outcome, **fields}


def test_filters_round_trip_through_the_query_string() -> None:
    f = parse_filters({"secret": " db/url ", "outcome": "denied", "since": "2026-01-31T10:00", "org": "7"})
    assert f == Filters(org=7, secret="db/url", outcome="denied", since=T0)
    assert f.query(cursor="5") == "org=7&secret=db%2Furl&outcome=denied&since=2026-01-31T10%3A00%3A00&cursor=5"
    assert parse_filters(dict(p.split("=") for p in f.query().replace("%2F", "/").replace("%3A", ":").split("&"))) == f
    assert f.api_params()["since"] == int(T0.timestamp()) and f.api_params()["token"] is None
    assert not parse_filters({}).active()


@pytest.mark.parametrize(
    "query",
    [
        {"org": "x"},
        {"org": "1" * 20},
        {"outcome": "fine"},
        {"since": "yesterday"},
        {"since": "2026-01-31T10:00", "until": "2026-01-31T09:00"},
        {"secret": "a" * 513},
        {"actor": "a\x00"},
    ],
)
def test_bad_filters_are_bad_requests(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse_filters(query)


def test_histogram_stacks_refusals_on_top_and_keeps_every_event() -> None:
    events = [_event(0), _event(1), _event(59, "denied"), _event(59), _event(120, "error")]
    chart = histogram(events, bins=4)
    assert chart is not None
    assert [(b.ok, b.refused) for b in chart.bars] == [(2, 0), (1, 1), (0, 0), (0, 1)]
    assert chart.peak == 2 and chart.events == 5
    top = chart.bars[1]
    assert top.refused_y + top.refused_height == pytest.approx(top.ok_y)  # red sits on the blue
    assert chart.bars[0].ok_height == pytest.approx(chart.plot_height)
    assert histogram([]) is None


def test_lineage_spells_user_permission_service_store_scopes() -> None:
    path = {"actor": "3", "lineage": ["svc", "perm"], "token_id": "store", "vault": "prod"}
    events = [
        _event(0, **path, action="secrets.read", secret="db/url"),
        _event(1, **path, action="secrets.read", secret="db/url"),
        _event(2, "denied", **path, action="secrets.write", secret="db/url"),
        _event(3, token_id="store", action="secrets.read", vault="prod", secret="x"),  # refused before any discharge
    ]
    graph = lineage_graph(events, revoked={"perm"}, emails={"3": "ops@example.com"}, focus="svc")
    kinds = {n.key: n.kind for n in graph.nodes}
    assert kinds == {
        "user:3": "user",
        "token:perm": "permission",
        "token:svc": "service",
        "token:store": "store",
        "scope:token:store:secrets.read prod/db/url": "scope",
        "scope:token:store:secrets.write prod/db/url": "scope",
        "scope:token:store:secrets.read prod/x": "scope",
    }
    by_key = {n.key: n for n in graph.nodes}
    assert by_key["token:svc"].detail == "stripped by ops@example.com"
    assert by_key["token:svc"].revoked == "revoked with its parent" and by_key["token:svc"].focus
    assert by_key["token:perm"].revoked == "revoked"
    assert (by_key["token:store"].events, by_key["token:store"].refused) == (4, 1)
    assert (by_key["user:3"].events, by_key["token:svc"].events) == (3, 3)
    assert sorted((e.source.key, e.label, e.target.key) for e in graph.edges)[:4] == [
        ("token:perm", "stripped", "token:svc"),
        ("token:store", "narrowed", "scope:token:store:secrets.read prod/db/url"),
        ("token:store", "narrowed", "scope:token:store:secrets.read prod/x"),
        ("token:store", "narrowed", "scope:token:store:secrets.write prod/db/url"),
    ]
    assert len({(n.x, n.y) for n in graph.nodes}) == len(graph.nodes)  # no two boxes on one spot


def test_lineage_caps_the_scopes_of_a_store_token() -> None:
    events = [_event(i, token_id="s", action="secrets.read", vault="v", secret=f"n{i}") for i in range(40)]
    scopes = lineage_graph(events).of_kind("scope")
    assert len(scopes) == 13 and scopes[-1].label == "other scopes" and scopes[-1].events == 28
