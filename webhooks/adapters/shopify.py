"""Shopify: order webhooks, with the topic in `X-Shopify-Topic`.

Shopify signs `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the body keyed with the app's client secret
(or the secret shown under Settings > Notifications > Webhooks). `X-Shopify-Webhook-Id` stays the same
across retries of one delivery. An order's `billing_address.company` becomes the customer's organisation.
"""

from __future__ import annotations

from decimal import Decimal
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
    require_object,
    same,
    vendor_text,
)

NAME = "shopify"
CONTENT_TYPES = JSON_TYPES
TYPE_OF_TOPIC = {"orders/create": "order.created", "orders/fulfilled": "order.fulfilled",
                 "orders/cancelled": "order.cancelled", "refunds/create": "order.refunded"}
# The `X-Shopify-Topic`s acted on, with the tracker event types each can become.
SUPPORTED_EVENTS = {topic: (kind,) for topic, kind in TYPE_OF_TOPIC.items()}


class ShopifyCustomerPayload(VendorPayload):
    id = IdField(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    first_name = fields.String(load_default=None, allow_none=True)
    last_name = fields.String(load_default=None, allow_none=True)


class ShopifyAddressPayload(VendorPayload):
    company = fields.String(load_default=None, allow_none=True)


class ShopifyOrderPayload(VendorPayload):
    id = IdField(required=True)
    name = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)
    total_price = fields.Decimal(required=True, as_string=True)
    currency = fields.String(required=True)
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(load_default=None, allow_none=True)
    cancelled_at = AwareDateTime(load_default=None, allow_none=True)
    customer_locale = fields.String(load_default=None, allow_none=True)
    customer = fields.Nested(ShopifyCustomerPayload, load_default=None, allow_none=True)
    billing_address = fields.Nested(ShopifyAddressPayload, load_default=None, allow_none=True)


class ShopifyTransactionPayload(VendorPayload):
    kind = fields.String(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True)
    amount = fields.Decimal(required=True, as_string=True)
    currency = fields.String(load_default=None, allow_none=True)


class ShopifyRefundPayload(VendorPayload):
    id = IdField(required=True)
    order_id = IdField(required=True)
    created_at = AwareDateTime(required=True)
    transactions = fields.List(fields.Nested(ShopifyTransactionPayload), load_default=list)


def verify(inbound: Inbound, secret: str) -> None:
    """Raise SignatureError unless the body's base64 HMAC-SHA256 matches the signature header."""
    signature = inbound.header("x-shopify-hmac-sha256")
    if not signature or not same(hmac_base64(secret.encode("utf-8"), inbound.body), signature.strip()):
        raise SignatureError("Invalid signature.")


def delivery_id(inbound: Inbound) -> str | None:
    """Return `X-Shopify-Webhook-Id` as the delivery id, or None when absent."""
    webhook_id = inbound.header("x-shopify-webhook-id")
    return f"{NAME}:{webhook_id}" if webhook_id else None


def parse(inbound: Inbound) -> Delivery:
    """Turn an order or refund webhook into a delivery of one order event."""
    data = require_object(load_json(inbound.body))
    topic = inbound.header("x-shopify-topic")
    if topic not in TYPE_OF_TOPIC:
        raise IgnoredEvent(topic or "no topic")
    event = _refund(data) if topic == "refunds/create" else _order(data, TYPE_OF_TOPIC[topic])
    fallback = fallback_delivery_id(NAME, event["order"]["id"], event["type"], event["id"])
    return Delivery(delivery_id(inbound) or fallback, (load_event(event, NAME),))


def _order(data: dict[str, Any], kind: str) -> dict[str, Any]:
    order = load_payload(ShopifyOrderPayload, data)
    customer = order["customer"] or {}
    at = {"order.created": order["created_at"],
          "order.cancelled": order["cancelled_at"]}.get(kind) or order["updated_at"] or order["created_at"]
    names = (customer.get("first_name"), customer.get("last_name"))
    return {
        "type": kind,
        "id": f"shopify-{order['id']}-{kind}",
        "occurred_at": at.isoformat(),
        "order": {"id": order["id"], "total": order["total_price"], "currency": order["currency"]},
        "customer": {"id": customer.get("id"), "name": " ".join(n for n in names if n) or None,
                     "email": order["email"] or order["contact_email"] or customer.get("email") or None,
                     "locale": (order["customer_locale"] or "").lower() or None,
                     "organisation": vendor_text((order["billing_address"] or {}).get("company"))},
    }


def _refund(data: dict[str, Any]) -> dict[str, Any]:
    refund = load_payload(ShopifyRefundPayload, data)
    paid_back = [t for t in refund["transactions"]
                 if t["kind"] == "refund" and t["status"] in ("success", None)]
    total = sum((Decimal(t["amount"]) for t in paid_back), Decimal("0"))
    currency = next((t["currency"] for t in paid_back if t["currency"]), None)
    if currency is None:
        raise IgnoredEvent("The refund moved no money.")
    return {
        "type": "order.refunded",
        "id": f"shopify-{refund['order_id']}-refund-{refund['id']}",
        "occurred_at": refund["created_at"].isoformat(),
        "order": {"id": refund["order_id"], "total": str(total), "currency": currency},
        # A refund names only its order; the pipeline knows the order's customer from orders/create.
        "customer": {"id": f"order:{refund['order_id']}"},
    }
