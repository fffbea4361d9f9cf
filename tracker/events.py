"""The normalised event: what every adapter produces and what the event log holds."""

from __future__ import annotations

from datetime import UTC, datetime
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

TICKET_TYPES = ("ticket.created", "ticket.updated", "ticket.solved", "ticket.reopened", "ticket.closed")
ORDER_TYPES = ("order.created", "order.fulfilled", "order.cancelled", "order.refunded")
EVENT_TYPES = TICKET_TYPES + ORDER_TYPES
# The status a ticket event implies when the sender leaves it out.
STATUS_OF_TYPE = {"ticket.solved": "solved", "ticket.reopened": "open", "ticket.closed": "closed",
                  "ticket.created": "new"}
ORDER_STATUS_OF_TYPE = {"order.created": "created", "order.fulfilled": "fulfilled",
                        "order.cancelled": "cancelled", "order.refunded": "refunded"}
RESOLVED_STATUSES = ("solved", "closed")
TEXT = validate.Length(max=500)
IDENT = validate.Length(min=1, max=200)


def valid_timezone(name: str) -> None:
    """Raise ValidationError unless name is an IANA time zone like Europe/Oslo."""
    try:
        if not 0 < len(name) <= 64:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("Must be an IANA time zone like Europe/Oslo.") from None


def to_epoch_ms(moment: datetime) -> int:
    """Return milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)


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
        if not 1970 <= result.year < 2200:
            raise ValidationError("Must be a time between 1970 and 2200.")
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
    tags = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list,
                       validate=validate.Length(max=200))
    agent = fields.Nested(AgentSchema, load_default=None, allow_none=True)
    # False when the source knows no agent worked on the ticket (solved by a bot or a macro).
    agent_involved = fields.Boolean(load_default=None, allow_none=True)


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


class CustomerSchema(StrictSchema):
    id = fields.String(load_default=None, allow_none=True, validate=IDENT)
    email = fields.Email(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True, validate=TEXT)
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=35))
    timezone = fields.String(load_default=None, allow_none=True, validate=valid_timezone)

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


class EventSchema(StrictSchema):
    """The `standard` event of SPEC.md §4."""

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    id = fields.String(required=True, validate=IDENT)
    occurred_at = AwareDateTime(required=True)
    ticket = fields.Nested(TicketSchema, load_default=None)
    order = fields.Nested(OrderSchema, load_default=None)
    customer = fields.Nested(CustomerSchema, required=True)

    @validates_schema
    def subject_matches_type(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("type", "")
        if kind.startswith("ticket.") and not data.get("ticket"):
            raise ValidationError("Required for ticket events.", "ticket")
        if kind.startswith("order.") and not data.get("order"):
            raise ValidationError("Required for order events.", "order")


def normalise(event: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn a loaded EventSchema result into the flat JSON-safe record the event log stores."""
    record: dict[str, Any] = {
        "type": event["type"],
        "id": event["id"],
        "source": source,
        "at": to_epoch_ms(event["occurred_at"]),
        "customer": {k: v for k, v in event["customer"].items() if v is not None},
    }
    ticket = event.get("ticket")
    if ticket and event["type"].startswith("ticket."):
        ticket = {k: v for k, v in ticket.items() if v not in (None, "")}
        status = (ticket.get("status") or STATUS_OF_TYPE.get(event["type"]) or "").lower()
        if event["type"] == "ticket.solved":
            status = "solved"
        elif event["type"] == "ticket.closed":
            status = "closed"
        elif event["type"] == "ticket.reopened" and status in RESOLVED_STATUSES:
            status = "open"
        if status:
            ticket["status"] = status
        if ticket.get("agent"):
            ticket["agent"] = {k: v for k, v in ticket["agent"].items() if v}
        record["ticket"] = ticket
    order = event.get("order")
    if order and event["type"].startswith("order."):
        order = {k: v for k, v in order.items() if v is not None}
        order["total"] = str(order["total"])
        order["status"] = ORDER_STATUS_OF_TYPE[event["type"]]
        record["order"] = order
    return record
