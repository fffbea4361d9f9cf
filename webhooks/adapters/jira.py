"""Jira Service Management: an admin webhook on issue events, reading resolution changes.

Jira signs admin webhooks that have a secret with `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`;
`X-Atlassian-Webhook-Identifier` names the delivery and stays the same across retries.
The event's `user` made the change: its `accountType` is `app` for an app or automation rule's account, which
resolves as a bot, and `atlassian` for a person's account, which resolves as a human (`customer`, a service desk
customer resolving their own request, says neither).
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
    unix_time,
)

NAME = "jira"
CONTENT_TYPES = JSON_TYPES
# The `webhookEvent` names acted on, with the tracker event types each can become.
SUPPORTED_EVENTS = {"jira:issue_created": ("ticket.created",),
                    "jira:issue_updated": ("ticket.solved", "ticket.reopened")}
RESOLVER_OF_ACCOUNT = {"app": "bot", "atlassian": "human"}


class JiraFieldsPayload(VendorPayload):
    summary = fields.String(load_default=None, allow_none=True)
    status = fields.Dict(load_default=None, allow_none=True)
    resolution = fields.Dict(load_default=None, allow_none=True)
    reporter = fields.Dict(load_default=None, allow_none=True)
    assignee = fields.Dict(load_default=None, allow_none=True)
    labels = fields.List(fields.String(), load_default=list, allow_none=True)
    project = fields.Dict(load_default=None, allow_none=True)


class JiraIssuePayload(VendorPayload):
    id = IdField(required=True)
    key = IdField(required=True)
    fields_ = fields.Nested(JiraFieldsPayload, data_key="fields", required=True)


class JiraIssueEventPayload(VendorPayload):
    timestamp = fields.Integer(required=True, strict=False, validate=unix_time(1000))
    webhook_event = fields.String(data_key="webhookEvent", required=True)
    issue = fields.Nested(JiraIssuePayload, required=True)
    changelog = fields.Dict(load_default=None, allow_none=True)
    user = fields.Dict(load_default=None, allow_none=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless `sha256=<hex>` matches the body's HMAC-SHA256."""
    scheme, _, signature = inbound.header("x-hub-signature").partition("=")
    expected = hmac_hex(secret.encode("utf-8"), inbound.body)
    if scheme.strip().lower() != "sha256" or not same(expected, signature.strip().lower()):
        raise SignatureError("Invalid signature.")


def delivery_id(inbound: Inbound) -> str | None:
    """Return `X-Atlassian-Webhook-Identifier` as the delivery id, or None when absent."""
    delivery = inbound.header("x-atlassian-webhook-identifier")
    return f"{NAME}:{delivery}" if delivery else None


def parse(inbound: Inbound) -> Delivery:
    """Turn an issue created, resolved or unresolved into a delivery of one ticket event."""
    data = require_object(load_json(inbound.body))
    if data.get("webhookEvent") not in SUPPORTED_EVENTS:
        raise IgnoredEvent(str(data.get("webhookEvent")))
    payload = load_payload(JiraIssueEventPayload, data)
    issue, issue_fields = payload["issue"], payload["issue"]["fields_"]
    kind = _type(payload)
    at = datetime.fromtimestamp(payload["timestamp"] / 1000, tz=UTC)
    reporter = issue_fields["reporter"] or {}
    event = {
        "type": kind,
        "id": f"jira-{issue['id']}-{kind}-{payload['timestamp']}",
        "occurred_at": at.isoformat(),
        "ticket": {"id": issue["key"], "subject": issue_fields["summary"],
                   "status": {"ticket.solved": "solved", "ticket.reopened": "open"}.get(kind, "new"),
                   "brand": (issue_fields["project"] or {}).get("name"), "tags": issue_fields["labels"] or [],
                   "agent": _person(issue_fields["assignee"]),
                   "resolved_by": RESOLVER_OF_ACCOUNT.get(str((payload["user"] or {}).get("accountType")))
                   if kind == "ticket.solved" else None},
        "customer": {"id": reporter.get("accountId") or reporter.get("name"),
                     "email": reporter.get("emailAddress") or None, "name": reporter.get("displayName")},
    }
    fallback = fallback_delivery_id(NAME, issue["id"], kind, payload["timestamp"])
    return Delivery(delivery_id(inbound) or fallback, (load_event(event, NAME),))


def _type(payload: dict[str, Any]) -> str:
    if payload["webhook_event"] == "jira:issue_created":
        return "ticket.created"
    items = (payload["changelog"] or {}).get("items") or []
    for item in items if isinstance(items, list) else []:
        # Service Management marks a request done by setting its resolution, whatever the status is called.
        if isinstance(item, dict) and item.get("field") == "resolution":
            return "ticket.solved" if item.get("to") else "ticket.reopened"
    raise IgnoredEvent("The update does not change the resolution.")


def _person(person: dict[str, Any] | None) -> dict[str, Any] | None:
    person_id = (person or {}).get("accountId") or (person or {}).get("name")
    if not person or not person_id:
        return None
    return {"id": person_id, "name": person.get("displayName"), "email": person.get("emailAddress") or None}
