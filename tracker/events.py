"""The normalised event: the standard event's schema, its normalisation into an Event, and its log record."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from tracker.model import Agent, Customer, Event, Order, Rating, Ticket
from tracker.scales import SCALES
from tracker.schema_cache import load

TICKET_TYPES = ("ticket.created", "ticket.updated", "ticket.solved", "ticket.reopened", "ticket.closed")
ORDER_TYPES = ("order.created", "order.fulfilled", "order.cancelled", "order.refunded")
ANSWERED = "survey.answered"  # an answer collected elsewhere (SPEC §10); counts like one given on our page
# A survey reported sent without our mail: export-log writes it for surveys sent and not answered, so a
# replay counts them and mails no one again. Only replay files carry it; webhooks ignore it.
SENT = "survey.sent"
SKIPPED = "survey.skipped"  # likewise for a survey skipped with its reason (throttled, unsubscribed, ...)
SURVEY_TYPES = (ANSWERED, SENT, SKIPPED)
EVENT_TYPES = (*TICKET_TYPES, *ORDER_TYPES, ANSWERED)
REPLAY_TYPES = (*EVENT_TYPES, SENT, SKIPPED)
# The status a ticket event implies when the sender leaves it out.
STATUS_OF_TYPE = {"ticket.solved": "solved", "ticket.reopened": "open", "ticket.closed": "closed",
                  "ticket.created": "new"}
ORDER_STATUS_OF_TYPE = {"order.created": "created", "order.fulfilled": "fulfilled",
                        "order.cancelled": "cancelled", "order.refunded": "refunded"}
RESOLVED_STATUSES = ("solved", "closed")
TEXT_MAX = 500  # a ticket's channel, brand and team, a customer's organisation, as sent
IDENT_MAX = 200  # an id: a ticket's, an agent's, a tag
TEXT = validate.Length(max=TEXT_MAX)
IDENT = validate.Length(min=1, max=IDENT_MAX)
# The longest id an aggregate has (a team as sent; an agent is <source>:<id>): the most a read's filter takes.
AGGREGATE_ID_MAX = TEXT_MAX
RESOLVERS = ("human", "bot")  # who resolved a ticket (SPEC §12: ticket.resolved_by)


def valid_timezone(name: str) -> None:
    """Raise ValidationError unless name is an IANA time zone like Europe/Oslo."""
    try:
        if not 0 < len(name) <= 64:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("Must be an IANA time zone like Europe/Oslo.") from None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
# The times an event may carry: from the first year up to (not into) the last.
EVENT_YEARS = (1970, 2200)
OUT_OF_RANGE = f"Must be a time between {EVENT_YEARS[0]} and {EVENT_YEARS[1]}."
LAST_SECOND = (datetime(EVENT_YEARS[1], 1, 1, tzinfo=UTC) - EPOCH).total_seconds()


# How far after its arrival an event's time may be. A clock or time zone set wrong at the sender (local time sent
# as UTC) is hours out, and is taken; an answer dated decades ahead is not: the score's decay weighs an answer
# by its time (tracker.model.Aggregate.of_answer), so one from 2199 would outweigh every real answer for ever.
AHEAD_SLACK = timedelta(days=1)
TOO_FAR_AHEAD = "Must not be more than a day in the future (is the sender's clock or time zone wrong?)."


def not_far_ahead(moment: datetime) -> None:
    """Refuse an event time more than AHEAD_SLACK after now."""
    if moment > datetime.now(UTC) + AHEAD_SLACK:
        raise ValidationError(TOO_FAR_AHEAD)


def epoch_seconds_in_range(seconds: float) -> bool:
    """Say whether a unix time (seconds) is one an event may carry (see EVENT_YEARS)."""
    return 0 <= seconds < LAST_SECOND


def to_epoch_ms(moment: datetime) -> int:
    """Return milliseconds since the epoch of an aware datetime."""
    # Exact, unlike timestamp() * 1000, whose float can land a millisecond low: a replayed time must
    # read back as the very millisecond it was written from.
    return (moment - EPOCH) // MS


def iso_from_ms(ms: int) -> str:
    """Render epoch milliseconds as an ISO 8601 UTC string with a Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


class AwareDateTime(fields.DateTime):
    """An ISO 8601 time; a naive one is taken as UTC, and the result is always UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and value.endswith("z"):
            value = value[:-1] + "Z"
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
        try:
            result = result.astimezone(UTC)
            result.timestamp()
        except (OverflowError, ValueError, OSError):
            raise self.make_error("invalid", input=value, obj_type="datetime") from None
        if not EVENT_YEARS[0] <= result.year < EVENT_YEARS[1]:
            raise ValidationError(OUT_OF_RANGE)
        return result


class StrictSchema(Schema):
    """Our own schemas reject fields they do not know."""

    class Meta:
        unknown = RAISE


class AgentSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENT)
    name = fields.String(load_default=None, allow_none=True, validate=TEXT)
    email = fields.Email(load_default=None, allow_none=True)


class TicketSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENT)
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    status = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    channel = fields.String(load_default=None, allow_none=True, validate=TEXT)
    brand = fields.String(load_default=None, allow_none=True, validate=TEXT)
    team = fields.String(load_default=None, allow_none=True, validate=TEXT)
    tags = fields.List(fields.String(validate=validate.Length(max=IDENT_MAX)), load_default=list,
                       validate=validate.Length(max=200))
    agent = fields.Nested(AgentSchema, load_default=None, allow_none=True)
    # False when the source knows no agent worked on the ticket (solved by a bot or a macro).
    agent_involved = fields.Boolean(load_default=None, allow_none=True)
    # Who resolved it (SPEC §12): "human" or "bot"; absent, agent_involved false means a bot.
    resolved_by = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(RESOLVERS))


class OrderSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENT)
    total = fields.Decimal(required=True, as_string=True, places=2,
                           validate=validate.Range(min=0, max=10**12))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$",
                                                                     error="Must be an ISO 4217 code."))
    status = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))

    @pre_load
    def upper_currency(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("currency"), str):
            data = {**data, "currency": data["currency"].upper()}
        return data


_ADDRESS = validate.Email()


def customer_address(text: str) -> str | None:
    """Return the customer's address as the store keeps it (CustomerSchema's: an email address, folded), or None
    when the text is not one: what an operator names a customer by (tracker erase, DELETE /api/v1/customers/...).

    CustomerSchema checks an address before folding it, and folding can make it fail the same check ("İnci@x.no"
    folds to "i̇nci@x.no", with a combining dot no address pattern takes): the folded text is checked with its
    combining marks left out, so every address the store keeps is taken, as written or as kept."""
    address = text.strip().lower()
    try:
        _ADDRESS("".join(c for c in address if not unicodedata.category(c).startswith("M")))
    except ValidationError:
        return None
    return address


class CustomerEmail(fields.String):
    """A customer's address where a request names one (a page, a filter): any address the store keeps, as written or
    as kept (customer_address), loaded folded as kept."""

    default_error_messages = {"invalid": "Not a valid email address."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        address = customer_address(super()._deserialize(value, attr, data, **kwargs))
        if address is None:
            raise self.make_error("invalid")
        return address


class CustomerSchema(StrictSchema):
    id = fields.String(load_default=None, allow_none=True, validate=IDENT)
    email = fields.Email(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True, validate=TEXT)
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=35))
    timezone = fields.String(load_default=None, allow_none=True, validate=valid_timezone)
    organisation = fields.String(load_default=None, allow_none=True, validate=TEXT)  # SPEC §12

    @validates_schema
    def known_somehow(self, data: dict[str, Any], **kwargs: Any) -> None:
        # An event with only the source's customer id is attached through the alias index.
        if not data.get("email") and not data.get("id"):
            raise ValidationError("An email or an id is required.", "email")

    @post_load
    def fold_email(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        return data


class SurveyPartSchema(StrictSchema):
    """The survey a survey.sent event reports: its scale, and optionally what it was about."""

    scale = fields.String(required=True, validate=validate.OneOf(tuple(SCALES)))
    about = fields.String(load_default="ticket", validate=validate.OneOf(("ticket", "order")))
    solved_at = AwareDateTime(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class WholeNumber(fields.Integer):
    """An integer, also as a string of digits or a float with nothing after the point ("4", 4.0); a fraction (4.9)
    is refused, not cut to 4 as marshmallow's Integer would."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class AnswerSchema(SurveyPartSchema):
    """The answer a survey.answered event carries (SPEC §10)."""

    rating = WholeNumber(required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def rating_on_scale(self, data: dict[str, Any], **kwargs: Any) -> None:
        scale = SCALES.get(data.get("scale", ""))
        if scale is not None and data.get("rating") not in scale.values:
            raise ValidationError(f"Must be between {scale.low} and {scale.high} on {data['scale']}.", "rating")


class EventSchema(StrictSchema):
    """The `standard` event of SPEC.md §4 (and the survey events of §10)."""

    type = fields.String(required=True, validate=validate.OneOf(REPLAY_TYPES))
    id = fields.String(required=True, validate=IDENT)
    occurred_at = AwareDateTime(required=True, validate=not_far_ahead)
    ticket = fields.Nested(TicketSchema, load_default=None)
    order = fields.Nested(OrderSchema, load_default=None)
    customer = fields.Nested(CustomerSchema, required=True)
    answer = fields.Nested(AnswerSchema, load_default=None)
    survey = fields.Nested(SurveyPartSchema, load_default=None)

    @validates_schema
    def subject_matches_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("type", "")
        if (kind.startswith("ticket.") or kind in SURVEY_TYPES) and not data.get("ticket"):
            raise ValidationError(f"Required for {kind} events.", "ticket")
        if kind.startswith("order.") and not data.get("order"):
            raise ValidationError("Required for order events.", "order")
        if kind == ANSWERED and not data.get("answer"):
            raise ValidationError("Required for survey.answered events.", "answer")
        if kind in (SENT, SKIPPED) and not data.get("survey"):
            raise ValidationError(f"Required for {kind} events.", "survey")


def parse_event(raw: Mapping[str, Any], source: str) -> Event:
    """Validate a standard event (SPEC §4) sent by source and return it normalised, or raise ValidationError."""
    return _normalise(load(EventSchema, raw), source)


def _normalise(loaded: dict[str, Any], source: str) -> Event:
    """Turn a loaded EventSchema result into an Event: the status its type implies, empty values dropped."""
    kind = loaded["type"]
    ticket = loaded.get("ticket") if kind.startswith("ticket.") or kind in SURVEY_TYPES else None
    order = loaded.get("order") if kind.startswith("order.") else None
    return Event(type=kind, id=loaded["id"], source=source, at_ms=to_epoch_ms(loaded["occurred_at"]),
                 customer=Customer(**loaded["customer"]),
                 ticket=_loaded_ticket(kind, ticket) if ticket else None,
                 order=_loaded_order(kind, order) if order else None,
                 answer=_loaded_rating(loaded.get("answer") or loaded["survey"]) if kind in SURVEY_TYPES else None)


def _loaded_rating(part: dict[str, Any]) -> Rating:
    solved = part.get("solved_at")
    return Rating(scale=part["scale"], rating=part.get("rating"), comment=part.get("comment") or None,
                  about=part.get("about") or "ticket", solved_at_ms=to_epoch_ms(solved) if solved else None,
                  reason=part.get("reason") or None)


def resolved_by(given: str | None, agent_involved: bool | None) -> str | None:
    """Return who resolved a ticket: the source's word, else "bot" when it says no agent worked on it."""
    if given in RESOLVERS:
        return given
    return "bot" if agent_involved is False else None


def ticket_status(kind: str, given: str | None) -> str | None:
    """Return the status a ticket event leaves: the given one, lower-cased, unless the type says otherwise."""
    status = (given or STATUS_OF_TYPE.get(kind) or "").lower()
    if kind == "ticket.solved":
        status = "solved"
    elif kind == "ticket.closed":
        status = "closed"
    elif kind == "ticket.reopened" and status in RESOLVED_STATUSES:
        status = "open"
    return status or None


def _loaded_ticket(kind: str, ticket: dict[str, Any]) -> Ticket:
    agent = ticket.get("agent")
    return Ticket(id=ticket["id"], status=ticket_status(kind, ticket.get("status")),
                  subject=ticket.get("subject") or None, channel=ticket.get("channel") or None,
                  brand=ticket.get("brand") or None, team=ticket.get("team") or None,
                  tags=tuple(ticket.get("tags") or ()), agent_involved=ticket.get("agent_involved"),
                  resolved_by=ticket.get("resolved_by") or None,
                  agent=Agent(agent["id"], agent.get("name") or None, agent.get("email") or None) if agent else None)


def _loaded_order(kind: str, order: dict[str, Any]) -> Order:
    return Order(id=order["id"], total=str(order["total"]), currency=order["currency"],
                 status=ORDER_STATUS_OF_TYPE[kind])


# The log record: the JSON object the event log stores for one event. Its format outlives any
# version of this code (streams and `tracker replay` files keep applying), so both directions
# live here, side by side.


def event_record(event: Event) -> dict[str, Any]:
    """Return the log record of an event: type, id, source, at, customer, its ticket or order, and its answer."""
    customer = event.customer
    record: dict[str, Any] = {"type": event.type, "id": event.id, "source": event.source, "at": event.at_ms,
                              "customer": _present({"email": customer.email, "id": customer.id, "name": customer.name,
                                                    "locale": customer.locale, "timezone": customer.timezone,
                                                    "organisation": customer.organisation})}
    if event.ticket is not None:
        record["ticket"] = _ticket_record(event.ticket)
    if event.order is not None:
        order = event.order
        record["order"] = {"id": order.id, "total": order.total, "currency": order.currency, "status": order.status}
    if event.answer is not None:
        answer = event.answer
        record["answer"] = _present({"scale": answer.scale, "rating": answer.rating, "comment": answer.comment,
                                     "about": answer.about, "solved_at": answer.solved_at_ms,
                                     "reason": answer.reason})
    return record


def _ticket_record(ticket: Ticket) -> dict[str, Any]:
    record = _present({"id": ticket.id, "status": ticket.status, "subject": ticket.subject,
                       "channel": ticket.channel, "brand": ticket.brand, "team": ticket.team,
                       "agent_involved": ticket.agent_involved, "resolved_by": ticket.resolved_by})
    record["tags"] = list(ticket.tags)
    if ticket.agent is not None:
        agent = ticket.agent
        record["agent"] = {k: v for k, v in (("id", agent.id), ("name", agent.name), ("email", agent.email)) if v}
    return record


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def standard_event(event: Event) -> dict[str, Any]:
    """Return an event in the standard form (SPEC §4, §10) that parse_event reads back to the same event."""
    record = event_record(event)
    standard = {"type": event.type, "id": event.id, "occurred_at": iso_from_ms(event.at_ms),
                "customer": {k: v for k, v in record["customer"].items() if v}}
    for part in ("ticket", "order"):
        if part in record:
            standard[part] = record[part]
    if event.answer is not None:
        answer = dict(record["answer"])
        if "solved_at" in answer:
            answer["solved_at"] = iso_from_ms(answer["solved_at"])
        standard["answer" if event.type == ANSWERED else "survey"] = answer
    return standard


def event_from_record(record: Any) -> Event:
    """Read an event back from its log record, or raise ValueError saying what is wrong with it."""
    if not isinstance(record, dict):
        raise ValueError("not an object")
    kind, source, event_id = record.get("type"), record.get("source"), record.get("id")
    if not isinstance(kind, str) or kind not in REPLAY_TYPES:
        raise ValueError(f"type must be one of {', '.join(REPLAY_TYPES)}")
    if not (isinstance(source, str) and source and isinstance(event_id, str) and event_id):
        raise ValueError("source and id are required")
    at = record.get("at")
    if not isinstance(at, int) or isinstance(at, bool):
        raise ValueError("at must be epoch milliseconds")
    customer = _customer_from_record(record.get("customer"))
    if kind in TICKET_TYPES:
        return Event(kind, event_id, source, at, customer, ticket=_ticket_from_record(record.get("ticket")))
    if kind in SURVEY_TYPES:
        return Event(kind, event_id, source, at, customer, ticket=_ticket_from_record(record.get("ticket")),
                     answer=_rating_from_record(kind, record.get("answer")))
    return Event(kind, event_id, source, at, customer, order=_order_from_record(record.get("order")))


def _customer_from_record(part: Any) -> Customer:
    if not isinstance(part, dict) or not (part.get("email") or part.get("id")):
        raise ValueError("customer needs an email or an id")
    return Customer(**{name: _text(part, name, "customer", keep_empty=True)
                       for name in ("email", "id", "name", "locale", "timezone", "organisation")})


def _ticket_from_record(part: Any) -> Ticket:
    if not isinstance(part, dict) or not isinstance(part.get("id"), str) or not part["id"]:
        raise ValueError("ticket needs id")
    tags = part.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError("ticket.tags must be a list of text")
    involved = part.get("agent_involved")
    if involved is not None and not isinstance(involved, bool):
        raise ValueError("ticket.agent_involved must be true, false or absent")
    by = part.get("resolved_by")
    if by is not None and by not in RESOLVERS:
        raise ValueError(f"ticket.resolved_by must be one of {', '.join(RESOLVERS)} or absent")
    agent = part.get("agent")
    if agent is not None and not (isinstance(agent, dict) and isinstance(agent.get("id"), str) and agent["id"]):
        raise ValueError("ticket.agent needs an id")
    return Ticket(id=part["id"], status=_text(part, "status", "ticket"), subject=_text(part, "subject", "ticket"),
                  channel=_text(part, "channel", "ticket"), brand=_text(part, "brand", "ticket"),
                  team=_text(part, "team", "ticket"), tags=tuple(tags), agent_involved=involved,
                  resolved_by=by,
                  agent=Agent(agent["id"], _text(agent, "name", "ticket.agent"), _text(agent, "email", "ticket.agent"))
                  if agent else None)


def _order_from_record(part: Any) -> Order:
    needed = ("id", "total", "currency", "status")
    if not isinstance(part, dict) or any(not isinstance(part.get(name), str) for name in needed):
        raise ValueError(f"order needs {', '.join(needed)}")
    try:
        finite = Decimal(part["total"]).is_finite()
    except ArithmeticError:
        finite = False
    if not finite:
        raise ValueError("order total is not a number")
    return Order(part["id"], part["total"], part["currency"], part["status"])


def _rating_from_record(kind: str, part: Any) -> Rating:
    if not isinstance(part, dict) or part.get("scale") not in SCALES:
        raise ValueError(f"answer.scale must be one of {', '.join(SCALES)}")
    rating, solved, about = part.get("rating"), part.get("solved_at"), part.get("about", "ticket")
    if kind == ANSWERED and (not isinstance(rating, int) or isinstance(rating, bool)
                             or rating not in SCALES[part["scale"]].values):
        raise ValueError("answer.rating must be a value of its scale")
    if solved is not None and (not isinstance(solved, int) or isinstance(solved, bool)):
        raise ValueError("answer.solved_at must be epoch milliseconds")
    if about not in ("ticket", "order"):
        raise ValueError("answer.about must be ticket or order")
    return Rating(scale=part["scale"], rating=rating if kind == ANSWERED else None,
                  comment=_text(part, "comment", "answer"), about=about, solved_at_ms=solved,
                  reason=_text(part, "reason", "answer"))


def _text(part: dict[str, Any], name: str, where: str, keep_empty: bool = False) -> str | None:
    """Return an optional text field of a record part; empty text counts as absent unless keep_empty."""
    value = part.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{name} must be text")
    return value if keep_empty else value or None
