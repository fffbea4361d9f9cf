"""Chatwoot: account webhooks about conversations.

Chatwoot (4.12+) signs `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` with
`X-Chatwoot-Timestamp` in unix seconds; older installs sign nothing, and some sign with a key they do not
show (chatwoot/chatwoot#13809), so `?token=<secret>` is accepted too, with or without a signature header.

The contact's `additional_attributes.company_name` (the company Chatwoot links the contact to) becomes the
customer's organisation. A conversation resolved while an Agent Bot holds it was resolved by the bot: newer
Chatwoot names the holder's kind in `meta.assignee_type` ("AgentBot"), and an inbox with an Agent Bot starts
every conversation in the bot's `pending` status until the bot opens it for the agents, so a conversation
resolved straight from `pending` with no one assigned was the bot's too. A bot is never the ticket's agent.
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
    check_fresh,
    check_shared_token,
    fallback_delivery_id,
    hmac_hex,
    load_event,
    load_json,
    load_payload,
    require_object,
    same,
    slug,
    unix_seconds,
    unix_time,
    vendor_text,
)

NAME = "chatwoot"
CONTENT_TYPES = JSON_TYPES
# The events acted on, with the tracker event types each can become; the last two are deprecated names
# older installs send.
SUPPORTED_EVENTS = {
    "conversation_status_changed": ("ticket.solved", "ticket.reopened", "ticket.updated"),
    "conversation_updated": ("ticket.updated",),
    "conversation_resolved": ("ticket.solved",),
    "conversation_opened": ("ticket.reopened",),
}
# Chatwoot's "resolved" is the tracker's "solved".
STATUSES = {"resolved": "solved", "open": "open", "pending": "pending", "snoozed": "pending"}


class ChatwootConversationPayload(VendorPayload):
    id = IdField(required=True)
    event = fields.String(required=True)
    status = fields.String(required=True)
    timestamp = fields.Float(required=True, validate=unix_time())
    updated_at = fields.Float(load_default=None, allow_none=True, validate=unix_time())
    channel = fields.String(load_default=None, allow_none=True)
    labels = fields.List(fields.String(), load_default=list, allow_none=True)
    meta = fields.Dict(load_default=dict, allow_none=True)
    changed_attributes = fields.Raw(load_default=None, allow_none=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the HMAC over timestamp and body matches or the URL carries the token."""
    if "token" in inbound.query:
        # Installs that do not sign, and installs hit by Chatwoot's signing-secret mismatch (chatwoot#13809:
        # it signs with an internal token, not the secret it shows), authenticate with `?token=` instead;
        # either a valid token or a valid signature is enough.
        try:
            check_shared_token(inbound, secret)
            return
        except SignatureError:
            pass
    signature = inbound.header("x-chatwoot-signature")
    stamp = inbound.header("x-chatwoot-timestamp")
    if not (signature and stamp):
        raise SignatureError("Missing signature headers.")
    sent_at = unix_seconds(stamp)
    check_fresh(sent_at, inbound.received_at)
    expected = "sha256=" + hmac_hex(secret.encode("utf-8"), stamp.encode("ascii") + b"." + inbound.body)
    if not same(expected, signature.strip()):
        raise SignatureError("Invalid signature.")


def delivery_id(inbound: Inbound) -> str | None:
    """Return `X-Chatwoot-Delivery` as the delivery id, or None when absent."""
    delivery = inbound.header("x-chatwoot-delivery")
    return f"{NAME}:{delivery}" if delivery else None


def parse(inbound: Inbound) -> Delivery:
    """Turn a conversation event into a delivery of one ticket event."""
    data = require_object(load_json(inbound.body))
    if data.get("event") not in SUPPORTED_EVENTS:
        raise IgnoredEvent(str(data.get("event")))
    convo = load_payload(ChatwootConversationPayload, data)
    # The deprecated events name the change themselves.
    status = {"conversation_resolved": "solved", "conversation_opened": "open"}.get(
        convo["event"], STATUSES.get(convo["status"]))
    if status is None:
        raise IgnoredEvent(f"Status {convo['status']!r} is not tracked.")
    # `timestamp` is the last message's time; `updated_at` (newer versions) moves with the status change.
    at = datetime.fromtimestamp(convo["updated_at"] or convo["timestamp"], tz=UTC)
    meta = convo["meta"] or {}
    sender, team = _mapping(meta.get("sender")), _mapping(meta.get("team"))
    event = {
        "type": _type(convo, status),
        "id": f"chatwoot-{convo['id']}-{convo['event']}-{status}-{int(at.timestamp() * 1000)}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": convo["id"], "status": status, "channel": _channel(convo["channel"]),
                   "team": team.get("name") or None, "tags": convo["labels"] or [],
                   "agent": None if _held_by_bot(meta) else _agent(meta.get("assignee")),
                   "resolved_by": _resolved_by(meta, convo["changed_attributes"], status)},
        "customer": {"id": str(sender["id"]) if sender.get("id") else None,
                     "email": sender.get("email") or None, "name": sender.get("name") or None,
                     "organisation": vendor_text(_mapping(sender.get("additional_attributes")).get("company_name"))},
    }
    fallback = fallback_delivery_id(NAME, convo["id"], convo["event"], status, at.isoformat())
    return Delivery(delivery_id(inbound) or fallback, (load_event(event, NAME),))


def _type(convo: dict[str, Any], status: str) -> str:
    if convo["event"] == "conversation_updated":
        return "ticket.updated"
    if status == "solved":
        return "ticket.solved"
    if convo["event"] == "conversation_opened" or _previous_status(convo["changed_attributes"]) == "resolved":
        return "ticket.reopened"
    return "ticket.updated"


def _resolved_by(meta: dict[str, Any], changed: Any, status: str) -> str | None:
    """Return "bot" when an Agent Bot held the conversation as it was resolved, else None."""
    if status != "solved":
        return None
    if _held_by_bot(meta) or (_previous_status(changed) == "pending" and not meta.get("assignee")):
        return "bot"
    return None


def _held_by_bot(meta: dict[str, Any]) -> bool:
    return meta.get("assignee_type") == "AgentBot"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _previous_status(changed: Any) -> str | None:
    # A list of {"<attribute>": {"previous_value": …, "current_value": …}}.
    for change in changed if isinstance(changed, list) else []:
        if isinstance(change, dict) and isinstance(change.get("status"), dict):
            previous = change["status"].get("previous_value")
            return previous if isinstance(previous, str) else None
    return None


def _channel(channel: str | None) -> str | None:
    name = slug((channel or "").removeprefix("Channel::"))
    return {"webwidget": "chat", "email": "email"}.get(name or "", name)


def _agent(assignee: Any) -> dict[str, Any] | None:
    if not isinstance(assignee, dict) or not assignee.get("id"):
        return None
    return {"id": str(assignee["id"]), "name": assignee.get("name") or None,
            "email": assignee.get("email") or None}
