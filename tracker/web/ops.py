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


DATA_LOST = ("The store's Redis no longer holds the store this process opened (its store id is gone or another): "
             "it restarted without persistence or was flushed. Restore its data (a backup, or `tracker replay` of an "
             "export), then restart the tracker's processes; restarted, they go on with what the Redis holds.")


@bp.get("/readyz")
def readyz() -> Any:
    """Say whether Redis answers, still holds the store (a Redis restarted empty under the processes does not), and
    on a Redis Cluster whether it serves every slot; 503 when not."""
    store = current_tracker().store
    try:
        cluster = store.cluster_state()
        intact = store.holds_its_data() if cluster is None or cluster.ok else True
    except StorageUnavailable:
        return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
    if not intact:
        return jsonify({"status": "unavailable", "redis": "data_lost", "reason": DATA_LOST}), 503
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
