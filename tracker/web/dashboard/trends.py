"""Each agent's and team's CSAT week by week over the dashboard's range: the sparklines of its tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from tracker.scores.dimensions import agents_of, crossing_of
from tracker.scores.summary import Facets, day_of_ms, iter_responses
from tracker.store import Store
from tracker.store.keys import split_kind

TREND_FIELDS = ("n", "satisfied")  # what a week's CSAT needs of each day of a rollup


@dataclass(frozen=True)
class Week:
    """One calendar week (Monday to Sunday, cut to the range) of an entity's answers."""

    start: date
    end: date
    responses: int
    satisfied: int

    @property
    def csat(self) -> float | None:
        """The share of satisfied answers in percent; None for a week without answers (a gap, never a zero)."""
        return round(self.satisfied * 100 / self.responses, 1) if self.responses else None


@dataclass(frozen=True)
class Trend:
    """An entity's weeks over the range, oldest first, every week of the range present."""

    weeks: list[Week]


def weeks_of(first: date, last: date) -> list[tuple[date, date]]:
    """Cut a range (both ends included) into calendar weeks, Monday to Sunday, the first and last cut to it."""
    found: list[tuple[date, date]] = []
    start = first
    while start <= last:
        end = start + timedelta(days=min(6 - start.weekday(), (last - start).days))  # no day past last (or 9999)
        found.append((start, end))
        if end == last:
            break
        start = end + timedelta(days=1)
    return found


def trends(store: Store, first: date, last: date, filters: Facets,
           rows: Mapping[str, list[str]]) -> dict[str, dict[str, Trend]]:
    """Return the weekly CSAT of the rows shown, by kind ("agent", "team") and id, under the page's filters.

    From each row's per-day rollup (its resolved_by split when filtered so; its days crossed by the value of one
    other dimension when filtered by it, tracker.store.rollups.cross_into), the range's days only, all rows in one
    pipeline: O(rows * days), each row's weeks summed straight from its HMGET's reply (store.span_sums) unless the
    range is too long for one. Two filters of other dimensions are a cross no rollup holds: those read the range's
    answers once instead, as the summary does for them.
    """
    days: dict[str, dict[str, dict[str, tuple[int, int]]]] = {kind: {} for kind in rows}
    labels = {kind: crossing_of(kind, filters) for kind in rows}
    rolled = [kind for kind in rows if labels[kind][0]]
    entities = [(kind, ident) for kind in rolled  # an agent of another source than the filter's counts nothing
                for ident in (agents_of(rows[kind], filters) if kind == "agent" else rows[kind])]
    prefixes = {kind: f"{labels[kind][1]}|" if labels[kind][1] else "" for kind in rolled}
    spans = weeks_of(first, last)
    asked = [(split_kind(kind, filters.resolved_by) if filters.resolved_by else kind, ident,
              [prefixes[kind] + name for name in TREND_FIELDS]) for kind, ident in entities]
    found: dict[str, dict[str, Trend]] = {kind: {} for kind in rows}
    weekly = store.span_sums(asked, first, last, spans)  # each row's weeks summed from one HMGET of its range
    if weekly is not None:
        for (kind, ident), sums in zip(entities, weekly, strict=True):
            found[kind][ident] = Trend(weeks=[Week(start=start, end=end, responses=n, satisfied=satisfied)
                                              for (start, end), (n, satisfied) in zip(spans, sums, strict=True)])
    else:  # a range longer than one HMGET reads: by day, each day's fields read as they are found
        for (kind, ident), rollup in zip(entities, store.rollups(asked, first, last), strict=True):
            n, satisfied = (prefixes[kind] + name for name in TREND_FIELDS)
            days[kind][ident] = {day: (int(fields.get(n, 0)), int(fields.get(satisfied, 0)))
                                 for day, fields in rollup.items()}
    crossed = {kind: set(rows[kind]) for kind in rows if kind not in rolled}
    if crossed:
        for answer in iter_responses(store, date_from=first, date_to=last, filters=filters):
            day = day_of_ms(answer.at_ms).isoformat()
            for kind, wanted in crossed.items():
                counted = answer.agent if kind == "agent" else getattr(answer, kind, None)
                if isinstance(counted, str) and counted in wanted:
                    by_day = days[kind].setdefault(counted, {})
                    n_day, satisfied_day = by_day.get(day, (0, 0))
                    by_day[day] = (n_day + 1, satisfied_day + int(answer.satisfied))
    names = _day_names(spans)
    return {kind: {ident: found[kind].get(ident) or _weekly(days[kind].get(ident, {}), spans, names)
                   for ident in rows[kind]} for kind in rows}


def _day_names(spans: list[tuple[date, date]]) -> list[list[str]]:
    """Name each week's days as rollups name them, once for every row."""
    return [[(start + timedelta(days=offset)).isoformat() for offset in range((end - start).days + 1)]
            for start, end in spans]


def _weekly(by_day: Mapping[str, tuple[int, int]], spans: list[tuple[date, date]],
            names: list[list[str]] | None = None) -> Trend:
    """Sum an entity's days into the range's weeks (names: _day_names of the spans, when already made)."""
    weeks = []
    for (start, end), day_names in zip(spans, names or _day_names(spans), strict=True):
        n = satisfied = 0
        for day in day_names:
            if got := by_day.get(day):
                n, satisfied = n + got[0], satisfied + got[1]
        weeks.append(Week(start=start, end=end, responses=n, satisfied=satisfied))
    return Trend(weeks=weeks)
