"""Scores over a date range: the summary with its per-day series and per-source split, and the answers themselves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from tracker.cases.stats import case_numbers
from tracker.config import Settings
from tracker.model import Aggregate, Answer, Case, ScoreCard, Survey
from tracker.scales import SCALES
from tracker.scores.maths import DAY_MS, score_card
from tracker.store import Store
from tracker.store.keys import split_kind
from tracker.store.queries import BATCH
from tracker.store.rollups import cross_label

FILTERS = ("source", "brand", "team", "agent", "scale", "channel", "tag", "organisation", "resolved_by")
MAX_SPAN_DAYS = 3660  # a summary covers at most about ten years of days
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Facets:
    """What answers and sent surveys are filtered by; as a filter, None (or empty) lets every value through.

    agent is `<source>:<agent id>`, as the agents' aggregates name it. An answer's or survey's facets hold its
    tags in tags (tag stays None); a filter's tag passes the answers and surveys that have that tag.
    """

    source: str | None = None
    brand: str | None = None
    team: str | None = None
    agent: str | None = None
    scale: str | None = None
    channel: str | None = None
    tag: str | None = None
    organisation: str | None = None
    resolved_by: str | None = None
    tags: tuple[str, ...] | None = None

    @classmethod
    def of_answer(cls, answer: Answer) -> Facets:
        return cls(answer.source, answer.brand, answer.team, answer.agent, answer.scale, answer.channel,
                   organisation=answer.organisation, resolved_by=answer.resolved_by, tags=answer.tags)

    @classmethod
    def of_survey(cls, survey: Survey) -> Facets:
        agent = f"{survey.source}:{survey.agent_id}" if survey.agent_id else None
        return cls(survey.source or None, survey.brand, survey.team, agent, survey.scale or None, survey.channel,
                   organisation=survey.organisation, resolved_by=survey.resolved_by, tags=survey.tags)

    def passes(self, filters: Facets) -> bool:
        """Tell whether these facets pass the filters."""
        return all((wanted in (self.tags or ())) if name == "tag" else getattr(self, name) == wanted
                   for name in FILTERS if (wanted := getattr(filters, name)))

    def chosen(self) -> list[tuple[str, str]]:
        """Return the filters actually set, as (name, value) pairs in FILTERS order."""
        return [(name, value) for name in FILTERS if (value := getattr(self, name))]

    def pairs(self) -> list[tuple[str, str]]:
        """Return every value an answer's or survey's facets hold, as a filter names it: each of its tags as a tag."""
        return [*((name, value) for name, value in self.chosen() if name != "tag"),
                *(("tag", tag) for tag in (self.tags or ()))]

    def one_filter(self) -> tuple[str, str] | None:
        """Return the one filter these filters set, None when they set none or more (an agent's source, which its id
        names, is not another)."""
        chosen = dict(self.chosen())
        if "agent" in chosen and "source" in chosen and chosen["agent"].startswith(f"{chosen['source']}:"):
            del chosen["source"]
        return next(iter(chosen.items())) if len(chosen) == 1 else None


def case_facets(case: Case, survey: Survey | None) -> Facets:
    """Return what a recovery case is filtered by: the facets of the survey whose answer opened it, else (that
    survey is no longer stored) the case's own copy of the ticket's source, team and agent, and the scale."""
    if survey is not None:
        return Facets.of_survey(survey)
    agent = f"{case.source}:{case.agent_id}" if case.source and case.agent_id else None
    return Facets(case.source, None, case.team, agent, case.scale)


@dataclass(frozen=True)
class SeriesDay:
    """One UTC day of a summary's series."""

    date: str
    responses: int
    average: float | None
    csat: float | None


@dataclass(frozen=True)
class Summary:
    """The SPEC §6 numbers of a date range, with a per-day series, a per-source split and the ratings given."""

    date_from: str
    date_to: str
    filters: Mapping[str, str]  # the filters set, as the API echoes them
    card: ScoreCard
    series: list[SeriesDay]
    by_source: Mapping[str, ScoreCard]
    distribution: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    cases: Mapping[str, int | float | None] = field(default_factory=dict)  # the recovery cases' numbers, now


def day_start_ms(day: date) -> int:
    """Return the first millisecond of a UTC day (integer maths: no overflow at year 1 or 9999)."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS


def day_of_ms(ms: int) -> date:
    return date.fromordinal(ms // DAY_MS + _EPOCH_ORDINAL)


def resolve_range(store: Store, now_ms: int, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Fill in an open range: up to today, from the first answer or sent survey; ValueError if reversed."""
    last = date_to or day_of_ms(now_ms)
    if date_from is None:
        first_ms = store.first_activity_ms()
        first = day_of_ms(first_ms) if first_ms is not None else last
        date_from = max(min(first, last), date.fromordinal(max(1, last.toordinal() - MAX_SPAN_DAYS + 1)))
    if date_from > last:
        raise ValueError("from is after to")
    if (last - date_from).days >= MAX_SPAN_DAYS:
        raise ValueError(f"the range is longer than {MAX_SPAN_DAYS} days")
    return date_from, last


def summary(store: Store, settings: Settings, now_ms: int, *, date_from: date | None, date_to: date | None,
            filters: Facets, sources: list[str] | None = None, with_cases: bool = True) -> Summary:
    """Return the SPEC §6 fields over the answers of a date range (UTC days, both ends included).

    Filters: source, brand, team, agent (`<source>:<agent id>`), scale, channel, tag, organisation, resolved_by.
    Trend compares the last 30 days of the range with the 30 before. Unfiltered, or filtered by one source,
    agent, team, brand, channel, tag or organisation, each optionally with resolved_by, the numbers come from the
    entities' per-day rollups (O(days), whatever the number of answers); two such filters, or a scale, read the
    range's answers one by one, each adding the sums it stored. Open ranges end today and start at the first
    activity. sources: every source's id, when the caller has read them already. with_cases: also the recovery
    cases' numbers (under filters, counted from every case kept: tracker.cases.stats), which the dashboard does not
    show.
    """
    first, last = resolve_range(store, now_ms, date_from, date_to)
    anchor = min(now_ms, day_start_ms(last) + DAY_MS - 1)
    totals = _from_rollups(store, filters, first, last, sources)
    if totals is None:
        totals = _from_answers(store, filters, first, last)
    series = []
    for offset in range((last - first).days + 1):
        day_iso = (first + timedelta(days=offset)).isoformat()
        n, value6 = totals.total.days.get(day_iso, (0, 0))
        satisfied = totals.satisfied_by_day.get(day_iso, 0)
        series.append(SeriesDay(date=day_iso, responses=n, average=round(value6 / 6 / n, 2) if n else None,
                                csat=round(satisfied * 100 / n, 2) if n else None))
    return Summary(
        date_from=first.isoformat(), date_to=last.isoformat(),
        filters=dict(filters.chosen()),
        card=score_card("all", totals.total, anchor), series=series,
        by_source={source: score_card(source, sums, anchor) for source, sums in sorted(totals.per_source.items())},
        distribution=dict(sorted(totals.distribution.items())),
        cases=_case_numbers(store, now_ms, filters) if with_cases else {})


def _case_numbers(store: Store, now_ms: int, filters: Facets) -> dict[str, int | float | None]:
    """Return the recovery cases' numbers of the cases whose survey (the answer that opened them) passes the filters:
    every case unfiltered, from the counters; one filter, from its label's counters once every case is labelled;
    else from the cases kept (tracker.cases.stats)."""
    if not filters.chosen():
        return case_numbers(store, now_ms)
    one = filters.one_filter()
    return case_numbers(store, now_ms, lambda case, survey: case_facets(case, survey).passes(filters),
                        label=cross_label(*one) if one else None)


@dataclass
class _Totals:
    """What a summary adds up over its range, however it was read."""

    total: Aggregate = field(default_factory=Aggregate)
    per_source: dict[str, Aggregate] = field(default_factory=dict)
    satisfied_by_day: dict[str, int] = field(default_factory=dict)
    distribution: dict[str, dict[str, int]] = field(default_factory=dict)


def _from_answers(store: Store, filters: Facets, first: date, last: date) -> _Totals:
    """Add up the range's answers and sent surveys one by one: exact for any combination of filters."""
    low, high = day_start_ms(first), day_start_ms(last) + DAY_MS - 1
    totals = _Totals()
    where = dict(filters.chosen())
    for answer in store.answers_between(low, high, where=where):
        if not Facets.of_answer(answer).passes(filters) or answer.scale not in SCALES:
            continue
        totals.total += answer.counted
        source = answer.source or ""
        totals.per_source[source] = totals.per_source.get(source, Aggregate()) + answer.counted
        day = day_of_ms(answer.at_ms).isoformat()
        totals.satisfied_by_day[day] = totals.satisfied_by_day.get(day, 0) + int(answer.satisfied)
        scale = SCALES[answer.scale]
        counts = totals.distribution.setdefault(scale.name, {str(v): 0 for v in scale.values})
        counts[str(answer.rating)] = counts.get(str(answer.rating), 0) + 1
    for survey in store.surveys_between(low, high, where=where):
        if survey.status in ("sent", "answered") and Facets.of_survey(survey).passes(filters):
            totals.total += Aggregate.of_sent()
            totals.per_source[survey.source] = totals.per_source.get(survey.source, Aggregate()) + Aggregate.of_sent()
    return totals


def rolled_entity(filters: Facets) -> tuple[str, str] | None:
    """Return the one entity whose rollup answers these filters, or None when only the answers can.

    A resolved_by filter picks the split kind ("source@bot"); one other filter, its entity (whose rollup keeps
    the per-source split crossed by source, rollups.cross_into). Two filters are a cross no rollup holds, and a scale
    splits every sum: those read the answers.
    """
    if filters.agent and filters.source and filters.agent.startswith(f"{filters.source}:"):
        filters = replace(filters, source=None)  # implied by the agent's id
    chosen = dict(filters.chosen())
    split = chosen.pop("resolved_by", None)

    def kind(name: str) -> str:
        return split_kind(name, split) if split else name

    if not chosen:
        return (kind("overall"), "all")
    if len(chosen) == 1 and "scale" not in chosen:
        ((name, value),) = chosen.items()
        return (kind(name), value)
    return None


def _from_rollups(store: Store, filters: Facets, first: date, last: date,
                  sources: list[str] | None = None) -> _Totals | None:
    """Add up the per-day rollups of the range: the entity's own, and each source's for the split.

    Only the range's days are read (the fields of each day by name), whatever the rollups keep.
    """
    entity = rolled_entity(filters)
    if entity is None:
        return None
    kind, ident = entity
    base, at, split = kind.partition("@")
    totals = _Totals()
    if base == "overall":
        source_kind = f"source{at}{split}"
        if sources is None or split:
            sources = store.ids(source_kind)
        *rolled, own = store.rollups([*((source_kind, source, SUM_FIELDS) for source in sources),
                                      (kind, "all", DAY_FIELDS)], first, last)
        for source, days in zip(sources, rolled, strict=True):
            part = _add_days(days, None)
            if not part.empty:
                totals.per_source[source] = part
        totals.total = _add_days(own, totals)
    elif base in ("source", "agent"):
        totals.total = _add_days(store.rollups([(kind, ident, DAY_FIELDS)], first, last)[0], totals)
        if not totals.total.empty:
            totals.per_source[ident.split(":", 1)[0] if base == "agent" else ident] = totals.total
    else:  # a team, brand, channel, tag or organisation: its per-source split is its rollup crossed by source
        labels = {source: cross_label("source", source)
                  for source in (store.ids("source") if sources is None else sources)}
        crossed = [f"{label}|{name}" for label in labels.values() for name in SUM_FIELDS]
        (days,) = store.rollups([(kind, ident, (*DAY_FIELDS, *crossed))], first, last)
        totals.total = _add_days(days, totals)
        for source, label in labels.items():
            prefix = f"{label}|"
            part = _add_days({day: {name.removeprefix(prefix): value for name, value in fields.items()
                                    if name.startswith(prefix)} for day, fields in days.items()}, None)
            if not part.empty:
                totals.per_source[source] = part
    return totals


# The fields of one day of a rollup: its sums, and one count per rating of every scale.
COUNT_FIELDS = ("n", "sent", "value6", "satisfied", "promoter", "detractor", "nps")
SUM_FIELDS = (*COUNT_FIELDS, "weight", "weighted")
RATING_FIELDS = tuple(f"r|{scale.name}|{value}" for scale in SCALES.values() for value in scale.values)
DAY_FIELDS = (*SUM_FIELDS, *RATING_FIELDS)


def _add_days(rollup: Mapping[str, Mapping[str, str]], into: _Totals | None) -> Aggregate:
    """Sum the days of one rollup; series and distribution go to into when given."""
    counts = dict.fromkeys(COUNT_FIELDS, 0)
    weight = weighted = 0.0
    days: dict[str, tuple[int, int]] = {}
    for day, fields in sorted(rollup.items()):
        for name in COUNT_FIELDS:
            counts[name] += int(fields.get(name, 0))
        weight += float(fields.get("weight", 0.0))
        weighted += float(fields.get("weighted", 0.0))
        n, value6 = int(fields.get("n", 0)), int(fields.get("value6", 0))
        if n or value6:
            days[day] = (n, value6)
        if into is None:
            continue
        if satisfied := int(fields.get("satisfied", 0)):
            into.satisfied_by_day[day] = into.satisfied_by_day.get(day, 0) + satisfied
        for name, count in fields.items():
            if not name.startswith("r|") or not int(count):
                continue
            _, scale_name, rating = name.split("|", 2)
            scale = SCALES[scale_name]
            by_rating = into.distribution.setdefault(scale.name, {str(v): 0 for v in scale.values})
            by_rating[rating] = by_rating.get(rating, 0) + int(count)
    return Aggregate(**counts, weight=weight, weighted=weighted, days=days)


# Answers ------------------------------------------------------------------------------------------

def _bounds(date_from: date | None, date_to: date | None) -> tuple[float | str, float | str]:
    return (day_start_ms(date_from) if date_from else "-inf",
            day_start_ms(date_to) + DAY_MS - 1 if date_to else "+inf")


def iter_responses(store: Store, *, date_from: date | None, date_to: date | None, filters: Facets,
                   newest_first: bool = False, batch: int = BATCH) -> Iterator[Answer]:
    """Yield every answer in a date range (open ends: all time) that passes the filters, oldest first unless asked.

    A reader that stops early asks for a small first batch (later ones grow).
    """
    low, high = _bounds(date_from, date_to)
    where = dict(filters.chosen())
    for answer in store.answers_between(low, high, newest_first=newest_first, batch=batch, where=where):
        if Facets.of_answer(answer).passes(filters):
            yield answer


def customer_responses_page(store: Store, email: str, *, offset: int, limit: int, date_from: date | None,
                            date_to: date | None, filters: Facets) -> tuple[list[Answer], int | None]:
    """Return a customer's matching answers newest first from a position, and the position to go on from."""
    low = day_start_ms(date_from) if date_from else None
    high = day_start_ms(date_to) + DAY_MS - 1 if date_to else None
    found: list[Answer] = []
    while True:
        batch, ended = store.customer_response_slice(email, offset, max(limit + 1, 100))
        for position, answer in batch:
            at = answer.at_ms
            if (low is not None and at < low) or (high is not None and at > high) \
                    or not Facets.of_answer(answer).passes(filters):
                continue
            if len(found) == limit:
                return found, position
            found.append(answer)
        if ended:
            return found, None
        offset += max(limit + 1, 100)
