"""Operations endpoints, open like the probes: /healthz, /readyz and /metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from tracker.errors import StorageUnavailable
from tracker.web.context import current_tracker
from tracker.web.metrics import CONTENT_TYPE, render_metrics

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """Say the process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    """Say whether Redis answers; 503 when it does not."""
    try:
        current_tracker().store.ping()
    except StorageUnavailable:
        return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
    return jsonify({"status": "ok", "redis": "ok"})


@bp.get("/metrics")
def metrics() -> Any:
    """Render the counters and backlogs; 503 while Redis is unreachable."""
    return Response(render_metrics(current_tracker().metrics), content_type=CONTENT_TYPE)
