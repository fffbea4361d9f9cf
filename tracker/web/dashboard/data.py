"""What the dashboard shows: its validated filters and the numbers from the score queries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from tracker.config import Settings
from tracker.i18n.catalogue import scale_labels, text
from tracker.model import Answer, ScoreCard
from tracker.scales import SCALES
from tracker.schema_cache import schema
from tracker.scores.ranking import aggregate_cards, aggregate_counts, ranked_customers
from tracker.scores.summary import Facets, iter_responses, summary
from tracker.store import Store
from tracker.web.dashboard.chart import FRAMES, Chart, chart

DEFAULT_DAYS = 30
MAX_DAYS = 366
FILTERS = ("source", "brand", "team", "agent")
AT_RISK_ROWS = 10
REVENUE_ROWS = 200  # revenue at risk sums the order value of at most this many at-risk customers, most valuable first
REASON_SCAN = 5000  # the reasons breakdown reads at most this many of the range's answers, newest first
COMMENT_ROWS = 12
TABLE_ROWS = 50


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


@dataclass(frozen=True)
class DashboardQuery:
    """The page's filters: a UTC date range, both ends included, and at most one of each filter."""

    date_from: date
    date_to: date
    source: str | None = None
    brand: str | None = None
    team: str | None = None
    agent: str | None = None

    @property
    def facets(self) -> Facets:
        return Facets(source=self.source, brand=self.brand, team=self.team, agent=self.agent)


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
    """What the filter form offers: sources, brands and teams by id, agents as (id, name) by name."""

    source: list[str]
    brand: list[str]
    team: list[str]
    agent: list[tuple[str, str]]


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
    comments: list[Answer]
    options: FilterOptions
    reasons: Reasons
    revenue: RevenueAtRisk


@dataclass(frozen=True)
class Reasons:
    """The follow-up reasons of the range's unhappy answers: (reason, count), most given first.

    Reasons are in no rollup: they are counted from the range's answers, newest first, reading at most
    REASON_SCAN of them (complete False when the range holds more, and the counts cover the newest ones only).
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
    """Read every source, brand, team and agent with an aggregate, once per page."""
    return store.ids_of(FILTERS)


def load_query(args: Any, known: Mapping[str, list[str]], today: date) -> DashboardQuery:
    """Validate the filters against the known ids and fill in the default range; raise ValidationError naming the
    bad ones."""
    query = schema(DashboardQuerySchema).load(args)
    unknown = {name: [f"No {name} by that name has any answers."] for name in FILTERS
               if query[name] and query[name] not in known[name]}
    if unknown:
        raise ValidationError(unknown)
    end = query["date_to"] or today
    start = query["date_from"] or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationError({"from": ["The start date is after the end date."]})
    if (end - start).days >= MAX_DAYS:
        raise ValidationError({"from": [f"Choose at most {MAX_DAYS} days."]})
    return DashboardQuery(date_from=start, date_to=end, **{name: query[name] for name in FILTERS})


def collect(store: Store, settings: Settings, now_ms: int, query: DashboardQuery,
            known: Mapping[str, list[str]]) -> DashboardData:
    """Gather every number the page shows for these filters, each read once (known: known_ids)."""
    overview = summary(store, settings, now_ms, date_from=query.date_from, date_to=query.date_to,
                       filters=query.facets, sources=known["source"])
    # Most valuable first, then the most recently unhappy: "which valuable customers are unhappy?"
    at_risk, more = ranked_customers(store, settings, now_ms, at_risk=True, sort="value", order="desc",
                                     limit=REVENUE_ROWS, cursor=None)
    agent_counts = aggregate_counts(store, "agent", known["agent"])
    names = store.agent_names([ident for ident, _ in agent_counts])
    return DashboardData(
        overview=overview.card,
        charts={name: chart(overview.series, frame) for name, frame in FRAMES.items()},
        distribution=distribution(overview.distribution),
        by_source=sorted(overview.by_source.items()),
        at_risk=at_risk[:AT_RISK_ROWS],
        agents=aggregate_cards(store, "agent", _rows(agent_counts, query.agent, names), now_ms, names),
        teams=aggregate_cards(store, "team", _rows(aggregate_counts(store, "team", known["team"]), query.team, {}),
                              now_ms),
        comments=latest_comments(store, query.date_from, query.date_to, query.facets),
        options=FilterOptions(
            source=known["source"], brand=known["brand"], team=known["team"],
            agent=sorted(((ident, names.get(ident) or ident) for ident, _ in agent_counts),
                         key=lambda pair: pair[1].lower())),
        reasons=reasons_of(store, query.date_from, query.date_to, query.facets),
        revenue=revenue_at_risk(at_risk, complete=more is None),
    )


def reasons_of(store: Store, date_from: date, date_to: date, filters: Facets, limit: int = REASON_SCAN) -> Reasons:
    """Count the follow-up reasons of the range's unhappy answers (newest first, at most limit answers read)."""
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


def reason_label(reason: str) -> str:
    """The English label of one of our follow-up reasons; an operator's own reason (TRACKER_FOLLOWUP_REASONS) is
    its own label."""
    from tracker.web.pages.followup import BUILT_IN_REASONS

    return text("en", f"reason.{reason}") if reason in BUILT_IN_REASONS else reason


def revenue_at_risk(cards: list[ScoreCard], complete: bool) -> RevenueAtRisk:
    """Sum the live order totals of these at-risk customers, per currency (every currency a customer bought in)."""
    totals: dict[str, Decimal] = {}
    for card in cards:
        if card.orders is None or not card.orders.count:
            continue
        per_currency = dict(card.orders.totals) or {card.orders.currency or "": card.orders.total}
        for currency, total in per_currency.items():
            try:
                totals[currency] = totals.get(currency, Decimal(0)) + Decimal(total)
            except InvalidOperation:
                continue
    rows = sorted(((currency, f"{value:.2f}") for currency, value in totals.items() if value),
                  key=lambda row: -Decimal(row[1]))
    return RevenueAtRisk(totals=rows, customers=len(cards), complete=complete)


def latest_comments(store: Store, date_from: date | None, date_to: date | None, filters: Facets,
                    limit: int = COMMENT_ROWS) -> list[Answer]:
    """Return the newest commented answers of the chosen days (the page's range, like its numbers), newest first."""
    found: list[Answer] = []
    for answer in iter_responses(store, date_from=date_from, date_to=date_to, filters=filters, newest_first=True,
                                 batch=4 * limit):
        if answer.comment:
            found.append(answer)
            if len(found) == limit:
                break
    return found


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


