"""The delivery records as the API and the CLI show them: the query they take and the shape they list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from tracker.events import CustomerEmail, iso_from_ms
from tracker.notice_types import TYPES
from tracker.store import Store, keys

STATUSES = ("delivered", "retry", "refused", "skipped", "failed")
TARGET = r"^(url:[0-9a-f]{12}|writeback:[a-z]+|cases)$"


class DeliveryQuerySchema(Schema):
    """Which delivery records to list: newest first, at most `limit`, filtered by status, target, type, customer."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500),
                           metadata={"description": "how many records (1 to 500, default 50)"})
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES),
                           metadata={"description": "only attempts that ended so"})
    target = fields.String(load_default=None, validate=validate.Regexp(TARGET, error="Not a target name."),
                           metadata={"description": "only this target: url:<12 hex>, writeback:<source> or cases"})
    type = fields.String(load_default=None, validate=validate.OneOf(TYPES),
                         metadata={"description": "only notices of this type"})
    customer = CustomerEmail(load_default=None, metadata={"description": "only this customer's notices"})


class TimeMs(fields.Integer):
    """A time kept as epoch milliseconds, shown as ISO 8601 UTC."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso_from_ms(int(value))


class DeliverySchema(Schema):
    """One delivery attempt of a notice to a target, and how it ended."""

    id = fields.String(metadata={"description": "the attempt's id (d<bucket>.<n>), for `tracker redeliver`"})
    notice = fields.String(metadata={"description": "the notice's id: the webhook-id of every attempt of it"})
    type = fields.String(metadata={"description": "the notice's type, e.g. survey.answered"})
    customer = fields.String(metadata={"description": "the customer's email"})
    target = fields.String(metadata={"description": "url:<first 12 hex of the URL's SHA-256>, writeback:<source> "
                                                    "or cases"})
    attempt = fields.Integer(metadata={"description": "1 for the first attempt of this notice at this target"})
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={
        "description": "delivered; retry (tried again at next_at); refused (for good: a 4xx, a redirect, a refused "
                       "address); skipped (nothing to do); failed (retried for 24 h, or a redelivery not taken)"})
    code = fields.Integer(allow_none=True, metadata={"description": "the HTTP status answered, if any"})
    detail = fields.String(metadata={"description": "what happened, in words"})
    at = TimeMs(metadata={"description": "when the attempt was made (ISO 8601 UTC)"})
    next_at = TimeMs(allow_none=True, metadata={"description": "when a retry is due (status retry), else null"})
    bucket = fields.Integer(metadata={"description": "the notice bucket (0-15) the customer's notices go in, in order"})
    entry = fields.String(metadata={"description": "the notice's entry id in its bucket's stream"})
    redelivery_of = fields.String(allow_none=True, metadata={
        "description": "the attempt an operator sent again (tracker redeliver), else null"})


class DeliveryPageSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema))


def find_deliveries(store: Store, query: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the delivery records a loaded DeliveryQuerySchema query asks for, newest first."""
    customer = query.get("customer") or None  # folded as the store keeps it (CustomerEmail)
    wanted = {name: query.get(name) for name in ("status", "target", "type") if query.get(name)}

    def matches(record: dict[str, Any]) -> bool:
        if customer is not None and str(record.get("customer", "")).lower() != customer:
            return False
        return all(record.get(name) == value for name, value in wanted.items())

    buckets = None if customer is None else [keys.bucket_of(customer)]
    return store.list_deliveries(int(query.get("limit") or 50), matches, buckets)
