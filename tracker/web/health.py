"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from tracker.store import StorageError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """Say the process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    """Say whether Redis answers; 503 when it does not."""
    try:
        current_app.extensions["tracker"].store.ping()
    except StorageError:
        return jsonify({"status": "unavailable", "redis": "unreachable"}), 503
    return jsonify({"status": "ok", "redis": "ok"})
