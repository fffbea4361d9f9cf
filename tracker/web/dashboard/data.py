"""What the dashboard shows: its validated filters and the numbers from the score queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from tracker.config import Settings
from tracker.events import AGGREGATE_ID_MAX, IDENT_MAX
from tracker.i18n.catalogue import scale_labels, text
from tracker.model import Answer, ScoreCard
from tracker.organisations import MAX_LENGTH as ORGANISATION_MAX
from tracker.scales import SCALES
from tracker.schema_cache import schema
from tracker.scores.dimensions import agents_of, crossing_of, filtered_page, implied
from tracker.scores.maths import DAY_MS
from tracker.scores.ranking import (
    aggregate_cards,
    aggregate_counts,
    customer_cards,
    kind_of,
    ranked_counts,
    ranked_emails,
)
from tracker.scores.summary import Facets, day_start_ms, iter_responses, rolled_entity, summary
from tracker.store import Store
from tracker.store.keys import RESOLVERS
from tracker.store.rollups import reason_field
from tracker.web.dashboard.chart import FRAMES, Chart, Sparkline, chart, sparkline
from tracker.web.dashboard.trends import trends

DEFAULT_DAYS = 30
MAX_DAYS = 366
FILTERS = ("source", "brand", "team", "agent", "channel", "tag", "organisation", "resolved_by")
LISTED = ("source", "brand", "team", "agent", "channel")  # the filters whose every value the form lists
COUNTED = ("tag", "organisation")  # typed in (there can be thousands): each checked by its own aggregate's counts
SUGGESTED = 50  # the most answered tags and organisations the form suggests
AT_RISK_ROWS = 10
REVENUE_ROWS = 200  # revenue at risk sums the order value of at most this many at-risk customers, most valuable first
REASON_SCAN = 5000  # the reasons breakdown reads at most this many of the range's answers, newest first
COMMENT_ROWS = 12
COMMENT_SCAN = 2000  # the latest comments are looked for among at most this many of the newest commented answers
TABLE_ROWS = 50


class DashboardQuerySchema(Schema):
    """The dashboard's filters as query parameters: a UTC date range and at most one value of each dimension."""

    class Meta:
        unknown = EXCLUDE  # the page's own links and browsers may add parameters of their own

    date_from = fields.Date(data_key="from", load_default=None)
    date_to = fields.Date(data_key="to", load_default=None)
    source = fields.String(load_default=None, validate=validate.Length(max=AGGREGATE_ID_MAX))
    brand = fields.String(load_default=None, validate=validate.Length(max=AGGREGATE_ID_MAX))
    team = fields.String(load_default=None, validate=validate.Length(max=AGGREGATE_ID_MAX))
    agent = fields.String(load_default=None, validate=validate.Length(max=AGGREGATE_ID_MAX))
    channel = fields.String(load_default=None, validate=validate.Length(max=AGGREGATE_ID_MAX))
    tag = fields.String(load_default=None, validate=validate.Length(max=IDENT_MAX))
    organisation = fields.String(load_default=None, validate=validate.Length(max=ORGANISATION_MAX))
    resolved_by = fields.String(load_default=None, validate=validate.OneOf(
        RESOLVERS, error="Choose human or bot (or any)."))

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


@dataclass(frozen=True)
class DashboardQuery:
    """The page's filters: a UTC date range, both ends included, and at most one of each filter."""

    date_from: date
    date_to: date
    source: str | None = None
    brand: str | None = None
    team: str | None = None
    agent: str | None = None
    channel: str | None = None
    tag: str | None = None
    organisation: str | None = None
    resolved_by: str | None = None

    @property
    def facets(self) -> Facets:
        return Facets(source=self.source, brand=self.brand, team=self.team, agent=self.agent, channel=self.channel,
                      tag=self.tag, organisation=self.organisation, resolved_by=self.resolved_by)

    @property
    def filters(self) -> dict[str, Any]:
        """The filters set, by name (what the page's links and the CSV carry)."""
        return {name: value for name in FILTERS if (value := getattr(self, name))}


@dataclass(frozen=True)
class Bar:
    """One rating's bar in the distribution."""

    rating: int
    label: str
    count: int
    share: float  # percent of the scale's answers
    satisfied: bool


@dataclass(frozen=True)
class ScaleBars:
    """The distribution of one scale's answers: every rating of the scale, highest first."""

    scale: str
    total: int
    bars: list[Bar]


@dataclass(frozen=True)
class FilterOptions:
    """What the filter form offers: sources, brands, teams and channels by id, agents as (id, name) by name, and
    the most answered tags and organisations as suggestions for their text boxes."""

    source: list[str]
    brand: list[str]
    team: list[str]
    agent: list[tuple[str, str]]
    channel: list[str]
    tag: list[str]
    organisation: list[str]


@dataclass(frozen=True)
class DashboardData:
    """Every number the page shows for one query."""

    overview: ScoreCard
    charts: Mapping[str, Chart]  # by frame name: "wide", "narrow"
    distribution: list[ScaleBars]
    by_source: list[tuple[str, ScoreCard]]
    at_risk: list[ScoreCard]
    agents: list[ScoreCard]
    teams: list[ScoreCard]
    sparklines: Mapping[str, Mapping[str, Sparkline]]  # "agent"/"team" -> id -> its weekly CSAT over the range
    comments: list[Answer]
    comments_complete: bool  # False: fewer than COMMENT_ROWS found among the newest COMMENT_SCAN answers
    options: FilterOptions
    reasons: Reasons
    revenue: RevenueAtRisk


@dataclass(frozen=True)
class Reasons:
    """The follow-up reasons of the range's unhappy answers: (reason, count), most given first.

    Read from the rollup of the entity the filters name (the range's days of its unsatisfied answers and of
    each reason's count: tracker.store.rollups.reason_field), whatever the number of answers. Two filters of
    other dimensions, or a scale, are in no rollup: those count the range's answers, newest first, reading at
    most REASON_SCAN of them (complete False when the range holds more, and the counts cover the newest ones).
    """

    rows: list[tuple[str, str, int]]  # (reason as stored, its English label, count)
    unhappy: int  # unhappy answers read
    without_reason: int
    complete: bool
    read: int


@dataclass(frozen=True)
class RevenueAtRisk:
    """The live order value of the at-risk customers, per currency: of the most valuable REVENUE_ROWS of them
    (complete False when there are more)."""

    totals: list[tuple[str, str]]  # (currency, total), the biggest first
    customers: int
    complete: bool


@dataclass(frozen=True)
class Preset:
    """One of the index's date links."""

    key: str
    label: str
    date_from: date
    date_to: date


def presets(today: date, first_day: date | None) -> list[Preset]:
    """The date links: the last 7, 30 and 90 days, this month, last month and all time (from the first answer or
    sent survey, at most MAX_DAYS days back, as far as the page goes)."""
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    earliest = today - timedelta(days=MAX_DAYS - 1)
    start = max(min(first_day or today, today), earliest)
    return [Preset("7d", "Last 7 days", today - timedelta(days=6), today),
            Preset("30d", "Last 30 days", today - timedelta(days=29), today),
            Preset("90d", "Last 90 days", today - timedelta(days=89), today),
            Preset("month", "This month", month, today),
            Preset("last-month", "Last month", last_month_end.replace(day=1), last_month_end),
            Preset("all", "All time" if start > earliest else f"Last {MAX_DAYS} days", start, today)]


def default_query(today: date) -> DashboardQuery:
    return DashboardQuery(date_from=today - timedelta(days=DEFAULT_DAYS - 1), date_to=today)


def known_ids(store: Store) -> dict[str, list[str]]:
    """Read every source, brand, team, agent and channel with an aggregate, once per page."""
    return store.ids_of(LISTED)


def load_query(args: Any, known: Mapping[str, list[str]], today: date, store: Store) -> DashboardQuery:
    """Validate the filters against the known ids (a tag or organisation against its own aggregate) and fill in the
    default range; raise ValidationError naming the bad ones."""
    try:
        query = schema(DashboardQuerySchema).load(args)
        malformed: dict[str, Any] = {}
    except ValidationError as exc:  # name the unknown values among the well-formed ones too, all at once
        query = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        malformed = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    unknown = {name: [f"No {name} by that name has any answers."] for name in LISTED
               if query.get(name) and query[name] not in known[name]}
    typed = [name for name in COUNTED if query.get(name)]
    counts = [store.entity_counts(name, [query[name]])[0] for name in typed]
    unknown |= {name: [f"No {name} by that name has any answers."] for name, (n, sent) in zip(typed, counts,
                                                                                              strict=True)
                if not (n or sent)}
    if malformed or unknown:
        raise ValidationError({**unknown, **malformed})
    end = query["date_to"] or today
    start = query["date_from"] or end - timedelta(days=min(DEFAULT_DAYS - 1, (end - date.min).days))  # not before 1
    if start > end:
        raise ValidationError({"from": ["The start date is after the end date."]})
    if (end - start).days >= MAX_DAYS:
        raise ValidationError({"from": [f"Choose at most {MAX_DAYS} days."]})
    return DashboardQuery(date_from=start, date_to=end, **{name: query[name] for name in FILTERS})


def suggestions(store: Store, kind: str) -> list[str]:
    """The SUGGESTED most answered ids of a kind (tags, organisations) for the form's datalist.

    The head of the kind's ranked set: the cost of the suggestions, however many ids the kind has."""
    return store.ranked_entities(kind, 0, SUGGESTED)[0]


def table(store: Store, kind: str, query: DashboardQuery, ids: list[str], now_ms: int,
          names: Mapping[str, str | None], counted: list[tuple[str, int]] | None = None) -> list[ScoreCard]:
    """The agents' or teams' table (all time) under the page's filters, at most TABLE_ROWS, most answered first.

    Its own filter picks one row, resolved_by reads the split rollups and one filter of another dimension the sums
    crossed by it (tracker.scores.dimensions); two such filters cross three dimensions, which only the answers
    hold (read once).
    """
    rolled, label = crossing_of(kind, query.facets)
    if not rolled or implied(query.facets) is None:
        return filtered_page(store, kind, now_ms, 0, TABLE_ROWS, query.facets)[0]
    split = kind_of(kind, query.resolved_by)
    if counted is not None and split == kind and label is None and not (kind == "agent" and query.source):
        counts = counted  # every id's own counts, which the caller has read already
    else:
        counts = aggregate_counts(store, split, agents_of(ids, query.facets) if kind == "agent" else ids,
                                  crossed=label)
    return aggregate_cards(store, split, _rows(counts, getattr(query, kind), names), now_ms,
                           names if kind == "agent" else None, crossed=label)


def collect(store: Store, settings: Settings, now_ms: int, query: DashboardQuery,
            known: Mapping[str, list[str]]) -> DashboardData:
    """Gather every number the page shows for these filters, each read once (known: known_ids)."""
    overview = summary(store, settings, now_ms, date_from=query.date_from, date_to=query.date_to,
                       filters=query.facets, sources=known["source"], with_cases=False)  # the page shows none
    # Most valuable first, then the most recently unhappy: "which valuable customers are unhappy?"
    # The table shows the first rows as cards; the revenue sums the orders of all REVENUE_ROWS, from their profiles.
    valued, more = ranked_emails(store, settings, at_risk=True, sort="value", order="desc", limit=REVENUE_ROWS,
                                 cursor=None)
    at_risk = customer_cards(store, settings, valued[:AT_RISK_ROWS], now_ms)
    comments = comments_of(store, query.date_from, query.date_to, query.facets)
    agent_counts = ranked_counts(store, "agent")  # every agent's answers, from one ranked set
    names = store.agent_names([ident for ident, _ in agent_counts])
    agents = table(store, "agent", query, known["agent"], now_ms, names, counted=agent_counts)
    teams = table(store, "team", query, known["team"], now_ms, {}, counted=ranked_counts(store, "team"))
    return DashboardData(
        overview=overview.card,
        charts={name: chart(overview.series, frame) for name, frame in FRAMES.items()},
        distribution=distribution(overview.distribution),
        by_source=sorted(overview.by_source.items()),
        at_risk=at_risk,
        agents=agents,
        teams=teams,
        sparklines={kind: {ident: sparkline(trend) for ident, trend in by_id.items()}
                    for kind, by_id in trends(store, query.date_from, query.date_to, query.facets,
                                              {"agent": [card.id for card in agents],
                                               "team": [card.id for card in teams]}).items()},
        comments=comments[0], comments_complete=comments[1],
        options=FilterOptions(
            source=known["source"], brand=known["brand"], team=known["team"],
            agent=sorted(((ident, names.get(ident) or ident) for ident, _ in agent_counts),
                         key=lambda pair: pair[1].lower()),
            channel=known["channel"], tag=suggestions(store, "tag"),
            organisation=suggestions(store, "organisation")),
        reasons=reasons_of(store, query.date_from, query.date_to, query.facets),
        revenue=revenue_at_risk(store.order_totals(valued), complete=more is None),
    )


def reasons_of(store: Store, date_from: date, date_to: date, filters: Facets, limit: int = REASON_SCAN) -> Reasons:
    """Count the follow-up reasons of the range's unhappy answers: from the rollups when one entity answers the
    filters, else from the answers (newest first, at most limit read)."""
    entity = rolled_entity(filters)
    if entity is not None:
        return _reasons_rolled(store, date_from, date_to, entity)
    counts: dict[str, int] = {}
    unhappy = without = read = 0
    complete = True
    for answer in iter_responses(store, date_from=date_from, date_to=date_to, filters=filters, newest_first=True):
        if read == limit:
            complete = False
            break
        read += 1
        if answer.satisfied:
            continue
        unhappy += 1
        if answer.reason:
            counts[answer.reason] = counts.get(answer.reason, 0) + 1
        else:
            without += 1
    rows = [(reason, reason_label(reason), count)
            for reason, count in sorted(counts.items(), key=lambda row: (-row[1], row[0]))]
    return Reasons(rows=rows, unhappy=unhappy, without_reason=without, complete=complete, read=read)


def _reasons_rolled(store: Store, date_from: date, date_to: date, entity: tuple[str, str]) -> Reasons:
    """Sum the range's days of one entity's rollup: answers, satisfied ones and each known reason's count."""
    names = {reason_field(reason): reason for reason in store.reasons()}
    kind, ident = entity
    (days,) = store.rollups([(kind, ident, ("n", "satisfied", *names))], date_from, date_to)
    counts: dict[str, int] = {}
    answers = satisfied = 0
    for day_fields in days.values():
        answers += int(day_fields.get("n", 0))
        satisfied += int(day_fields.get("satisfied", 0))
        for name, reason in names.items():
            if count := int(day_fields.get(name, 0)):
                counts[reason] = counts.get(reason, 0) + count
    unhappy = answers - satisfied
    rows = [(reason, reason_label(reason), count)
            for reason, count in sorted(counts.items(), key=lambda row: (-row[1], row[0]))]
    return Reasons(rows=rows, unhappy=unhappy, without_reason=max(0, unhappy - sum(counts.values())), complete=True,
                   read=answers)


def reason_label(reason: str) -> str:
    """The English label of one of our follow-up reasons; an operator's own reason (TRACKER_FOLLOWUP_REASONS) is
    its own label."""
    from tracker.web.pages.followup import BUILT_IN_REASONS

    return text("en", f"reason.{reason}") if reason in BUILT_IN_REASONS else reason


def revenue_at_risk(orders: Sequence[tuple[int, Mapping[str, int]] | None], complete: bool) -> RevenueAtRisk:
    """Sum the live order totals of these at-risk customers (store.order_totals: live orders and their value per
    currency in minor units; None: one no longer there), per currency (every currency a customer bought in)."""
    totals: dict[str, int] = {}
    for bought in orders:
        if bought is None or not bought[0]:
            continue
        for currency, total in bought[1].items():
            totals[currency] = totals.get(currency, 0) + total
    rows = [(currency, f"{Decimal(value) / 100:.2f}")
            for currency, value in sorted(totals.items(), key=lambda item: -item[1]) if value]
    return RevenueAtRisk(totals=rows, customers=sum(1 for bought in orders if bought is not None),
                         complete=complete)


def latest_comments(store: Store, date_from: date | None, date_to: date | None, filters: Facets,
                    limit: int = COMMENT_ROWS) -> list[Answer]:
    """Return the newest commented answers of the chosen days (the page's range, like its numbers), newest first."""
    return comments_of(store, date_from, date_to, filters, limit)[0]


def comments_of(store: Store, date_from: date | None, date_to: date | None, filters: Facets,
                limit: int = COMMENT_ROWS, scan: int = COMMENT_SCAN) -> tuple[list[Answer], bool]:
    """Return the newest commented answers of the chosen days passing the filters, newest first, and whether the
    search was whole: it reads at most scan of the range's answers with a comment (a filter few of them pass would
    otherwise read them all; of its answers, until the index of the commented ones is complete), False when it
    stopped there with fewer than limit found."""
    low = day_start_ms(date_from) if date_from else "-inf"
    high = day_start_ms(date_to) + DAY_MS - 1 if date_to else "+inf"
    found: list[Answer] = []
    read = 0
    # The commented answers' index once it is complete (then scan counts answers with a comment), else every answer.
    search = store.comments_between if store.comment_index_complete() else store.commented_between
    for answer in search(low, high, newest_first=True, batch=4 * limit):
        if read == scan:
            return found, False
        read += 1
        if answer is not None and answer.comment and Facets.of_answer(answer).passes(filters):
            found.append(answer)
            if len(found) == limit:
                break
    return found, True


def _rows(rows: list[tuple[str, int]], only: str | None, names: Mapping[str, str | None]) -> list[str]:
    """Pick a table's rows from (id, answers): the chosen one, else the most answered first (then by name), at
    most TABLE_ROWS."""
    picked = [row for row in rows if only is None or row[0] == only]
    picked.sort(key=lambda row: (-row[1], (names.get(row[0]) or row[0]).lower()))
    return [ident for ident, _ in picked[:TABLE_ROWS]]


def distribution(counts: Mapping[str, Mapping[str, int]]) -> list[ScaleBars]:
    """Turn {scale: {rating: count}} into labelled bars, every rating of the scale shown, highest first."""
    scales = []
    for name, by_rating in sorted(counts.items()):
        if name not in SCALES:
            continue
        got = {int(rating): int(n) for rating, n in by_rating.items()}
        total = sum(got.values())
        if not total:
            continue
        bars = [Bar(rating=value, label=label, count=got.get(value, 0),
                    share=round(got.get(value, 0) * 100 / total, 1), satisfied=SCALES[name].satisfied(value))
                for value, label in reversed(scale_labels("en", name))]
        scales.append(ScaleBars(scale=name, total=total, bars=bars))
    return scales


