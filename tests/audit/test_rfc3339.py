"""RFC 3339 date-times as the audit query reads them (:mod:`vault.web.rfc3339`): all of them, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest

from vault.web.rfc3339 import EARLIEST, LATEST, instant, unix_time

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("2026-01-31T10:00:00Z", dt.datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31t10:00:00.123456789z", dt.datetime(2026, 1, 31, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-31T10:00:00.5+01:30", dt.datetime(2026, 1, 31, 8, 30, 0, 500000, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", dt.datetime(2017, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00+01:00", EARLIEST),
        ("0000-02-29T12:00:00Z", EARLIEST),
        ("0000-12-31T23:59:59-23:59", dt.datetime(1, 1, 1, 23, 58, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59-01:00", LATEST),
        ("9999-12-31T23:59:59.999999Z", LATEST),
    ],
)
def test_every_date_time_is_read_in_utc(text: str, when: dt.datetime) -> None:
    assert instant(text) == when


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01",
        "2026-01-31T10:00:00",
        "2026-01-31 10:00:00Z",
        "2024-01-01T12:99:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:61Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00.Z",
        "２０２４-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z\n",
    ],
)
def test_what_is_no_rfc_3339_date_time_is_none(text: str) -> None:
    assert instant(text) is None


def test_unix_seconds_up_to_the_last_time_python_holds() -> None:
    assert unix_time("000") == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert unix_time("1700000000") == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert (
        unix_time("253402300799") == unix_time("253402300800") == unix_time("9" * 5000) == LATEST.replace(microsecond=0)
    )
