"""The one retry backoff: exponential, capped, with jitter so that workers retrying together spread out."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tracker.errors import StorageUnavailable

T = TypeVar("T")

JITTER = 0.5  # each delay is drawn from ±50 % around the exponential step
MAX_RETRY_AFTER_S = 86400.0  # a wait asked beyond a day is read as a day (the give-up age decides then)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before the next of a bounded number of attempts."""

    first_s: float
    cap_s: float
    attempts: int
    factor: float = 2.0

    def delay_s(self, attempt: int) -> float:
        """Return the wait after failed attempt number `attempt` (1 is the first attempt)."""
        step = self.first_s * self.factor ** max(attempt - 1, 0)
        return min(self.cap_s, step * random.uniform(1 - JITTER, 1 + JITTER))

    def gives_up(self, attempt: int) -> bool:
        """Say whether failed attempt number `attempt` was the last one allowed."""
        return attempt >= self.attempts


# Recording what was already done outside (a mail the server took, a note the helpdesk wrote, a notice delivered)
# rides out a Redis restart: about 45 s of tries, then it gives up and the thing may be done again later.
RECORD_RETRY = Backoff(first_s=0.25, cap_s=5.0, attempts=14)


def record_through_outage(record: Callable[[], T], log: logging.Logger, waiting: str, given_up: str,
                          extra: Mapping[str, Any], retry: Backoff = RECORD_RETRY) -> T:
    """Run record, a write that follows something done outside the store, again while Redis is unavailable.

    Each failed try logs `waiting` (a warning) and waits; the last logs `given_up` (an error) and raises the
    StorageUnavailable. Giving up at once would have the outside act done twice: the next try of the task cannot
    know it was done. record must be safe to run again (its first try may have been applied before the outage).
    """
    attempt = 1
    while True:
        try:
            return record()
        except StorageUnavailable:
            if retry.gives_up(attempt):
                log.error(given_up, extra={**extra, "attempt": attempt})
                raise
            log.warning(waiting, extra={**extra, "attempt": attempt})
            time.sleep(retry.delay_s(attempt))
            attempt += 1


def retry_after_s(value: str | None, now_s: float | None = None) -> float | None:
    """Read a Retry-After (delay seconds, or an HTTP date) as seconds from now, within 0 and MAX_RETRY_AFTER_S.

    None when absent or unreadable: a wait no clock can reach (inf, nan, 1e400) is unreadable too, so a
    server's odd answer never becomes a retry that overflows or that waits for ever.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000": a time in UTC whose source zone is unknown (RFC 5322)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now_s is None else now_s)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
