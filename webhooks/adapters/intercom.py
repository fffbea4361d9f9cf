"""Intercom: an app's webhook topics about conversations.

Intercom signs `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>` keyed with the app's client secret.
The body is a `notification_event` whose `data.item` is the conversation; `id` names the notification.
From API version 2.15 the conversation names its `company`, the customer's organisation; from 2.10 it says
whether Fin (the AI Agent) took part and how it ended (`ai_agent_participated`, `ai_agent.resolution_state`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields

from webhooks.adapters.base import (
    JSON_TYPES,
    Delivery,
    IdField,
    IgnoredEvent,
    Inbound,
    SignatureError,
    VendorPayload,
    fallback_delivery_id,
    hmac_hex,
    load_event,
    load_json,
    load_payload,
    require_object,
    same,
    slug,
    unix_time,
    vendor_text,
)

NAME = "intercom"
CONTENT_TYPES = JSON_TYPES
TYPE_OF_TOPIC = {"conversation.admin.closed": "ticket.solved", "conversation.admin.opened": "ticket.reopened",
                 "conversation.admin.assigned": "ticket.updated"}
# The topics acted on, with the tracker event types each can become.
SUPPORTED_EVENTS = {topic: (kind,) for topic, kind in TYPE_OF_TOPIC.items()}
# Fin's resolution states (Intercom's `ai_agent` object): the first two count as resolved by Fin; the
# others mean Fin handed the conversation to the team (older versions say routed_to_team, newer escalated).
FIN_RESOLVED = ("assumed_resolution", "confirmed_resolution")
FIN_HANDED_OVER = ("routed_to_team", "escalated", "procedure_handoff")


class IntercomConversationPayload(VendorPayload):
    id = IdField(required=True)
    updated_at = fields.Integer(required=True, strict=False, validate=unix_time())
    state = fields.String(load_default=None, allow_none=True)
    title = fields.String(load_default=None, allow_none=True)
    source = fields.Dict(load_default=None, allow_none=True)
    contacts = fields.Dict(load_default=None, allow_none=True)
    user = fields.Dict(load_default=None, allow_none=True)
    assignee = fields.Dict(load_default=None, allow_none=True)
    admin_assignee_id = IdField(load_default=None, allow_none=True)
    team_assignee_id = IdField(load_default=None, allow_none=True)
    tags = fields.Dict(load_default=None, allow_none=True)
    conversation_parts = fields.Dict(load_default=None, allow_none=True)
    company = fields.Dict(load_default=None, allow_none=True)
    ai_agent_participated = fields.Boolean(load_default=None, allow_none=True)
    ai_agent = fields.Dict(load_default=None, allow_none=True)


class IntercomDataPayload(VendorPayload):
    item = fields.Nested(IntercomConversationPayload, required=True)


class IntercomNotificationPayload(VendorPayload):
    id = IdField(load_default=None, allow_none=True)
    topic = fields.String(required=True)
    data = fields.Nested(IntercomDataPayload, required=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless `sha1=<hex>` matches the body's HMAC-SHA1."""
    scheme, _, signature = inbound.header("x-hub-signature").partition("=")
    expected = hmac_hex(secret.encode("utf-8"), inbound.body, "sha1")
    if scheme.strip().lower() != "sha1" or not same(expected, signature.strip().lower()):
        raise SignatureError("Invalid signature.")


def parse(inbound: Inbound) -> Delivery:
    """Turn a conversation notification into a delivery of one ticket event."""
    data = require_object(load_json(inbound.body))
    topic = data.get("topic")
    if not isinstance(topic, str) or topic not in TYPE_OF_TOPIC:
        raise IgnoredEvent(str(topic)[:100])  # `ping` and every other topic
    notification = load_payload(IntercomNotificationPayload, data)
    convo = notification["data"]["item"]
    at = datetime.fromtimestamp(convo["updated_at"], tz=UTC)
    kind = TYPE_OF_TOPIC[topic]
    status = {"ticket.solved": "solved", "ticket.reopened": "open"}.get(kind) or _status(convo["state"])
    event = {
        "type": kind,
        "id": f"intercom-{convo['id']}-{topic}-{convo['updated_at']}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": convo["id"], "status": status, "subject": convo["title"] or None,
                   "channel": _channel((convo["source"] or {}).get("type")),
                   "team": convo["team_assignee_id"], "tags": _tags(convo["tags"]), "agent": _agent(convo),
                   "resolved_by": _resolved_by(convo) if kind == "ticket.solved" else None},
        "customer": {**_customer(convo), "organisation": vendor_text(_object(convo["company"]).get("name"))},
    }
    delivery = (f"{NAME}:{notification['id']}" if notification["id"]
                else fallback_delivery_id(NAME, convo["id"], topic, convo["updated_at"]))
    return Delivery(delivery, (load_event(event, NAME),))


def _channel(kind: Any) -> str | None:
    # A source of type "conversation" is a Messenger chat.
    return "chat" if kind == "conversation" else slug(kind)


def _status(state: str | None) -> str:
    return {"closed": "solved", "snoozed": "pending"}.get(state or "", state or "open")


def _agent(convo: dict[str, Any]) -> dict[str, Any] | None:
    assignee = convo["assignee"] or {}
    agent_id = convo["admin_assignee_id"] or (str(assignee["id"]) if assignee.get("id") else None)
    if not agent_id:
        return None
    # Only ids name the assignee; its name and email are on the parts it wrote.
    parts = (convo["conversation_parts"] or {}).get("conversation_parts") or []
    people = [assignee, *(part.get("author") for part in parts if isinstance(part, dict))]
    admin = next((p for p in people if isinstance(p, dict) and str(p.get("id")) == agent_id), {})
    return {"id": agent_id, "name": admin.get("name"), "email": admin.get("email")}


def _resolved_by(convo: dict[str, Any]) -> str | None:
    """Return "bot" when Fin resolved the conversation, "human" when Fin handed it to a teammate who has it."""
    if not convo["ai_agent_participated"]:
        return None
    state = _object(convo["ai_agent"]).get("resolution_state")
    # Fin resolves unassigned; a conversation it handed over and an admin now holds was closed by that admin.
    if state in FIN_RESOLVED and not convo["admin_assignee_id"]:
        return "bot"
    if state in FIN_HANDED_OVER and convo["admin_assignee_id"]:
        return "human"
    return None


def _customer(convo: dict[str, Any]) -> dict[str, Any]:
    # The conversation's author carries the email; the contacts list carries only ids.
    author = _object(_object(convo["source"]).get("author"))
    contacts = _object(convo["contacts"]).get("contacts") or []
    person = author if author.get("type") in ("user", "lead", "contact") else _object(convo["user"])
    contact_id = contacts[0].get("id") if contacts and isinstance(contacts[0], dict) else person.get("id")
    return {"id": str(contact_id) if contact_id else None, "email": person.get("email") or None,
            "name": person.get("name") or None}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tags(tags: dict[str, Any] | None) -> list[str]:
    listed = (tags or {}).get("tags") or []
    return [tag["name"] for tag in listed if isinstance(tag, dict) and tag.get("name")]
