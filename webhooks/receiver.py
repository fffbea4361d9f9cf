"""POST /webhooks/<source>: verify the raw body, parse it, store it durably, answer."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request

from tracker.config import MAX_BODY
from tracker.errors import StorageUnavailable
from tracker.web.errors import envelope
from webhooks.adapters import ADAPTERS
from webhooks.adapters.base import IgnoredEvent, Inbound, PayloadError, SignatureError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
OUTCOMES = {202: "accepted", 400: "invalid", 422: "invalid", 401: "unauthorized", 404: "unknown_source",
            413: "too_large", 415: "unsupported_media_type"}


@bp.post("/webhooks/<source>")
def receive(source: str) -> Any:
    """Acknowledge a delivery only once its events are in the event log."""
    tracker = current_app.extensions["tracker"]
    adapter = ADAPTERS.get(source)
    secret = tracker.settings.source_secrets.get(source)
    if adapter is None or not secret:
        return envelope(404, "Unknown or unconfigured source.")
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH raises 413
    if len(body) >= MAX_BODY and request.stream.read(1):
        # A chunked body has no Content-Length; the limited stream stops at the limit without raising.
        return envelope(413, "The body is larger than 1 MiB.")
    if adapter.CONTENT_TYPES and request.mimetype not in adapter.CONTENT_TYPES:
        return envelope(415, f"The body must be {' or '.join(adapter.CONTENT_TYPES)}.")
    inbound = Inbound(body=body, headers={k.lower(): v for k, v in request.headers.items()},
                      query=request.args.to_dict(), received_at=time.time())
    try:
        adapter.verify(inbound, secret)
    except SignatureError:
        return envelope(401, "The signature is missing or invalid.",
                        headers={"WWW-Authenticate": 'Signature realm="webhooks"'})
    try:
        delivery = adapter.parse(inbound)
    except IgnoredEvent:
        return jsonify({"status": "ignored"}), 200
    except PayloadError as exc:
        return envelope(exc.status, exc.message, exc.errors or None)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # Vendor payloads nest loosely typed objects; an odd shape deep inside is the sender's
        # error (422), not ours (500). The payload itself is never logged: it holds personal data.
        log.warning("%s payload of an unexpected shape: %s", source, type(exc).__name__)
        return envelope(422, "The payload does not have the shape this source sends.")
    outcome = tracker.store.append_delivery(delivery.id, delivery.events, source)
    if outcome < 0:
        return jsonify({"status": "duplicate"}), 200
    if outcome > 0:
        tracker.kick("tracker.drain_events")
    return jsonify({"status": "accepted", "events": len(delivery.events)}), 202


@bp.after_request
def count_delivery(response: Response) -> Response:
    """Count a webhook delivery by source and outcome (one HINCRBY); counting never fails the answer."""
    if response.status_code == 503 or response.status_code == 202 or (
            response.status_code == 200 and (response.get_json(silent=True) or {}).get("status") == "duplicate"):
        return response  # unreachable storage has nowhere to count; the append script counted the rest
    source = str((request.view_args or {}).get("source", ""))
    body = response.get_json(silent=True) if response.status_code == 200 else None
    outcome = OUTCOMES.get(response.status_code) or str((body or {}).get("status") or response.status_code)
    try:
        current_app.extensions["tracker"].store.count_received(source if source in ADAPTERS else "unknown", outcome)
    except (StorageUnavailable, redis.RedisError):
        pass
    return response
