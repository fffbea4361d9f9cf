"""Help Scout: the Webhooks app, with the event name in `X-HelpScout-Event`.

Help Scout signs `X-HelpScout-Signature` = base64 HMAC-SHA1 of the body with the webhook's secret key.
Bodies are the conversation object (v2 field names, with the legacy v1 names as a fallback).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from tracker.events import AwareDateTime
from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IdField,
    IgnoredEvent,
    Inbound,
    SignatureError,
    VendorPayload,
    fallback_delivery_id,
    hmac_base64,
    load_event,
    load_json,
    load_payload,
    same,
    slug,
)

NAME = "helpscout"
CONTENT_TYPES = JSON_TYPES
# The `X-HelpScout-Event` names acted on, with the tracker event types each can become.
SUPPORTED_EVENTS = {"convo.status": ("ticket.solved", "ticket.updated"), "convo.assigned": ("ticket.updated",),
                    "convo.created": ("ticket.created",)}
# Help Scout has no "solved": closing a conversation is the resolution.
STATUSES = {"closed": "solved", "active": "open", "pending": "pending"}
# The latest of these is when the conversation last changed.
TIMES = ("created_at", "closed_at", "user_updated_at", "modified_at")


class HelpScoutPersonPayload(VendorPayload):
    id = IdField(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    first = fields.String(load_default=None, allow_none=True)
    last = fields.String(load_default=None, allow_none=True)
    # v1 bodies name people firstName/lastName.
    first_name = fields.String(data_key="firstName", load_default=None, allow_none=True)
    last_name = fields.String(data_key="lastName", load_default=None, allow_none=True)


class HelpScoutConversationPayload(VendorPayload):
    id = IdField(required=True)
    status = fields.String(required=True)
    subject = fields.String(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)
    created_at = AwareDateTime(data_key="createdAt", required=True)
    closed_at = AwareDateTime(data_key="closedAt", load_default=None, allow_none=True)
    user_updated_at = AwareDateTime(data_key="userUpdatedAt", load_default=None, allow_none=True)
    modified_at = AwareDateTime(data_key="modifiedAt", load_default=None, allow_none=True)
    primary_customer = fields.Nested(HelpScoutPersonPayload, data_key="primaryCustomer", load_default=None,
                                     allow_none=True)
    customer = fields.Nested(HelpScoutPersonPayload, load_default=None, allow_none=True)
    created_by = fields.Nested(HelpScoutPersonPayload, data_key="createdBy", load_default=None, allow_none=True)
    assignee = fields.Nested(HelpScoutPersonPayload, load_default=None, allow_none=True)
    owner = fields.Nested(HelpScoutPersonPayload, load_default=None, allow_none=True)
    mailbox = fields.Dict(load_default=None, allow_none=True)
    tags = fields.List(fields.Raw(), load_default=list, allow_none=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the body's HMAC-SHA1 matches the signature header."""
    signature = inbound.header("x-helpscout-signature")
    if not signature or not same(hmac_base64(secret.encode("utf-8"), inbound.body, "sha1"), signature):
        raise SignatureError("Invalid signature.")


def parse(inbound: Inbound) -> Delivery:
    """Turn a conversation event into a delivery of one ticket event."""
    name = inbound.header("x-helpscout-event")
    data = load_json(inbound.body)
    if name not in SUPPORTED_EVENTS:
        raise IgnoredEvent(name or "no event name")
    convo = load_payload(HelpScoutConversationPayload, data)
    status = STATUSES.get(convo["status"].lower())
    if status is None:
        raise IgnoredEvent(f"Status {convo['status']!r} is not tracked.")
    at = max(convo[key] for key in TIMES if convo[key])
    kind = {"convo.created": "ticket.created", "convo.assigned": "ticket.updated"}.get(
        name, "ticket.solved" if status == "solved" else "ticket.updated")
    customer = _customer(convo)
    event = {
        "type": kind,
        "id": f"helpscout-{convo['id']}-{name}-{status}-{int(at.timestamp())}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": convo["id"], "status": status, "subject": convo["subject"] or None,
                   "channel": slug(convo["type"]), "team": (convo["mailbox"] or {}).get("name") or None,
                   "tags": _tags(convo["tags"]), "agent": _person(convo["assignee"] or convo["owner"])},
        "customer": {"id": customer.get("id"), "email": customer.get("email") or None,
                     "name": _name(customer)},
    }
    delivery = fallback_delivery_id(NAME, convo["id"], name, status, at.isoformat())
    return Delivery(delivery, (load_event(event, NAME),))


def _customer(convo: dict[str, Any]) -> dict[str, Any]:
    """Return the primary customer, or the creator when the primary has no email and the creator is a customer."""
    primary = convo["primary_customer"] or convo["customer"] or {}
    creator = convo["created_by"] or {}
    # Help Scout may name the primary customer by id only (its SDK's own test payload does); a conversation
    # a customer started carries that customer, with an email, as `createdBy`.
    if not primary.get("email") and creator.get("type") == "customer" and creator.get("email"):
        return creator
    return primary


def _name(person: dict[str, Any]) -> str | None:
    parts = (person.get("first") or person.get("first_name"), person.get("last") or person.get("last_name"))
    return " ".join(part for part in parts if part) or None


def _person(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if not person or not person.get("id"):
        return None
    return {"id": person["id"], "email": person.get("email") or None, "name": _name(person)}


def _tags(tags: list[Any] | None) -> list[str]:
    # v2 sends tag objects ({"id", "color", "tag"}), v1 plain strings.
    names = [tag.get("tag") if isinstance(tag, dict) else tag for tag in tags or []]
    return [str(name) for name in names if name]
