"""Score maths: the SPEC §6 numbers read back from an Aggregate's sums (the sums themselves: tracker.model)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache

from tracker.model import DAY_MS, DECAY_EPOCH_MS, TREND_DAYS, Aggregate, ScoreCard, day_of

EPOCH_MS = DECAY_EPOCH_MS
__all__ = ["DAY_MS", "EPOCH_MS", "TREND_DAYS", "day_of", "score_card", "trend"]


def _pct(part: float, whole: float) -> float | None:
    return round(part * 100 / whole, 2) if whole else None


@lru_cache(maxsize=4)
def _trend_bounds(today_index: int) -> tuple[str, str, str]:
    """Name the days a trend on this UTC day (days since 1970) looks at: the first of the last 30 (today
    included), the first of the 30 before, and today."""
    today = date(1970, 1, 1) + timedelta(days=today_index)
    return ((today - timedelta(days=TREND_DAYS - 1)).isoformat(),
            (today - timedelta(days=2 * TREND_DAYS - 1)).isoformat(), today.isoformat())


def trend(days: Mapping[str, tuple[int, int]], now_ms: int) -> float | None:
    """Mean of the last 30 days minus the mean of the 30 before; None when either is empty.

    Days are named as date.isoformat names them ("2026-11-30"), which sort as the days do: each day held is
    put in its window by comparing names, the cost of the days held rather than of the 60 looked at."""
    recent_from, earlier_from, today = _trend_bounds(now_ms // DAY_MS)
    recent_n = recent_v = earlier_n = earlier_v = 0
    for day, (n, value6) in days.items():
        if not n or len(day) != 10 or day > today or day < earlier_from:
            continue
        if day >= recent_from:
            recent_n += n
            recent_v += value6
        else:
            earlier_n += n
            earlier_v += value6
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
