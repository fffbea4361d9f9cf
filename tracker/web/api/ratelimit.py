"""Per-key request limits of the leads' API: a fixed one-minute window counted in Redis with the key check."""

from __future__ import annotations

import math

from flask import Response

from tracker.config import Settings
from tracker.store.apikeys import KeyCheck
from tracker.web.errors import envelope

WINDOW_MS = 60_000


def rate_window_ms(settings: Settings) -> int:
    """Return the window a key's requests are counted in, or 0 when requests are not limited."""
    return WINDOW_MS if settings.api_rate_limit > 0 else 0


def over_limit(settings: Settings, found: KeyCheck) -> Response | None:
    """Return the 429 answer when a key's counted request is over the minute's allowance."""
    limit = settings.api_rate_limit
    if limit <= 0 or found.requests <= limit:
        return None
    retry_after = max(1, math.ceil(found.left_ms / 1000))
    return envelope(429, f"This API key is limited to {limit} requests a minute; try again in {retry_after} s.",
                    headers={"Retry-After": str(retry_after), "RateLimit-Limit": str(limit),
                             "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry_after)})
