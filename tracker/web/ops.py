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
    """Say whether Redis answers, and on a Redis Cluster whether it serves every slot; 503 when not."""
    store = current_tracker().store
    try:
        cluster = store.cluster_state()
        if cluster is None:
            store.ping()
    except StorageUnavailable:
        return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
    if cluster is None:
        return jsonify({"status": "ok", "redis": "ok"})
    seen = {"state": cluster.state, "masters": cluster.masters, "known_nodes": cluster.known_nodes,
            "slots_assigned": cluster.slots_assigned, "slots_ok": cluster.slots_ok,
            "unreachable": list(cluster.unreachable)}
    if not cluster.ok:
        return jsonify({"status": "unavailable", "redis": "cluster_not_ok", "reason": cluster.reason(),
                        "cluster": seen}), 503
    return jsonify({"status": "ok", "redis": "ok", "cluster": seen})


@bp.get("/metrics")
def metrics() -> Any:
    """Render the counters and backlogs; 503 while Redis is unreachable."""
    return Response(render_metrics(current_tracker().metrics), content_type=CONTENT_TYPE)
