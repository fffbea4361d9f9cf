"""Each agent's and team's CSAT week by week over the dashboard's range: the sparklines of its tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

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
    found = []
    start = first
    while start <= last:
        end = min(start + timedelta(days=6 - start.weekday()), last)
        found.append((start, end))
        start = end + timedelta(days=1)
    return found


def needs_answers(kind: str, filters: Facets) -> bool:
    """Tell whether the filters cross the kind with another dimension, which no rollup of the kind holds.

    Its own filter is one entity, resolved_by is the split kind ("agent@bot"), and an agent's source is the
    prefix of its id; anything else can only be read from the answers.
    """
    own = {kind, "resolved_by", *(["source"] if kind == "agent" else [])}
    return any(name not in own for name, _ in filters.chosen())


def trends(store: Store, first: date, last: date, filters: Facets,
           rows: Mapping[str, list[str]]) -> dict[str, dict[str, Trend]]:
    """Return the weekly CSAT of the rows shown, by kind ("agent", "team") and id, under the page's filters.

    From each row's per-day rollup (its resolved_by split when filtered so), the range's days only, all rows in
    one pipeline: O(rows * days). Filters that cross dimensions read the range's answers once instead, as the
    summary does for them.
    """
    days: dict[str, dict[str, dict[str, tuple[int, int]]]] = {kind: {} for kind in rows}
    rolled = [kind for kind in rows if not needs_answers(kind, filters)]
    entities = [(kind, ident) for kind in rolled for ident in rows[kind]]
    read = store.rollups([(split_kind(kind, filters.resolved_by) if filters.resolved_by else kind, ident,
                           TREND_FIELDS) for kind, ident in entities], first, last)
    for (kind, ident), rollup in zip(entities, read, strict=True):
        days[kind][ident] = {day: (int(fields.get("n", 0)), int(fields.get("satisfied", 0)))
                             for day, fields in rollup.items()}
    crossed = {kind: set(rows[kind]) for kind in rows if kind not in rolled}
    if crossed:
        for answer in iter_responses(store, date_from=first, date_to=last, filters=filters):
            day = day_of_ms(answer.at_ms).isoformat()
            for kind, wanted in crossed.items():
                counted = answer.agent if kind == "agent" else getattr(answer, kind, None)
                if isinstance(counted, str) and counted in wanted:
                    by_day = days[kind].setdefault(counted, {})
                    n, satisfied = by_day.get(day, (0, 0))
                    by_day[day] = (n + 1, satisfied + int(answer.satisfied))
    spans = weeks_of(first, last)
    return {kind: {ident: _weekly(days[kind].get(ident, {}), spans) for ident in rows[kind]} for kind in rows}


def _weekly(by_day: Mapping[str, tuple[int, int]], spans: list[tuple[date, date]]) -> Trend:
    weeks = []
    for start, end in spans:
        n = satisfied = 0
        for offset in range((end - start).days + 1):
            got = by_day.get((start + timedelta(days=offset)).isoformat())
            if got:
                n, satisfied = n + got[0], satisfied + got[1]
        weeks.append(Week(start=start, end=end, responses=n, satisfied=satisfied))
    return Trend(weeks=weeks)
