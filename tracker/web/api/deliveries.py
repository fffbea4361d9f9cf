"""GET /api/v1/deliveries: the newest delivery attempts of notices to their targets, and how each ended."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from tracker.notify.deliveries import DeliveryPageSchema, DeliveryQuerySchema, find_deliveries
from tracker.schema_cache import schema
from tracker.web.api.base import load_query, require_key, tracker

bp = Blueprint("api_deliveries", __name__, url_prefix="/v1")


@bp.get("/deliveries")
@require_key()
def deliveries() -> Any:
    """Return the newest delivery attempts, filtered by status, target, type and customer."""
    query = load_query(DeliveryQuerySchema)
    return jsonify(schema(DeliveryPageSchema).dump({"deliveries": find_deliveries(tracker().store, query)}))
