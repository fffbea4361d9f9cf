"""The domain's nouns: small frozen dataclasses that every layer passes to the next.

Plain dicts live only at the boundaries: JSON in and out (marshmallow) and Redis hashes in and
out (the store). Everything between them takes and returns these types. This module imports
nothing of the product, so every package may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

# ---------------------------------------------------------------------------------------------
# Events: what adapters produce, what the event log holds, what ingest applies.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Agent:
    """The agent a ticket was assigned to, as the source names them."""

    id: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Customer:
    """Who an event is about: known by email (folded to lower case) or, until resolved, by the source's id."""

    email: str | None = None
    id: str | None = None
    name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    organisation: str | None = None  # the source's organisation (SPEC §12)


@dataclass(frozen=True)
class Ticket:
    """A helpdesk ticket as one event saw it."""

    id: str
    status: str | None = None
    subject: str | None = None
    channel: str | None = None
    brand: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    agent: Agent | None = None
    agent_involved: bool | None = None
    resolved_by: str | None = None  # "human" or "bot" (SPEC §12); None when the source does not say


@dataclass(frozen=True)
class Order:
    """A shop order as one event saw it; total is a decimal string with two places."""

    id: str
    total: str
    currency: str
    status: str


@dataclass(frozen=True)
class Rating:
    """A survey answer collected outside the tracker (survey.answered), or a survey reported sent (rating None).

    about says what the survey asked about: the event's ticket, or (export-log's post-purchase surveys) an
    order of that id. solved_at_ms, when given, names the solve the survey was about, so a replayed answer
    keeps its survey's id; without it the answer counts for the ticket's one survey.
    """

    scale: str
    rating: int | None = None
    comment: str | None = None
    about: str = "ticket"
    solved_at_ms: int | None = None
    reason: str | None = None  # survey.skipped only: why the survey never went out


@dataclass(frozen=True)
class Event:
    """One normalised event: the same shape from the adapter, through the log, to the store."""

    type: str
    id: str
    source: str
    at_ms: int
    customer: Customer
    ticket: Ticket | None = None
    order: Order | None = None
    answer: Rating | None = None  # survey.answered and survey.sent only


# ---------------------------------------------------------------------------------------------
# Surveys and answers.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Survey:
    """One survey about one solved ticket (or fulfilled order), from creation to its answer."""

    sid: str
    tkey: str
    kind: str  # "ticket" or "order"
    scale: str
    customer: str  # email
    source: str
    status: str  # sending, sent, answered, skipped, failed
    ticket_id: str = ""
    subject: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    brand: str | None = None
    channel: str | None = None
    # SPEC §12 dimensions, copied from the ticket and the customer when the survey is created (none: not written)
    tags: tuple[str, ...] = ()  # the ticket's tags, at most MAX_TAGS counted (tracker.store.surveys)
    organisation: str | None = None  # tracker.organisations.organisation_of
    resolved_by: str | None = None  # "human" or "bot" (tracker.events.resolved_by)
    lang: str = "en"
    solved_at_ms: int = 0
    created_at_ms: int = 0
    sent_at_ms: int | None = None
    expires_at_ms: int | None = None
    answered_at_ms: int | None = None
    closed_at_ms: int | None = None  # when it was skipped or failed
    attempts: int = 0
    next_attempt_at_ms: int | None = None
    reason: str | None = None  # why it was skipped or failed
    error: str | None = None
    reminded_at_ms: int | None = None
    reminder_attempts: int = 0
    reminder_error: str | None = None
    reply_status: str | None = None  # what an emailed reply did: answered, no_rating, ambiguous, auto_reply
    reply_comment: str | None = None
    replied_at_ms: int | None = None
    answered_via: str | None = None  # "email" when the answer came by reply
    test: str | None = None  # "1": a test send (tracker survey test-send), counted in no score, told to no one

    @property
    def ticket_ref(self) -> str:
        """Name the ticket (or order) as the customer knows it: `#1001`."""
        return f"#{self.ticket_id}"


@dataclass(frozen=True)
class Answer:
    """A customer's answer to a survey: the latest rating counts, once, with what it adds to every aggregate."""

    sid: str
    rating: int
    scale: str
    at_ms: int
    customer: str
    counted: Aggregate  # n=1 and the sums of this one answer, as its scale and time decided them
    comment: str | None = None
    reason: str | None = None
    tkey: str | None = None
    tags: tuple[str, ...] = ()  # the survey's SPEC §12 dimensions, as its hash holds them
    organisation: str | None = None
    resolved_by: str | None = None
    source: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    brand: str | None = None
    channel: str | None = None
    subject: str | None = None
    answered_via: str | None = None
    extra: dict[str, str] | None = None  # the answers to a custom survey's extra questions (SPEC §12)

    @property
    def satisfied(self) -> bool:
        return self.counted.satisfied > 0

    @property
    def value6(self) -> int:
        """Return six times the 0-100 value: an integer on every scale."""
        return self.counted.value6

    @property
    def value(self) -> float:
        return round(self.value6 / 6, 2)

    @property
    def agent(self) -> str | None:
        """Name the agent as aggregates and filters do: `<source>:<agent id>`."""
        return f"{self.source or ''}:{self.agent_id}" if self.agent_id else None


# ---------------------------------------------------------------------------------------------
# Scores: the running sums behind every aggregate, and what leads read.
# ---------------------------------------------------------------------------------------------

class RatingScale(Protocol):
    """What the arithmetic asks of a scale (tracker.scales.Scale): the scale decides, once."""

    def value6(self, rating: int) -> int: ...

    def satisfied(self, rating: int) -> bool: ...

    def nps_class(self, rating: int) -> str | None: ...


DAY_MS = 86_400_000
TREND_DAYS = 30  # a trend compares the last 30 days (today included) with the 30 before (tracker.scores.maths)
# Decay: each answer weighs 2^(-age/half-life) with age measured at query time. All weights share the
# factor 2^(-now/half-life), which cancels in a weighted mean, so storing 2^((t - EPOCH)/half-life) per
# answer gives the same score at any query time, and aggregates can be kept as running sums.
DECAY_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
COUNTS = ("n", "sent", "value6", "satisfied", "promoter", "detractor", "nps")
SUMS = ("weight", "weighted")


def day_of(at_ms: int) -> str:
    """Name the UTC day of a time as YYYY-MM-DD."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Aggregate:
    """The running sums behind one entity's scores; one arithmetic for live updates, rebuilds and summaries.

    days holds (answers, sum of value6) per UTC day, for the trend and the per-day series.
    """

    n: int = 0
    sent: int = 0
    value6: int = 0
    satisfied: int = 0
    promoter: int = 0
    detractor: int = 0
    nps: int = 0
    weight: float = 0.0
    weighted: float = 0.0
    days: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of_answer(cls, scale: RatingScale, rating: int, at_ms: int, half_life_days: float) -> Aggregate:
        """Return what one answer adds to every aggregate it counts for."""
        value6 = scale.value6(rating)
        nps_class = scale.nps_class(rating)
        weight = 2.0 ** ((at_ms - DECAY_EPOCH_MS) / (half_life_days * DAY_MS))
        return cls(n=1, value6=value6, satisfied=int(scale.satisfied(rating)),
                   promoter=int(nps_class == "promoter"), detractor=int(nps_class == "detractor"),
                   nps=int(nps_class is not None), weight=weight, weighted=weight * value6 / 6,
                   days={day_of(at_ms): (1, value6)})

    @classmethod
    def of_sent(cls) -> Aggregate:
        """Return what one sent survey adds."""
        return cls(sent=1)

    def __add__(self, other: Aggregate) -> Aggregate:
        days = dict(self.days)
        for day, (n, value6) in other.days.items():
            have_n, have_v = days.get(day, (0, 0))
            days[day] = (have_n + n, have_v + value6)
        values = {f: getattr(self, f) + getattr(other, f) for f in (*COUNTS, *SUMS)}
        return Aggregate(**values, days={day: nv for day, nv in days.items() if nv != (0, 0)})

    def __neg__(self) -> Aggregate:
        values = {f: -getattr(self, f) for f in (*COUNTS, *SUMS)}
        return Aggregate(**values, days={day: (-n, -v) for day, (n, v) in self.days.items()})

    def __sub__(self, other: Aggregate) -> Aggregate:
        return self + -other

    @property
    def empty(self) -> bool:
        """Say whether nothing is counted: no answer and no sent survey."""
        return not (self.n or self.sent)

    def increments(self) -> tuple[list[tuple[str, int]], list[tuple[str, float]], list[tuple[str, int]]]:
        """Return this sum as (integer, float, daily) field/increment pairs, zeros left out: a delta to apply."""
        ints = [(f, getattr(self, f)) for f in COUNTS if getattr(self, f)]
        floats = [(f, getattr(self, f)) for f in SUMS if getattr(self, f)]
        daily = [pair for day, (n, value6) in sorted(self.days.items())
                 for pair in ((f"{day}:n", n), (f"{day}:v", value6)) if pair[1]]
        return ints, floats, daily

    def to_hash(self) -> tuple[dict[str, str], dict[str, str]]:
        """Return the aggregate hash and the daily hash as the store keeps them."""
        ints, floats, daily = self.increments()
        return ({f: str(v) for f, v in ints} | {f: repr(v) for f, v in floats},
                {f: str(v) for f, v in daily})

    @classmethod
    def from_hash(cls, agg: Mapping[str, str], daily: Mapping[str, str] | None = None) -> Aggregate:
        """Read an aggregate (or an answer's stored contribution, which carries its `day`) from Redis hashes."""
        days: dict[str, tuple[int, int]] = {}
        for name, value in (daily or {}).items():
            day, _, part = name.rpartition(":")
            n, value6 = days.get(day, (0, 0))
            days[day] = (n + int(value), value6) if part == "n" else (n, value6 + int(value))
        if agg.get("day"):  # one stored answer: it counts once on its day
            days[agg["day"]] = (1, int(agg.get("value6") or 0))
        values: dict[str, Any] = {f: int(agg.get(f) or 0) for f in COUNTS} | {f: float(agg.get(f) or 0) for f in SUMS}
        if agg.get("day") and not agg.get("n"):
            values["n"] = 1
        return cls(**values, days=days)


class AggregateSum:
    """Aggregates added up in place, as `+` adds them: the same sums, and the days that sum to nothing left out (at
    the end rather than at each addition, which leaves the same days). `+` copies the days held so far for every
    aggregate it adds, which a rebuild's millions of additions into one entity cannot afford."""

    __slots__ = ("_days", "_values")

    def __init__(self) -> None:
        empty = Aggregate()
        self._values: dict[str, Any] = {name: getattr(empty, name) for name in (*COUNTS, *SUMS)}
        self._days: dict[str, tuple[int, int]] = {}

    def add(self, other: Aggregate) -> None:
        values, days = self._values, self._days
        for name in values:
            values[name] += getattr(other, name)
        for day, (n, value6) in other.days.items():
            have_n, have_v = days.get(day, (0, 0))
            days[day] = (have_n + n, have_v + value6)

    def total(self) -> Aggregate:
        return Aggregate(**self._values, days={day: nv for day, nv in self._days.items() if nv != (0, 0)})


@dataclass(frozen=True)
class OrdersSummary:
    """What a customer bought: how many live orders, their total in the main currency, and every currency's total."""

    count: int
    total: str
    currency: str | None
    totals: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LastResponse:
    """The newest answer on a score card."""

    rating: int
    scale: str
    at_ms: int
    ticket: str | None  # what it was about, as the API shows it: `zendesk:1001`, `order:shopify:42`


@dataclass(frozen=True)
class ScoreCard:
    """The numbers of SPEC §6 for one customer, agent, team, source, brand or overall."""

    id: str
    score: float | None
    average: float | None
    csat: float | None
    responses: int
    surveys_sent: int
    response_rate: float | None
    trend: float | None
    nps: float | None
    name: str | None = None
    last_response: LastResponse | None = None
    orders: OrdersSummary | None = None
    at_risk: bool | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """One entry of a customer's timeline: an applied event, a survey or an answer; the fields beyond at_ms and
    kind that an entry has depend on its kind (the rest stay None)."""

    at_ms: int
    kind: str  # the applied event's type (ticket.solved, order.created, ...), survey.<status>, or answer
    source: str | None = None
    event: str | None = None
    ticket: str | None = None
    order: str | None = None
    status: str | None = None
    subject: str | None = None
    total: str | None = None
    currency: str | None = None
    survey: str | None = None
    reason: str | None = None
    rating: int | None = None
    scale: str | None = None
    satisfied: bool | None = None
    comment: str | None = None


# ---------------------------------------------------------------------------------------------
# Recovery cases (SPEC §11): the noun the case workflow will be built on.
# ---------------------------------------------------------------------------------------------

CASE_STATUSES = ("open", "contacted", "recovered", "not_recovered")
CASE_ACTIVE = ("open", "contacted")


@dataclass(frozen=True)
class CaseNote:
    """One note a lead added to a case: when, by whom (an API key's or the CLI's name), and what."""

    at_ms: int
    by: str
    text: str


@dataclass(frozen=True)
class Case:
    """A follow-up on an unsatisfied answer, worked by a lead until the customer is won back or not."""

    id: str
    customer: str
    ticket: str | None
    owner: str | None
    status: str
    opened_at_ms: int
    due_at_ms: int
    notes: tuple[CaseNote, ...] = ()
    outcome: str | None = None
    name: str | None = None  # the customer's
    survey: str = ""  # the sid of the answer that opened it
    rating: int | None = None
    scale: str | None = None
    comment: str | None = None
    source: str | None = None
    team: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    first_contact_at_ms: int | None = None  # when it first went to contacted or got a note
    closed_at_ms: int | None = None
    resurvey: str | None = None  # the sid of the new survey its closing scheduled
    rev: int = 0  # every write moves it on; a write based on an older rev is refused
    notified: int = 0  # the rev whose case notice was emitted
    # The filter values its survey has ("team=billing", tracker.store.cases.labels_of), which count it under each
    # of them; None: a case opened before cases were labelled, which beat labels (tracker.cases.labels).
    labels: tuple[str, ...] | None = None

    @property
    def closed(self) -> bool:
        return self.status in ("recovered", "not_recovered")

    def overdue(self, now_ms: int) -> bool:
        return not self.closed and self.due_at_ms < now_ms


# ---------------------------------------------------------------------------------------------
# What is held about one customer (SPEC §10): read for a data-access request, kept through erasure.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusChange:
    """One status a ticket had, and since when."""

    status: str
    at_ms: int


@dataclass(frozen=True)
class StoredTicket:
    """A ticket as the store holds it after every event about it."""

    key: str  # `<source>:<id>`
    source: str
    customer: str
    ticket: Ticket
    created_at_ms: int | None = None
    status_at_ms: int | None = None
    solved_at_ms: int | None = None
    survey: str | None = None  # the sid of the survey sent about it
    history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class SurveyedTicket:
    """The ticket (or order) a due survey stands for, as the sender reads it when the survey falls due."""

    key: str  # the due member: `<source>:<id>`, or `o|<source>:<id>` for an order
    customer: str = ""
    source: str = ""
    id: str = ""  # the ticket's (or order's) id at the source
    status: str | None = None
    solved_at_ms: int | None = None  # when it was solved (an order: fulfilled)
    subject: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    brand: str | None = None
    channel: str | None = None
    tags: tuple[str, ...] = ()
    agent_involved: bool | None = None  # None when the source said nothing
    resolved_by: str | None = None  # "human" or "bot" when the source said (SPEC §12)
    survey: str | None = None  # the sid of the survey sent about its latest solve


@dataclass(frozen=True)
class StoredOrder:
    """An order as the store holds it; refunded is a decimal string like total."""

    key: str  # `<source>:<id>`
    source: str
    customer: str
    order: Order
    refunded: str = "0.00"
    created_at_ms: int | None = None
    status_at_ms: int | None = None


@dataclass(frozen=True)
class Profile:
    """Who a customer is to the tracker: the names the events gave, and the sources' ids for them."""

    email: str
    name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    aliases: tuple[tuple[str, str], ...] = ()  # (source, the source's id)
    last_response_sid: str | None = None  # the survey of their newest answer
    last_response_at_ms: int | None = None
    unsubscribed_at_ms: int | None = None  # when they unsubscribed (the opt-out itself is read with OptOut)
    organisation: str | None = None  # the organisation a source named (SPEC §12; tracker.organisations decides)


@dataclass(frozen=True)
class OptOut:
    """Whether an address may get surveys: the customer unsubscribed, or the operator or a bounce suppressed it."""

    unsubscribed: bool = False
    suppressed: bool = False
    unsubscribed_at_ms: int | None = None

    @property
    def reason(self) -> str | None:
        """Name why no survey may go to the address (the skip reason), or None."""
        return "unsubscribed" if self.unsubscribed else "suppressed" if self.suppressed else None
