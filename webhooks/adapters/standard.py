"""Standard Webhooks (https://www.standardwebhooks.com) carrying our own standard event.

Headers: `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated
list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. The body is one standard event
(SPEC.md §4) or `{"events": [...]}` holding up to 100 of them.
"""

from __future__ import annotations

from typing import Any

from tracker import signing
from tracker.events import EVENT_TYPES
from tracker.model import Event
from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IgnoredEvent,
    Inbound,
    PayloadError,
    SignatureError,
    fallback_delivery_id,
    load_event,
    load_json,
    require_object,
)

NAME = "standard"
CONTENT_TYPES = JSON_TYPES
# Standard events name themselves: each type acted on becomes itself.
SUPPORTED_EVENTS = {kind: (kind,) for kind in EVENT_TYPES}
MAX_BATCH = 100


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless one v1 signature matches and the timestamp is within 5 minutes."""
    try:
        signing.verify(secret, inbound.headers, inbound.body, inbound.received_at)
    except signing.InvalidSignature as exc:
        raise SignatureError(str(exc)) from None


def delivery_id(inbound: Inbound) -> str | None:
    """Return the signed `webhook-id` as the delivery id, or None when the sender gave none."""
    msg_id = inbound.header("webhook-id")
    return f"{NAME}:{msg_id}" if msg_id else None


def parse(inbound: Inbound) -> Delivery:
    """Turn one standard event, or a batch of them, into a delivery."""
    data = require_object(load_json(inbound.body))
    items = _batch(data["events"]) if "events" in data else [data]
    events = tuple(_load_item(raw, index, "events" in data) for index, raw in enumerate(items)
                   if not _unknown_type(raw))
    if not events:
        raise IgnoredEvent("No event type the tracker acts on.")
    return Delivery(delivery_id(inbound) or fallback_delivery_id(NAME, *(event.id for event in events)), events)


def _batch(items: Any) -> list[Any]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise PayloadError("The batch is not valid.", {"events": [f"Must hold 1 to {MAX_BATCH} events."]})
    return items


def _unknown_type(raw: Any) -> bool:
    # A Standard Webhooks sender may emit types of its own (user.created, …): valid, just not ours.
    kind = raw.get("type") if isinstance(raw, dict) else None
    return isinstance(kind, str) and "." in kind and kind not in EVENT_TYPES


def _load_item(raw: Any, index: int, batched: bool) -> Event:
    if not batched:
        return load_event(raw, NAME)
    if not isinstance(raw, dict):
        raise PayloadError("The event is not valid.", {"events": {str(index): ["Must be an object."]}})
    try:
        return load_event(raw, NAME)
    except PayloadError as exc:
        raise PayloadError(exc.message, {"events": {str(index): exc.errors}}) from None
