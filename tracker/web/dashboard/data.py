"""What the dashboard shows: its validated filters, the numbers from the score queries, and the chart geometry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from tracker.config import Settings
from tracker.i18n.catalogue import scale_labels
from tracker.model import Answer, ScoreCard
from tracker.schema_cache import schema
from tracker.scores.ranking import aggregate_list, ranked_customers
from tracker.scores.scales import SCALES
from tracker.scores.summary import SeriesDay, iter_responses, summary
from tracker.store import Store

DEFAULT_DAYS = 30
MAX_DAYS = 366
FILTERS = ("source", "brand", "team", "agent")
AT_RISK_ROWS = 10
COMMENT_ROWS = 12
TABLE_ROWS = 50


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


class DashboardQuerySchema(Schema):
    """The dashboard's filters as query parameters: a UTC date range and one source, brand, team or agent."""

    class Meta:
        unknown = EXCLUDE  # the page's own links and browsers may add parameters of their own

    date_from = fields.Date(data_key="from", load_default=None)
    date_to = fields.Date(data_key="to", load_default=None)
    source = fields.String(load_default=None, validate=validate.Length(max=200))
    brand = fields.String(load_default=None, validate=validate.Length(max=200))
    team = fields.String(load_default=None, validate=validate.Length(max=200))
    agent = fields.String(load_default=None, validate=validate.Length(max=200))

    @pre_load
    def drop_empty(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        # The filter form sends every field; an empty one means "all".
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}

    @validates_schema
    def check_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise ValidationError("The start date is after the end date.", "from")
        if start and end and (end - start).days >= MAX_DAYS:
            raise ValidationError(f"Choose at most {MAX_DAYS} days.", "to")


def default_query(today: date) -> dict[str, Any]:
    return {"date_from": today - timedelta(days=DEFAULT_DAYS - 1), "date_to": today,
            **dict.fromkeys(FILTERS)}


def load_query(args: Any, store: Store, today: date) -> dict[str, Any]:
    """Validate the filters and fill in the default range; raise ValidationError naming the bad ones."""
    query = schema(DashboardQuerySchema).load(args)
    unknown = {name: [f"No {name} by that name has any answers."] for name in FILTERS
               if query[name] and query[name] not in store.ids(name)}
    if unknown:
        raise ValidationError(unknown)
    end = query["date_to"] or today
    start = query["date_from"] or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationError({"from": ["The start date is after the end date."]})
    if (end - start).days >= MAX_DAYS:
        raise ValidationError({"from": [f"Choose at most {MAX_DAYS} days."]})
    return {**query, "date_from": start, "date_to": end}


def collect(store: Store, settings: Settings, now_ms: int, query: dict[str, Any]) -> dict[str, Any]:
    """Gather every number the page shows for these filters."""
    filters = {name: query[name] for name in FILTERS if query[name]}
    overview = summary(store, settings, now_ms, date_from=query["date_from"], date_to=query["date_to"],
                       filters=filters)
    # Most valuable first, then the most recently unhappy: "which valuable customers are unhappy?"
    at_risk, _ = ranked_customers(store, settings, now_ms, at_risk=True, sort="value", order="desc",
                                  limit=AT_RISK_ROWS, cursor=None)
    all_agents = aggregate_list(store, "agent", now_ms)
    agents = _rows(all_agents, query["agent"])
    teams = _rows(aggregate_list(store, "team", now_ms), query["team"])
    comments = latest_comments(store, query, filters)
    return {
        "overview": overview.card,
        "charts": {name: chart(overview.series, frame) for name, frame in FRAMES.items()},
        "distribution": distribution(overview.distribution),
        "by_source": sorted(overview.by_source.items()),
        "at_risk": at_risk,
        "agents": agents,
        "teams": teams,
        "comments": comments,
        "options": {name: store.ids(name) for name in ("source", "brand", "team")}
        | {"agent": sorted(((row.id, row.name or row.id) for row in all_agents), key=lambda pair: pair[1].lower())},
    }


def latest_comments(store: Store, query: dict[str, Any], filters: dict[str, str],
                    limit: int = COMMENT_ROWS) -> list[Answer]:
    """Return the newest commented answers of the chosen days (the page's range, like its numbers), newest first."""
    found: list[Answer] = []
    for answer in iter_responses(store, date_from=query["date_from"], date_to=query["date_to"], filters=filters,
                                 newest_first=True):
        if answer.comment:
            found.append(answer)
            if len(found) == limit:
                break
    return found


def _rows(rows: list[ScoreCard], only: str | None) -> list[ScoreCard]:
    picked = [row for row in rows if only is None or row.id == only]
    picked.sort(key=lambda row: (-row.responses, (row.name or row.id).lower()))
    return picked[:TABLE_ROWS]


def distribution(counts: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Turn {scale: {rating: count}} into labelled bars, every rating of the scale shown, highest first."""
    scales = []
    for name, by_rating in sorted(counts.items()):
        if name not in SCALES:
            continue
        got = {int(rating): int(n) for rating, n in by_rating.items()}
        total = sum(got.values())
        if not total:
            continue
        bars = [{"rating": value, "label": label, "count": got.get(value, 0),
                 "share": round(got.get(value, 0) * 100 / total, 1),
                 "satisfied": SCALES[name].satisfied(value)}
                for value, label in reversed(scale_labels("en", name))]
        scales.append({"scale": name, "total": total, "bars": bars})
    return scales


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


def chart(series: list[SeriesDay], frame: Frame) -> dict[str, Any]:
    """Lay out the per-day chart: answer counts as bars, average and CSAT (0-100) as lines with points."""
    f = frame
    days = len(series)
    step = (f.right - f.left) / max(days, 1)
    most = max((day.responses for day in series), default=0)

    def y_of(value: float) -> float:
        return f.bottom - (f.bottom - f.top) * value / 100

    bars, points = [], []
    lines: dict[str, list[tuple[float, float] | None]] = {"average": [], "csat": []}
    for i, day in enumerate(series):
        x = f.left + step * (i + 0.5)
        count = day.responses
        label = f"{_day_label(day.date)}: {count} answer{'s' if count != 1 else ''}"
        if count:
            height = (f.bottom - f.top) * count / most
            bars.append({"x": round(x - step * 0.35, 1), "y": round(f.bottom - height, 1),
                         "w": round(step * 0.7, 1), "h": round(height, 1), "title": label})
        for name in lines:
            value = getattr(day, name)
            if value is None:
                lines[name].append(None)
                continue
            lines[name].append((x, y_of(float(value))))
            points.append({"series": name, "x": round(x, 1), "y": round(y_of(float(value)), 1),
                           "title": f"{label}, {_series_name(name)} {float(value):g}"})
    every = max(1, -(-days // f.labels))
    x_ticks = [{"x": round(f.left + step * (i + 0.5), 1), "label": _day_label(day.date)}
               for i, day in enumerate(series) if i % every == 0]
    return {
        **asdict(f),
        "y_ticks": [{"y": round(y_of(v), 1), "label": str(v)} for v in (0, 25, 50, 75, 100)],
        "x_ticks": x_ticks, "bars": bars, "points": points, "most": most,
        "lines": {name: _segments(values) for name, values in lines.items()},
        "empty": not bars,
    }


def _series_name(name: str) -> str:
    return {"average": "average", "csat": "CSAT %"}[name]


def _day_label(day: str) -> str:
    try:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).strftime("%b %-d")
    except ValueError:
        return day
