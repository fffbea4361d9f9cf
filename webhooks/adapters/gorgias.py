"""Gorgias: an HTTP integration on ticket status updates, authenticated by a shared token.

Gorgias signs nothing, so the URL carries `?token=<secret>` (or an `Authorization: Basic …` header whose
password is the secret). The body is what the admin writes; use this one (Content-Type application/json):

    {"ticket": {"id": "{{ticket.id}}", "status": "{{ticket.status}}", "subject": "{{ticket.subject}}",
                "channel": "{{ticket.channel}}", "language": "{{ticket.language}}",
                "updated_datetime": "{{ticket.updated_datetime}}",
                "assignee_user": {"id": "{{ticket.assignee_user.id}}",
                                  "email": "{{ticket.assignee_user.email}}",
                                  "name": "{{ticket.assignee_user.name}}"},
                "assignee_team": {"name": "{{ticket.assignee_team.name}}"},
                "customer": {"id": "{{ticket.customer.id}}", "email": "{{ticket.customer.email}}",
                             "name": "{{ticket.customer.name}}"}}}

with the triggers "ticket created" and "ticket status updated".
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, pre_load

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
    slug,
)

NAME = "gorgias"
CONTENT_TYPES = JSON_TYPES
# Gorgias tickets are open or closed; closing is the resolution.
TYPE_OF_STATUS = {"closed": "ticket.solved", "open": "ticket.updated"}
# An integration body names no event: what is acted on is the ticket status it reports.
SUPPORTED_EVENTS = {status: (kind,) for status, kind in TYPE_OF_STATUS.items()}


class _Rendered(VendorPayload):
    # Gorgias renders a missing value as "" or "None"; both mean absent.
    @pre_load
    def blank_to_none(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: None if isinstance(v, str) and v.strip() in ("", "None", "null") else v
                for k, v in data.items()}


class GorgiasPersonPayload(_Rendered):
    id = IdField(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)


class GorgiasTicketPayload(_Rendered):
    id = IdField(required=True)
    status = fields.String(required=True)
    updated_datetime = AwareDateTime(required=True)
    subject = fields.String(load_default=None, allow_none=True)
    channel = fields.String(load_default=None, allow_none=True)
    language = fields.String(load_default=None, allow_none=True)
    tags = fields.Raw(load_default=None, allow_none=True)
    customer = fields.Nested(GorgiasPersonPayload, required=True)
    assignee_user = fields.Nested(GorgiasPersonPayload, load_default=None, allow_none=True)
    assignee_team = fields.Nested(GorgiasPersonPayload, load_default=None, allow_none=True)


class GorgiasIntegrationPayload(VendorPayload):
    ticket = fields.Nested(GorgiasTicketPayload, required=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the request carries the shared token."""
    check_shared_token(inbound, secret)


def parse(inbound: Inbound) -> Delivery:
    """Turn an HTTP integration body into a delivery of one ticket event."""
    ticket = load_payload(GorgiasIntegrationPayload, require_object(load_json(inbound.body)))["ticket"]
    status = ticket["status"].strip().lower()
    if status not in TYPE_OF_STATUS:
        raise IgnoredEvent(f"Status {status!r} is not tracked.")
    at, customer = ticket["updated_datetime"], ticket["customer"]
    assignee, team = ticket["assignee_user"] or {}, ticket["assignee_team"] or {}
    event = {
        "type": TYPE_OF_STATUS[status],
        "id": f"gorgias-{ticket['id']}-{status}-{int(at.timestamp() * 1000)}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": ticket["id"], "status": "solved" if status == "closed" else status,
                   "subject": ticket["subject"], "channel": slug(ticket["channel"]),
                   "team": team.get("name") or None, "tags": _tags(ticket["tags"]),
                   "agent": {"id": assignee["id"], "email": assignee["email"],
                             "name": assignee["name"]} if assignee.get("id") else None},
        "customer": {"id": customer["id"], "email": customer["email"], "name": customer["name"],
                     "locale": (ticket["language"] or "").lower() or None},
    }
    delivery = fallback_delivery_id(NAME, ticket["id"], status, at.isoformat())
    return Delivery(delivery, (load_event(event, NAME),))


def _tags(tags: Any) -> list[str]:
    # Tags arrive as the API's objects ({"name": …}) or as a comma-separated string.
    if isinstance(tags, list):
        names = [tag.get("name") if isinstance(tag, dict) else tag for tag in tags]
        return [str(name) for name in names if name]
    return [tag.strip() for tag in str(tags or "").split(",") if tag.strip()]
