"""WooCommerce: order webhooks, with the topic in `X-WC-Webhook-Topic`.

WooCommerce signs `X-WC-Webhook-Signature` = base64 HMAC-SHA256 of the body with the webhook's secret.
Saving a webhook first sends an unsigned, form-encoded `webhook_id=<n>` ping, answered as ignored.
An order's `billing.company` becomes the customer's organisation.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from marshmallow import fields

from tracker.events import AwareDateTime
from webhooks.adapters.base import (
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
    require_object,
    same,
    vendor_text,
)

NAME = "woocommerce"
# The creation ping is form-encoded; every real delivery is JSON.
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
PING = re.compile(rb"^webhook_id=\d+$")
TYPE_OF_STATUS = {"completed": "order.fulfilled", "cancelled": "order.cancelled",
                  "refunded": "order.refunded"}
# The `X-WC-Webhook-Topic`s acted on, with the tracker event types each can become.
SUPPORTED_EVENTS = {"order.created": ("order.created",), "order.updated": tuple(TYPE_OF_STATUS.values())}


class WooBillingPayload(VendorPayload):
    company = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    first_name = fields.String(load_default=None, allow_none=True)
    last_name = fields.String(load_default=None, allow_none=True)


class WooRefundPayload(VendorPayload):
    total = fields.Decimal(required=True, as_string=True)


class WooOrderPayload(VendorPayload):
    id = IdField(required=True)
    status = fields.String(required=True)
    currency = fields.String(required=True)
    total = fields.Decimal(required=True, as_string=True)
    customer_id = fields.Integer(load_default=0, allow_none=True, strict=False)
    date_created_gmt = AwareDateTime(required=True)
    date_modified_gmt = AwareDateTime(load_default=None, allow_none=True)
    billing = fields.Nested(WooBillingPayload, load_default=None, allow_none=True)
    refunds = fields.List(fields.Nested(WooRefundPayload), load_default=list, allow_none=True)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the body's base64 HMAC-SHA256 matches (the creation ping passes)."""
    signature = inbound.header("x-wc-webhook-signature")
    if not signature and PING.match(inbound.body.strip()):
        return  # it carries nothing, and parse() answers it as ignored
    if not signature or not same(hmac_base64(secret.encode("utf-8"), inbound.body), signature.strip()):
        raise SignatureError("Invalid signature.")


def delivery_id(inbound: Inbound) -> str | None:
    """Return `X-WC-Webhook-Delivery-ID` as the delivery id, or None when absent or on the unsigned ping."""
    delivery = inbound.header("x-wc-webhook-delivery-id")
    # The ping passes verify() unsigned: its header proves nothing, so it may not ask what was seen.
    if not delivery or PING.match(inbound.body.strip()):
        return None
    return f"{NAME}:{delivery}"


def parse(inbound: Inbound) -> Delivery:
    """Turn an order webhook into a delivery of one order event."""
    if PING.match(inbound.body.strip()):
        raise IgnoredEvent("Webhook creation ping.")
    data = require_object(load_json(inbound.body))
    topic = inbound.header("x-wc-webhook-topic")
    if topic not in SUPPORTED_EVENTS:
        raise IgnoredEvent(topic or "no topic")
    order = load_payload(WooOrderPayload, data)
    kind = "order.created" if topic == "order.created" else TYPE_OF_STATUS.get(order["status"])
    if kind is None:
        raise IgnoredEvent(f"Status {order['status']!r} is not tracked.")
    at = order["date_created_gmt"] if kind == "order.created" else order["date_modified_gmt"]
    at = at or order["date_created_gmt"]
    billing = order["billing"] or {}
    names = (billing.get("first_name"), billing.get("last_name"))
    event = {
        "type": kind,
        "id": f"woocommerce-{order['id']}-{kind}-{int(at.timestamp())}",
        "occurred_at": at.isoformat(),
        "order": {"id": order["id"], "total": str(_total(order, kind)), "currency": order["currency"]},
        # Guests have customer_id 0: they are known by their billing email alone.
        "customer": {"id": str(order["customer_id"]) if order["customer_id"] else None,
                     "email": billing.get("email") or None, "name": " ".join(n for n in names if n) or None,
                     "organisation": vendor_text(billing.get("company"))},
    }
    fallback = fallback_delivery_id(NAME, order["id"], kind, at.isoformat())
    return Delivery(delivery_id(inbound) or fallback, (load_event(event, NAME),))


def _total(order: dict[str, Any], kind: str) -> Decimal:
    # Refund totals are negative in the order's refunds list; a refunded order's amount is their sum.
    refunded = sum((-Decimal(refund["total"]) for refund in order["refunds"] or []), Decimal("0"))
    return refunded if kind == "order.refunded" and refunded > 0 else Decimal(order["total"])
