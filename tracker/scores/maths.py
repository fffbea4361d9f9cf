"""Score maths: the SPEC §6 numbers read back from an Aggregate's sums (the sums themselves: tracker.model)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from tracker.model import DAY_MS, DECAY_EPOCH_MS, Aggregate, ScoreCard, day_of

EPOCH_MS = DECAY_EPOCH_MS
TREND_DAYS = 30
__all__ = ["DAY_MS", "EPOCH_MS", "TREND_DAYS", "day_of", "score_card", "trend"]


def _pct(part: float, whole: float) -> float | None:
    return round(part * 100 / whole, 2) if whole else None


@lru_cache(maxsize=4)
def _trend_days(today: date) -> tuple[str, ...]:
    """Name the days a trend on this UTC day looks at, newest first: the last 30, then the 30 before."""
    return tuple((today - timedelta(days=back)).isoformat() for back in range(2 * TREND_DAYS))


def trend(days: Mapping[str, tuple[int, int]], now_ms: int) -> float | None:
    """Mean of the last 30 days minus the mean of the 30 before; None when either is empty."""
    windows = [[0, 0], [0, 0]]  # [count, sum of value6] for recent, earlier
    for back, day in enumerate(_trend_days(datetime.fromtimestamp(now_ms / 1000, tz=UTC).date())):
        n, value6 = days.get(day, (0, 0))
        if n:
            window = windows[back // TREND_DAYS]
            window[0] += n
            window[1] += value6
    (recent_n, recent_v), (earlier_n, earlier_v) = windows
    if not recent_n or not earlier_n:
        return None
    return round(recent_v / 6 / recent_n - earlier_v / 6 / earlier_n, 2)


def score_card(ident: str, agg: Aggregate, now_ms: int, name: str | None = None) -> ScoreCard:
    """Turn stored sums into the score fields of SPEC.md §6; no data gives None, never 0."""
    n, sent = agg.n, agg.sent
    return ScoreCard(
        id=ident,
        name=name,
        score=round(agg.weighted / agg.weight, 2) if n and agg.weight > 0 else None,
        average=round(agg.value6 / 6 / n, 2) if n else None,
        csat=_pct(agg.satisfied, n),
        responses=n,
        surveys_sent=sent,
        response_rate=_pct(min(n, sent), sent),
        trend=trend(agg.days, now_ms) if n else None,
        nps=_pct(agg.promoter - agg.detractor, agg.nps),
    )
