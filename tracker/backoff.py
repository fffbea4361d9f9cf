"""The one retry backoff: exponential, capped, with jitter so that workers retrying together spread out."""

from __future__ import annotations

import random
from dataclasses import dataclass

JITTER = 0.5  # each delay is drawn from ±50 % around the exponential step


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
