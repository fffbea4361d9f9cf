"""Zendesk: the trigger body published in SPEC.md §4, and the `ticket.status_changed` event subscription.

The trigger body may also carry `"organization": "{{ticket.organization.name}}"` in its `ticket` object
(Zendesk's placeholder for the ticket's organization); it becomes the customer's organisation. The
subscription names only `organization_id`; the organization's name comes with the requester from the API.

Zendesk signs `X-Zendesk-Webhook-Signature` = base64 HMAC-SHA256 of the
`X-Zendesk-Webhook-Signature-Timestamp` header (ISO 8601) followed directly by the body.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields

from tracker.events import AwareDateTime
from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IdField,
    IgnoredEvent,
    Inbound,
    SignatureError,
    VendorPayload,
    check_fresh,
    fallback_delivery_id,
    hmac_base64,
    load_event,
    load_json,
    load_payload,
    require_object,
    same,
    slug,
    vendor_text,
)

NAME = "zendesk"
CONTENT_TYPES = JSON_TYPES
EVENT_PREFIX = "zen:event-type:"
STATUS_CHANGED = "zen:event-type:ticket.status_changed"
TYPE_OF_STATUS = {"solved": "ticket.solved", "closed": "ticket.closed", "new": "ticket.created",
                  "open": "ticket.updated", "pending": "ticket.updated", "hold": "ticket.updated"}
# What is acted on: a trigger body by the ticket status it reports, and the status-changed event, with the
# tracker event types each can become.
SUPPORTED_EVENTS = {**{status: (kind,) for status, kind in TYPE_OF_STATUS.items()},
                    STATUS_CHANGED: (*dict.fromkeys(TYPE_OF_STATUS.values()), "ticket.reopened")}
# `{{ticket.requester.language}}` renders the language's display name, not its code.
LANGUAGES = {"english": "en", "norwegian": "nb", "norsk": "nb", "bokmål": "nb", "bokmal": "nb",
             "nynorsk": "nn", "swedish": "sv", "svenska": "sv", "danish": "da", "dansk": "da",
             "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "francais": "fr",
             "spanish": "es", "español": "es", "espanol": "es", "dutch": "nl", "nederlands": "nl"}
CODE = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,8})*$")
CHANNELS = {"mail": "email", "e_mail": "email"}


class ZendeskTicketPayload(VendorPayload):
    id = IdField(required=True)
    status = fields.String(required=True)
    updated_at = AwareDateTime(required=True)
    subject = fields.String(load_default=None, allow_none=True)
    via = fields.String(load_default=None, allow_none=True)
    brand = fields.String(load_default=None, allow_none=True)
    group = fields.String(load_default=None, allow_none=True)
    tags = fields.Raw(load_default=None, allow_none=True)
    organization = fields.String(load_default=None, allow_none=True)  # {{ticket.organization.name}}


class ZendeskPersonPayload(VendorPayload):
    id = IdField(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)
    locale = fields.String(load_default=None, allow_none=True)


class ZendeskTriggerPayload(VendorPayload):
    ticket = fields.Nested(ZendeskTicketPayload, required=True)
    requester = fields.Nested(ZendeskPersonPayload, required=True)
    assignee = fields.Nested(ZendeskPersonPayload, load_default=None, allow_none=True)


class ZendeskDetailPayload(VendorPayload):
    id = IdField(required=True)
    requester_id = IdField(required=True)
    assignee_id = IdField(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    tags = fields.List(fields.String(), load_default=list, allow_none=True)
    via = fields.Dict(load_default=None, allow_none=True)


class ZendeskStatusChangePayload(VendorPayload):
    class _Change(VendorPayload):
        current = fields.String(required=True)
        previous = fields.String(load_default=None, allow_none=True)

    id = IdField(required=True)
    time = AwareDateTime(required=True)
    detail = fields.Nested(ZendeskDetailPayload, required=True)
    event = fields.Nested(_Change, required=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the signature matches and its timestamp is within 5 minutes."""
    signature = inbound.header("x-zendesk-webhook-signature")
    stamp = inbound.header("x-zendesk-webhook-signature-timestamp")
    if not (signature and stamp):
        raise SignatureError("Missing signature headers.")
    try:
        sent_at = AwareDateTime().deserialize(stamp).timestamp()
    except ValidationError:
        raise SignatureError("Invalid signature.") from None
    check_fresh(sent_at, inbound.received_at)
    if not same(hmac_base64(secret.encode("utf-8"), stamp.encode("utf-8") + inbound.body), signature):
        raise SignatureError("Invalid signature.")


def parse(inbound: Inbound) -> Delivery:
    """Turn a trigger body or a status-changed event into a delivery of one ticket event."""
    data = require_object(load_json(inbound.body))
    kind = data.get("type")
    if isinstance(kind, str) and kind.startswith(EVENT_PREFIX):
        if kind != STATUS_CHANGED:
            raise IgnoredEvent(kind)
        return _status_changed(inbound, load_payload(ZendeskStatusChangePayload, data))
    return _trigger(inbound, load_payload(ZendeskTriggerPayload, data))


def _trigger(inbound: Inbound, payload: dict[str, Any]) -> Delivery:
    ticket, requester = payload["ticket"], payload["requester"]
    assignee = payload["assignee"] or {}
    status = ticket["status"].strip().lower()
    kind = _type_of(status)
    agent = {"id": assignee["id"], "name": assignee["name"] or None,
             "email": assignee["email"] or None} if assignee.get("id") else None
    tags = ticket["tags"]
    event = {
        "type": kind,
        "id": _event_id(ticket["id"], status, ticket["updated_at"].timestamp()),
        "occurred_at": ticket["updated_at"].isoformat(),
        "ticket": {"id": ticket["id"], "status": status, "subject": ticket["subject"] or None,
                   "channel": _channel(ticket["via"]), "brand": ticket["brand"] or None,
                   "team": ticket["group"] or None, "agent": agent,
                   "tags": tags.split() if isinstance(tags, str) else list(tags or [])},
        "customer": {"id": requester["id"], "email": requester["email"] or None,
                     "name": requester["name"] or None, "locale": language_code(requester["locale"]),
                     "organisation": vendor_text(ticket["organization"])},
    }
    fallback = fallback_delivery_id(NAME, ticket["id"], status, ticket["updated_at"].isoformat())
    return Delivery(delivery_id(inbound) or fallback, (load_event(event, NAME),))


def _status_changed(inbound: Inbound, payload: dict[str, Any]) -> Delivery:
    detail = payload["detail"]
    status = payload["event"]["current"].strip().lower()
    kind = _type_of(status)
    # Unlike a trigger body, the subscription names the previous status, so a reopen is known.
    if kind == "ticket.updated" and (payload["event"]["previous"] or "").lower() in ("solved", "closed"):
        kind = "ticket.reopened"
    via = detail["via"] or {}
    event = {
        "type": kind,
        "id": payload["id"],
        "occurred_at": payload["time"].isoformat(),
        "ticket": {"id": detail["id"], "status": status, "subject": detail["subject"] or None,
                   "channel": _channel(via.get("channel")), "tags": detail["tags"] or [],
                   "agent": {"id": detail["assignee_id"]} if detail["assignee_id"] else None},
        "customer": {"id": detail["requester_id"]},
    }
    return Delivery(delivery_id(inbound) or f"{NAME}:{payload['id']}", (load_event(event, NAME),))


def delivery_id(inbound: Inbound) -> str | None:
    """Return `X-Zendesk-Webhook-Invocation-Id` as the delivery id, or None when absent."""
    # Retries of one invocation keep its id; the header is absent only in hand-made requests.
    invocation = inbound.header("x-zendesk-webhook-invocation-id")
    return f"{NAME}:{invocation}" if invocation else None


def _type_of(status: str) -> str:
    if status not in TYPE_OF_STATUS:
        raise IgnoredEvent(f"Status {status!r} is not tracked.")
    return TYPE_OF_STATUS[status]


def _event_id(ticket_id: str, status: str, at: float) -> str:
    return f"zendesk-{ticket_id}-{status}-{int(at * 1000)}"


def _channel(via: Any) -> str | None:
    name = slug(via)
    return CHANNELS.get(name, name) if name else None


def language_code(language: str | None) -> str | None:
    """Return the locale code of a rendered Zendesk language name ("Norsk (bokmål)" -> "nb")."""
    text = (language or "").strip().lower()
    if not text:
        return None
    if "nynorsk" in text:
        return "nn"
    if CODE.match(text):
        return text.replace("_", "-")
    for word in re.findall(r"[^\W\d_]+", text):
        if word in LANGUAGES:
            return LANGUAGES[word]
    return None
