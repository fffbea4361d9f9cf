"""Score maths: what one answer adds to an aggregate, and the fields read back from the sums.

The decayed score weighs each answer by 2^(-age/half-life) with age measured at query time. All
weights share the factor 2^(-now/half-life), which cancels in a weighted mean, so storing
2^((t - EPOCH)/half-life) per answer gives the same score at any query time, and aggregates
can be kept as running sums updated once per answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tracker.scores.scales import SCALES

EPOCH_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
DAY_MS = 86_400_000
TREND_DAYS = 30


@dataclass(frozen=True)
class Contribution:
    """What one answer adds to every aggregate it counts for."""

    value6: int
    satisfied: int
    promoter: int
    detractor: int
    nps: int
    weight: float
    weighted: float
    day: str


def day_of(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def contribution(scale_name: str, rating: int, at_ms: int, half_life_days: float) -> Contribution:
    """Compute an answer's contribution from its scale, rating and time."""
    scale = SCALES[scale_name]
    value6 = scale.value6(rating)
    nps_class = scale.nps_class(rating)
    weight = 2.0 ** ((at_ms - EPOCH_MS) / (half_life_days * DAY_MS))
    return Contribution(
        value6=value6,
        satisfied=int(scale.satisfied(rating)),
        promoter=int(nps_class == "promoter"),
        detractor=int(nps_class == "detractor"),
        nps=int(nps_class is not None),
        weight=weight,
        weighted=weight * value6 / 6,
        day=day_of(at_ms),
    )


def _pct(part: float, whole: float) -> float | None:
    return round(part * 100 / whole, 2) if whole else None


def trend(daily: Mapping[str, str], now_ms: int) -> float | None:
    """Mean of the last 30 days minus the mean of the 30 before; None when either is empty."""
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    windows = [[0, 0], [0, 0]]  # [count, sum of value6] for recent, earlier
    for back in range(2 * TREND_DAYS):
        day = (today - timedelta(days=back)).isoformat()
        n = int(daily.get(f"{day}:n", 0))
        if n:
            window = windows[back // TREND_DAYS]
            window[0] += n
            window[1] += int(daily.get(f"{day}:v", 0))
    (recent_n, recent_v), (earlier_n, earlier_v) = windows
    if not recent_n or not earlier_n:
        return None
    return round(recent_v / 6 / recent_n - earlier_v / 6 / earlier_n, 2)


def aggregate_fields(agg: Mapping[str, str], daily: Mapping[str, str], now_ms: int) -> dict[str, float | int | None]:
    """Turn stored sums into the score fields of SPEC.md §6; no data gives None, never 0."""
    n = int(agg.get("n", 0))
    sent = int(agg.get("sent", 0))
    weight = float(agg.get("weight", 0) or 0)
    nps_n = int(agg.get("nps", 0))
    return {
        "score": round(float(agg.get("weighted", 0)) / weight, 2) if n and weight > 0 else None,
        "average": round(int(agg.get("value6", 0)) / 6 / n, 2) if n else None,
        "csat": _pct(int(agg.get("satisfied", 0)), n),
        "responses": n,
        "surveys_sent": sent,
        "response_rate": _pct(min(n, sent), sent),
        "trend": trend(daily, now_ms) if n else None,
        "nps": _pct(int(agg.get("promoter", 0)) - int(agg.get("detractor", 0)), nps_n),
    }
