"""RFC 3339 date-times (section 5.6), every one of them: what a document's ``format: date-time`` allows.

Python's ``datetime.fromisoformat`` reads more (dates alone, no offset, week dates) and less (year 0000, a leap
second, offsets that move a time past year 1 or 9999): a parameter documented as ``date-time`` is read here instead,
so the server accepts exactly what the document says. Times Python cannot hold are clamped to its first or last
microsecond (in UTC), which every bound the store compares with lies between.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

__all__ = ["EARLIEST", "LATEST", "instant", "unix_time"]

EARLIEST: Final = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST: Final = dt.datetime.max.replace(tzinfo=dt.UTC)

_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY: Final = 86400
_EPOCH_DAY: Final = _EPOCH.date().toordinal()
_FIRST: Final = (EARLIEST - _EPOCH) // dt.timedelta(seconds=1)
_LAST: Final = (LATEST - _EPOCH) // dt.timedelta(seconds=1)
# Year 0000 is a leap year, as 2000 is: its dates are 2000's, shifted to end on day 0 (0001-01-01 is day 1).
_LEAP: Final = 2000
_YEAR_ZERO_SHIFT: Final = dt.date(_LEAP, 12, 31).toordinal()


def _day(year: int, month: int, day: int) -> int | None:
    """The proleptic Gregorian day number (0001-01-01 is 1), ``None`` for a date that does not exist."""
    try:
        if year == 0:
            return dt.date(_LEAP, month, day).toordinal() - _YEAR_ZERO_SHIFT
        return dt.date(year, month, day).toordinal()
    except ValueError:
        return None


def instant(text: str) -> dt.datetime | None:
    """``text`` as an aware UTC datetime, ``None`` unless it is an RFC 3339 date-time. A leap second (``:60``)
    is the next second's start; a fraction finer than microseconds is cut."""
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    offset = 0
    if m.group(8):
        offset_hour, offset_minute = int(m.group(9)), int(m.group(10))
        if offset_hour > 23 or offset_minute > 59:
            return None
        offset = (offset_hour * 3600 + offset_minute * 60) * (1 if m.group(8) == "+" else -1)
    days = _day(year, month, day)
    if days is None or hour > 23 or minute > 59 or second > 60:
        return None
    seconds = (days - _EPOCH_DAY) * _DAY + hour * 3600 + minute * 60 + second - offset
    if seconds < _FIRST:
        return EARLIEST
    if seconds > _LAST:
        return LATEST
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=micro)


def unix_time(digits: str) -> dt.datetime:
    """Unix seconds written in ASCII digits, as an aware UTC datetime (clamped to :data:`LATEST`: ``int()`` of
    thousands of digits would be refused)."""
    digits = digits.lstrip("0")
    seconds = int(digits or "0") if len(digits) <= len(str(_LAST)) else _LAST
    return _EPOCH + dt.timedelta(seconds=min(seconds, _LAST))
