"""The domain's nouns: small frozen dataclasses that every layer passes to the next.

Plain dicts live only at the boundaries: JSON in and out (marshmallow) and Redis hashes in and
out (the store). Everything between them takes and returns these types. This module imports
nothing of the product, so every package may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Order:
    """A shop order as one event saw it; total is a decimal string with two places."""

    id: str
    total: str
    currency: str
    status: str


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
    lang: str = "en"
    solved_at_ms: int = 0
    created_at_ms: int = 0
    sent_at_ms: int | None = None
    expires_at_ms: int | None = None
    answered_at_ms: int | None = None
    attempts: int = 0
    next_attempt_at_ms: int | None = None
    reason: str | None = None  # why it was skipped or failed
    error: str | None = None
    closed_at_ms: int | None = None  # when it was skipped or failed


@dataclass(frozen=True)
    reminded_at_ms: int | None = None
    reminder_attempts: int = 0
    reminder_error: str | None = None
    reply_status: str | None = None  # what an emailed reply did: answered, no_rating, ambiguous, auto_reply
    reply_comment: str | None = None
    replied_at_ms: int | None = None
    answered_via: str | None = None  # "email" when the answer came by reply

    @property
    def ticket_ref(self) -> str:
        """Name the ticket (or order) as the customer knows it: `#1001`."""
        return f"#{self.ticket_id}"
class Answer:
    """A customer's answer to a survey: the latest rating counts, once."""

    sid: str
    rating: int
    scale: str
    at_ms: int
    customer: str
    value6: int  # six times the 0-100 value: an integer on every scale
    satisfied: bool
    comment: str | None = None
    reason: str | None = None
    tkey: str | None = None
    source: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    brand: str | None = None
    channel: str | None = None
    subject: str | None = None
    answered_via: str | None = None


# ---------------------------------------------------------------------------------------------
# Scores: the running sums behind every aggregate, and what leads read.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aggregate:
    """The running sums behind one entity's scores; one arithmetic for live updates, rebuilds and summaries."""

    n: int = 0
    sent: int = 0
    value6: int = 0
    satisfied: int = 0
    promoter: int = 0
    detractor: int = 0
    nps: int = 0
    weight: float = 0.0
    weighted: float = 0.0


@dataclass(frozen=True)
class OrdersSummary:
    """What a customer bought: how many orders and their total in one currency."""

    count: int
    total: str
    currency: str | None


@dataclass(frozen=True)
class LastResponse:
    """The newest answer on a score card."""

    rating: int
    scale: str
    at_ms: int
    ticket: str | None


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


# ---------------------------------------------------------------------------------------------
# Recovery cases (SPEC §11): the noun the case workflow will be built on.
# ---------------------------------------------------------------------------------------------

CASE_STATUSES = ("open", "contacted", "recovered", "not_recovered")


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
    notes: tuple[str, ...] = ()
    outcome: str | None = None

    @property
    def closed(self) -> bool:
        return self.status in ("recovered", "not_recovered")
