"""Freshdesk: an automation rule's "Trigger webhook" action, authenticated by a shared token.

Freshdesk signs nothing, so the URL carries `?token=<secret>`, or the rule's "Requires authentication"
sends Basic auth: with a user name and the secret as password, or in API-key mode with the secret as the
API key (Freshdesk sends `<key>:X`). The body is what the admin writes; paste this one (Content: Advanced, JSON):

    {"ticket": {"id": "{{ticket.id}}", "status": "{{ticket.status}}", "subject": "{{ticket.subject}}",
                "source": "{{ticket.source}}", "group": "{{ticket.group.name}}", "tags": "{{ticket.tags}}",
                "portal": "{{ticket.portal_name}}"},
     "requester": {"email": "{{ticket.requester.email}}", "name": "{{ticket.requester.name}}"},
     "company": {"name": "{{ticket.company.name}}"},
     "agent": {"email": "{{ticket.agent.email}}", "name": "{{ticket.agent.name}}"}}

into a rule on "Status is changed to Resolved or Closed" and one on "Status is changed from Resolved".
The "Simple" content mode (`{"freshdesk_webhook": {"ticket_id": …}}`) is accepted too. The requester's company
(`{{ticket.company.name}}`, `ticket_company_name` in Simple mode) becomes the customer's organisation.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from tracker.events import AwareDateTime
from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IdField,
    IgnoredEvent,
    Inbound,
    VendorPayload,
    check_shared_token,
    fallback_delivery_id,
    load_event,
    load_json,
    load_payload,
    require_object,
    same,
    slug,
    vendor_text,
)

NAME = "freshdesk"
CONTENT_TYPES = JSON_TYPES
# `{{ticket.status}}` renders the status name; the API's numbers are accepted too (2 open … 5 closed).
STATUSES = {"2": "open", "3": "pending", "4": "resolved", "5": "closed"}
TYPE_OF_STATUS = {"resolved": "ticket.solved", "closed": "ticket.closed"}
# A rule's body names no event: what is acted on is the ticket status it reports (any other, custom
# status too, as ticket.updated).
SUPPORTED_EVENTS = {"resolved": ("ticket.solved",), "closed": ("ticket.closed",), "open": ("ticket.updated",),
                    "pending": ("ticket.updated",)}
SIMPLE_FIELDS = {"ticket_id": "id", "ticket_status": "status", "ticket_subject": "subject",
                 "ticket_source": "source", "ticket_tags": "tags", "ticket_group_name": "group",
                 "ticket_updated_at": "updated_at"}


class FreshdeskTicketPayload(VendorPayload):
    id = IdField(required=True)
    status = fields.Raw(required=True)
    subject = fields.String(load_default=None, allow_none=True)
    source = fields.String(load_default=None, allow_none=True)
    group = fields.String(load_default=None, allow_none=True)
    tags = fields.Raw(load_default=None, allow_none=True)
    portal = fields.String(load_default=None, allow_none=True)
    updated_at = fields.String(load_default=None, allow_none=True)


class FreshdeskPersonPayload(VendorPayload):
    email = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)


class FreshdeskCompanyPayload(VendorPayload):
    name = fields.String(load_default=None, allow_none=True)


class FreshdeskRulePayload(VendorPayload):
    ticket = fields.Nested(FreshdeskTicketPayload, required=True)
    requester = fields.Nested(FreshdeskPersonPayload, required=True)
    agent = fields.Nested(FreshdeskPersonPayload, load_default=None, allow_none=True)
    company = fields.Nested(FreshdeskCompanyPayload, load_default=None, allow_none=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the request carries the shared token, as password or as API key."""
    key = _api_key(inbound)
    if key and same(secret, key):
        return
    check_shared_token(inbound, secret)


def _api_key(inbound: Inbound) -> str | None:
    """Return the user name of Basic auth, where Freshdesk's API-key mode puts the key (`<key>:X`)."""
    auth = inbound.header("authorization")
    if auth[:6].lower() != "basic ":
        return None
    try:
        user, _, _password = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user or None


def parse(inbound: Inbound) -> Delivery:
    """Turn a rule's webhook body into a delivery of one ticket event."""
    payload = load_payload(FreshdeskRulePayload, _from_simple_mode(require_object(load_json(inbound.body))))
    ticket, requester, agent = payload["ticket"], payload["requester"], payload["agent"] or {}
    status = STATUSES.get(str(ticket["status"]).strip(), str(ticket["status"]).strip().lower())
    if not status or "{{" in status:
        raise IgnoredEvent("No ticket status.")
    at = _time(ticket["updated_at"], inbound.received_at)
    event = {
        "type": TYPE_OF_STATUS.get(status, "ticket.updated"),
        "id": f"freshdesk-{ticket['id']}-{slug(status)}-{int(at.timestamp())}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": ticket["id"], "status": "solved" if status == "resolved" else slug(status),
                   "subject": ticket["subject"] or None, "channel": slug(ticket["source"]),
                   "team": ticket["group"] or None, "brand": ticket["portal"] or None,
                   "tags": _tags(ticket["tags"]), "agent": _agent(agent)},
        "customer": {"email": requester["email"] or None, "name": requester["name"] or None,
                     "organisation": vendor_text((payload["company"] or {}).get("name"))},
    }
    delivery = fallback_delivery_id(NAME, ticket["id"], status, at.isoformat())
    return Delivery(delivery, (load_event(event, NAME),))


def _from_simple_mode(data: dict[str, Any]) -> dict[str, Any]:
    simple = data.get("freshdesk_webhook")
    if not isinstance(simple, dict):
        return data
    ticket = {ours: simple.get(theirs) for theirs, ours in SIMPLE_FIELDS.items() if theirs in simple}
    return {"ticket": ticket,
            "requester": {"email": simple.get("ticket_requester_email"),
                          "name": simple.get("ticket_requester_name")},
            "agent": {"email": simple.get("ticket_agent_email"), "name": simple.get("ticket_agent_name")},
            "company": {"name": simple.get("ticket_company_name")}}


def _time(text: str | None, received_at: float) -> datetime:
    # Freshdesk has no placeholder for the change time; without one, the minute of arrival stands in,
    # which also folds a rule that fires twice in a row into one delivery.
    if text and "{{" not in text:
        try:
            return AwareDateTime().deserialize(text)
        except ValidationError:
            pass
    return datetime.fromtimestamp(received_at - received_at % 60, tz=UTC)


def _tags(tags: Any) -> list[str]:
    if isinstance(tags, list):
        return [str(tag).strip() for tag in tags if str(tag).strip()]
    return [tag.strip() for tag in str(tags or "").split(",") if tag.strip()]


def _agent(agent: dict[str, Any]) -> dict[str, Any] | None:
    # No agent-id placeholder exists, so the agent's email is its id.
    email = (agent.get("email") or "").strip()
    return {"id": email.lower(), "email": email, "name": agent.get("name") or None} if email else None
