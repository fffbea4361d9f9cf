"""The dashboard's charts laid out in SVG coordinates: the per-day chart (answer counts as bars, average and CSAT as
lines) and the tables' weekly CSAT sparklines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from tracker.scores.summary import SeriesDay
from tracker.web.dashboard.trends import Trend


@dataclass(frozen=True)
class Frame:
    """A chart's coordinate space and plot box; CSS scales the SVG to the width it gets."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    labels: int  # how many day labels fit under the plot


# A wide chart for laptops and a narrow one for phones (CSS shows one): text in an SVG scales with it,
# so one drawing cannot have readable labels at both 1200 and 350 pixels.
FRAMES = {"wide": Frame(960, 300, 46, 916, 14, 262, 8), "narrow": Frame(400, 260, 34, 370, 12, 228, 4)}


@dataclass(frozen=True)
class ChartBar:
    """A day's answer count as a bar; title is its tooltip."""

    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass(frozen=True)
class ChartPoint:
    """A day's average or CSAT as a point on its line."""

    series: str
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Tick:
    """A label on an axis, at x (day labels) or y (0-100 labels)."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """The per-day chart laid out in one frame."""

    frame: Frame
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bars: list[ChartBar]
    points: list[ChartPoint]
    most: int  # the most answers on one day: the right-hand scale's top
    lines: Mapping[str, list[str]]  # polylines of each series ("average", "csat")

    @property
    def empty(self) -> bool:
        return not self.bars


def _segments(points: list[tuple[float, float] | None]) -> list[str]:
    """Join consecutive points into polylines; a day without answers breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [" ".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in runs if len(run) > 1]


def chart(series: list[SeriesDay], frame: Frame) -> Chart:
    """Lay out the per-day chart: answer counts as bars, average and CSAT (0-100) as lines with points."""
    f = frame
    days = len(series)
    step = (f.right - f.left) / max(days, 1)
    most = max((day.responses for day in series), default=0)

    def y_of(value: float) -> float:
        return f.bottom - (f.bottom - f.top) * value / 100

    bars: list[ChartBar] = []
    points: list[ChartPoint] = []
    lines: dict[str, list[tuple[float, float] | None]] = {"average": [], "csat": []}
    for i, day in enumerate(series):
        x = f.left + step * (i + 0.5)
        count = day.responses
        label = f"{_day_label(day.date)}: {count} answer{'s' if count != 1 else ''}"
        if count:
            height = (f.bottom - f.top) * count / most
            bars.append(ChartBar(x=round(x - step * 0.35, 1), y=round(f.bottom - height, 1),
                                 w=round(step * 0.7, 1), h=round(height, 1), title=label))
        for name in lines:
            value = getattr(day, name)
            if value is None:
                lines[name].append(None)
                continue
            lines[name].append((x, y_of(float(value))))
            points.append(ChartPoint(series=name, x=round(x, 1), y=round(y_of(float(value)), 1),
                                     title=f"{label}, {_series_name(name)} {float(value):g}"))
    every = max(1, -(-days // f.labels))
    x_ticks = [Tick(at=round(f.left + step * (i + 0.5), 1), label=_day_label(day.date))
               for i, day in enumerate(series) if i % every == 0]
    return Chart(frame=f, y_ticks=[Tick(at=round(y_of(v), 1), label=str(v)) for v in (0, 25, 50, 75, 100)],
                 x_ticks=x_ticks, bars=bars, points=points, most=most,
                 lines={name: _segments(values) for name, values in lines.items()})


def _series_name(name: str) -> str:
    return {"average": "average", "csat": "CSAT %"}[name]


def _day_label(day: str) -> str:
    try:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).strftime("%b %-d")
    except ValueError:
        return day


# Sparklines --------------------------------------------------------------------------------------

SPARK = Frame(width=112, height=28, left=4, right=108, top=4, bottom=24, labels=0)


@dataclass(frozen=True)
class SparkDot:
    """A week with answers: its CSAT as a dot on the sparkline."""

    x: float
    y: float


@dataclass(frozen=True)
class Sparkline:
    """An entity's weekly CSAT laid out small: lines through consecutive weeks with answers, a dot on each."""

    frame: Frame
    lines: list[str]
    dots: list[SparkDot]
    weeks: int
    gaps: int  # weeks without answers: no dot, and the line breaks there
    label: str  # the numbers in words, for screen readers and the tooltip

    @property
    def empty(self) -> bool:
        return not self.dots


def sparkline(trend: Trend, frame: Frame = SPARK) -> Sparkline:
    """Lay out a trend's weeks, CSAT 0-100 from bottom to top; a week without answers is a gap."""
    f = frame
    count = len(trend.weeks)
    step = (f.right - f.left) / max(count - 1, 1)
    values: list[tuple[float, float] | None] = []
    words = []
    for i, week in enumerate(trend.weeks):
        x = f.left + step * i if count > 1 else (f.left + f.right) / 2
        when = _week_label(week.start, week.end)
        if week.csat is None:
            values.append(None)
            words.append(f"{when}: no answers")
            continue
        values.append((x, f.bottom - (f.bottom - f.top) * week.csat / 100))
        words.append(f"{when}: {week.csat:g}% of {week.responses} answer{'s' if week.responses != 1 else ''}")
    dots = [SparkDot(x=round(x, 1), y=round(y, 1)) for x, y in (v for v in values if v is not None)]
    return Sparkline(frame=f, lines=_segments(values), dots=dots, weeks=count, gaps=count - len(dots),
                     label="CSAT by week. " + "; ".join(words) + ".")


@lru_cache(maxsize=512)
def _week_label(start: date, end: date) -> str:
    first = start.strftime("%b %-d")
    if start == end:
        return first
    return f"{first}–{end.strftime('%-d') if end.month == start.month else end.strftime('%b %-d')}"
