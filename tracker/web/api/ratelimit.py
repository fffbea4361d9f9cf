"""Per-key request limits of the leads' API: a fixed one-minute window counted in Redis."""

from __future__ import annotations

import math

from flask import Response

from tracker.config import Settings
from tracker.store import Store
from tracker.web.errors import envelope

WINDOW_MS = 60_000


def over_limit(store: Store, settings: Settings, key_name: str, now_ms: int) -> Response | None:
    """Count a request of key_name; return the 429 answer when it is over the minute's allowance."""
    limit = settings.api_rate_limit
    if limit <= 0:
        return None
    count, left_ms = store.hit_rate(key_name, WINDOW_MS, now_ms)
    if count <= limit:
        return None
    retry_after = max(1, math.ceil(left_ms / 1000))
    return envelope(429, f"This API key is limited to {limit} requests a minute; try again in {retry_after} s.",
                    headers={"Retry-After": str(retry_after), "RateLimit-Limit": str(limit),
                             "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry_after)})
