"""Standard Webhooks (https://www.standardwebhooks.com) carrying our own standard event.

Headers: `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated
list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. The body is one standard event
(SPEC.md §4) or `{"events": [...]}` holding up to 100 of them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tracker.events import EVENT_TYPES
from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IgnoredEvent,
    Inbound,
    PayloadError,
    SignatureError,
    check_fresh,
    fallback_delivery_id,
    hmac_base64,
    load_event,
    load_json,
    require_object,
    same,
    unix_seconds,
)

NAME = "standard"
CONTENT_TYPES = JSON_TYPES
DOCS = ("Send standard events (SPEC §4), one or `{\"events\": [...]}`, to /webhooks/standard signed the "
        "Standard Webhooks way with the `whsec_` secret.")
MAX_BATCH = 100
PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """Return the HMAC key of a `whsec_<base64>` secret (a bare base64 or plain secret also works)."""
    encoded = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `v1,<base64>` signature of one message."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + hmac_base64(signing_key(secret), message)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless one v1 signature matches and the timestamp is within 5 minutes."""
    msg_id, stamp = inbound.header("webhook-id"), inbound.header("webhook-timestamp")
    signatures = inbound.header("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise SignatureError("Missing signature headers.")
    timestamp = unix_seconds(stamp)
    check_fresh(timestamp, inbound.received_at)
    expected = sign(secret, msg_id, timestamp, inbound.body)
    # Senders rotating secrets send several signatures; unknown versions (v1a, …) are skipped.
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and same(expected, candidate):
            return
    raise SignatureError("Invalid signature.")


def parse(inbound: Inbound) -> Delivery:
    """Turn one standard event, or a batch of them, into a delivery."""
    data = require_object(load_json(inbound.body))
    items = _batch(data["events"]) if "events" in data else [data]
    events = [_load_item(raw, index, "events" in data) for index, raw in enumerate(items)
              if not _unknown_type(raw)]
    if not events:
        raise IgnoredEvent("No event type the tracker acts on.")
    msg_id = inbound.header("webhook-id")
    if msg_id:
        return Delivery(f"{NAME}:{msg_id}", events)
    return Delivery(fallback_delivery_id(NAME, *(event["id"] for event in events)), events)


def _batch(items: Any) -> list[Any]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise PayloadError("The batch is not valid.", {"events": [f"Must hold 1 to {MAX_BATCH} events."]})
    return items


def _unknown_type(raw: Any) -> bool:
    # A Standard Webhooks sender may emit types of its own (user.created, …): valid, just not ours.
    kind = raw.get("type") if isinstance(raw, dict) else None
    return isinstance(kind, str) and "." in kind and kind not in EVENT_TYPES


def _load_item(raw: Any, index: int, batched: bool) -> dict[str, Any]:
    if not batched:
        return load_event(raw, NAME)
    if not isinstance(raw, dict):
        raise PayloadError("The event is not valid.", {"events": {str(index): ["Must be an object."]}})
    try:
        return load_event(raw, NAME)
    except PayloadError as exc:
        raise PayloadError(exc.message, {"events": {str(index): exc.errors}}) from None
