"""GET /metrics (the Prometheus scrape endpoint, open like the probes) and the webhook counter."""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint, Response, current_app, request

from tracker.metrics import CONTENT_TYPE, render_metrics
from tracker.store import StorageError
from tracker.web.errors import envelope

bp = Blueprint("metrics", __name__)
OUTCOMES = {202: "accepted", 400: "invalid", 422: "invalid", 401: "unauthorized", 404: "unknown_source",
            413: "too_large", 415: "unsupported_media_type"}


@bp.get("/metrics")
def metrics() -> Any:
    """Render the counters and backlogs; 503 while Redis is unreachable."""
    tracker = current_app.extensions["tracker"]
    try:
        text = render_metrics(tracker.store, tracker.settings, int(time.time() * 1000))
    except StorageError:
        return envelope(503, "Storage is unreachable.", headers={"Retry-After": "5"})
    return Response(text, content_type=CONTENT_TYPE)


def count_delivery(response: Response) -> Response:
    """Count a webhook delivery by source and outcome (one HINCRBY); counting never fails the answer."""
    from webhooks.adapters import ADAPTERS

    if response.status_code == 503 or response.status_code == 202 or (
            response.status_code == 200 and (response.get_json(silent=True) or {}).get("status") == "duplicate"):
        return response  # unreachable storage has nowhere to count; the append script counted the rest
    source = str((request.view_args or {}).get("source", ""))
    body = response.get_json(silent=True) if response.status_code == 200 else None
    outcome = OUTCOMES.get(response.status_code) or str((body or {}).get("status") or response.status_code)
    try:
        current_app.extensions["tracker"].store.count_received(source if source in ADAPTERS else "unknown", outcome)
    except redis.RedisError:
        pass
    return response
