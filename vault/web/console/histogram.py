"""Events over time as bars of an inline SVG (computed here, drawn by ``templates/_histogram.html``).

Pure: takes the events' times and outcomes, returns the geometry. Denied and
failed events are stacked on top of each bar in their own colour, so a burst of
denials stands out even among many reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Bar", "Histogram", "histogram"]

WIDTH = 960
HEIGHT = 160
_AXIS = 20  # room under the bars for the time labels
_BINS = 48


@dataclass(frozen=True, slots=True)
class Bar:
    start: dt.datetime
    end: dt.datetime
    ok: int
    refused: int  # denied or error
    x: float
    width: float
    ok_y: float
    ok_height: float
    refused_y: float
    refused_height: float

    @property
    def total(self) -> int:
        return self.ok + self.refused

    def label(self) -> str:
        when = f"{self.start:%Y-%m-%d %H:%M:%S} to {self.end:%H:%M:%S} UTC"
        return f"{when}: {self.total} event(s), {self.refused} denied or failed"


@dataclass(frozen=True, slots=True)
class Histogram:
    bars: tuple[Bar, ...]
    start: dt.datetime
    end: dt.datetime
    peak: int
    events: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_height: int = HEIGHT - _AXIS


def _at(event: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(event["at"])).astimezone(dt.UTC)


def histogram(
    events: Iterable[Mapping[str, Any]],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bins: int = _BINS,
) -> Histogram | None:
    """Bars counting ``events`` per time bin between ``since`` (or the first event) and ``until`` (or the last)."""
    points = [(_at(e), e.get("outcome") != "ok") for e in events]
    if not points:
        return None
    start = since or min(t for t, _ in points)
    end = until or max(t for t, _ in points)
    if end <= start:
        end = start + dt.timedelta(seconds=1)
    span = (end - start) / bins
    ok = [0] * bins
    refused = [0] * bins
    for when, bad in points:
        index = min(int((when - start) / span), bins - 1) if when >= start else 0
        (refused if bad else ok)[index] += 1
    peak = max(a + b for a, b in zip(ok, refused, strict=True)) or 1
    plot = HEIGHT - _AXIS
    step = WIDTH / bins
    bars = []
    for i in range(bins):
        ok_h = plot * ok[i] / peak
        bad_h = plot * refused[i] / peak
        bars.append(
            Bar(
                start=start + span * i,
                end=start + span * (i + 1),
                ok=ok[i],
                refused=refused[i],
                x=round(i * step + 1, 2),
                width=round(step - 2, 2),
                ok_y=round(plot - ok_h, 2),
                ok_height=round(ok_h, 2),
                refused_y=round(plot - ok_h - bad_h, 2),
                refused_height=round(bad_h, 2),
            )
        )
    return Histogram(tuple(bars), start, end, peak, len(points))
