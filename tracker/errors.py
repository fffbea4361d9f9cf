"""Failures every layer may meet and only the outer surfaces (web handlers, CLI, Celery) turn into answers."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """Redis cannot serve the command right now (down, loading, read-only); retrying later may succeed."""
