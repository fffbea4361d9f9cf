"""Operations endpoints, open like the probes: /healthz, /readyz and /metrics."""

from __future__ import annotations

import ssl
from typing import Any

import redis
from flask import Blueprint, Response, jsonify

from tracker.errors import StorageUnavailable, lasting_cause
from tracker.store.base import refusal
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


# What /readyz says of a Redis that answers but will not serve until an operator acts (tracker.errors.lasting_cause).
LASTING = ((redis.AuthenticationError, "auth_failed"), (ssl.SSLError, "tls_failed"))


@bp.get("/readyz")
def readyz() -> Any:
    """Say whether Redis answers, still holds the store (a Redis restarted empty under the processes does not), and
    on a Redis Cluster whether it serves every slot; 503 when not. A Redis that refuses the credentials of
    TRACKER_REDIS_URL (its password changed under the running processes), whose TLS certificate is not trusted, or
    whose ACL denies a command the tracker needs, is said so with the reason, in one line without a secret."""
    tracker = current_tracker()
    store = tracker.store
    try:
        cluster = store.cluster_state()
        intact = store.holds_its_data() if cluster is None or cluster.ok else True
    except StorageUnavailable as exc:
        lasting = lasting_cause(exc)
        kind = next((name for kind, name in LASTING if isinstance(lasting, kind)), None)
        if lasting is None or kind is None:
            return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
        return jsonify({"status": "unavailable", "redis": kind,
                        "reason": refusal(tracker.settings.redis_url, lasting)}), 503
    except redis.exceptions.NoPermissionError as exc:  # the ACL user lost a command the tracker needs
        return jsonify({"status": "unavailable", "redis": "refused",
                        "reason": refusal(tracker.settings.redis_url, exc)}), 503
    if not intact:
        return jsonify({"status": "unavailable", "redis": "data_lost", "reason": DATA_LOST}), 503
    if cluster is None and (behind := store.sentinel_master()) is not None:
        return jsonify({"status": "ok", "redis": "ok", "sentinel": {"master_name": behind[0], "master": behind[1]}})
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
