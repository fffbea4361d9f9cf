"""The at-risk ranking (keys.RANK_RISK): every customer whose score is under the at-risk threshold, ranked as the
at-risk list ranks them, so a page of that list reads a page of it instead of walking the customers ranked by value
until enough of them turn out to be at risk; and the same customers by their newest answer and by their number of
answers (keys.RISK_RECENT, keys.RISK_RESPONSES), the list's other orders besides the score's own ranked set.

It is kept for one threshold, which its state names (keys.RISK_STATE "threshold"): whatever moves a customer's score,
newest unsatisfied answer or order value queues place_risk.lua after its write, which places the customer from the
ranked sets as they stand then (all in one slot), so the last call has seen every write. A reader uses it only when it
was filled for the reader's own threshold ("built"); otherwise the list walks the value ranking as before, and beat
fills it for the configured threshold (a change of TRACKER_AT_RISK_SCORE included) in one pass.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase

PLACE_KEYS = (keys.RANK_SCORE, keys.RANK_VALUE, keys.RANK_UNHAPPY, keys.RANK_RISK, keys.RISK_STATE,
              keys.RANK_RECENT, keys.RANK_RESPONSES, keys.RISK_RECENT, keys.RISK_RESPONSES)
# The sets a filling fills (RISK_STATE "sets"): a ranking filled when fewer existed is filled again by beat.
RISK_SETS = "value,recent,responses"
# The at-risk customers by each list order besides value (their ranked set's name for store.rank_slice).
RISK_BY_SORT = {"recent": "risk:recent", "responses": "risk:responses"}
PLACE_BATCH = 500  # customers placed by one script call
# A filling that died lets another begin after this (until then readers walk the value ranking); a million
# customers at risk fill in about 15 s.
FILL_LEASE_MS = 120_000
# How far above the threshold a raw score may lie and still round (to 2 decimals) to below it.
ROUNDING = 0.01
UNHAPPY_SCALE = 1e13  # a value-less customer's place is -1 + unhappy ms / UNHAPPY_SCALE: within (-1, 0)


def threshold_text(threshold: float) -> str:
    """Spell a threshold as the ranking's state keeps it."""
    return repr(float(threshold))


def unhappy_place(unhappy_ms: float | None) -> float:
    """Return where a customer at risk without an order value stands in the ranking (as place_risk.lua puts it)."""
    return -1 + unhappy_ms / UNHAPPY_SCALE if unhappy_ms else -1.0


@dataclass(frozen=True)
class RiskView:
    """The at-risk ranking's size, read with a reader's cursor: members in all, members with an order value (the
    top of it), and how many stand before the cursor's place (0 without one)."""

    total: int
    valued: int
    before: int


def queue_place_risk(base: RedisBase, pipe: Any, emails: Sequence[str]) -> None:
    """Queue the placing of customers whose score, unhappy time or order value the pipeline just wrote (after
    those writes: a pipeline keeps its order on the node that holds the ranked sets)."""
    emails = list(dict.fromkeys(emails))
    source = base.script("place_risk").source  # by its source: no SCRIPT EXISTS round trip before the pipeline
    for start in range(0, len(emails), PLACE_BATCH):
        pipe.execute_command("EVAL", source, len(PLACE_KEYS), *PLACE_KEYS, *emails[start:start + PLACE_BATCH])


def place_every_risk(base: RedisBase, threshold: float) -> int:
    """Place every customer that may be at risk: those scoring under the threshold, and those the ranking holds;
    return how many are at risk. What fills the ranking, and what `rebuild-scores` puts right after it."""
    candidates = set(base.redis.zrangebyscore(keys.RANK_SCORE, "-inf", f"({float(threshold) + ROUNDING!r}"))
    for kept in (keys.RANK_RISK, keys.RISK_RECENT, keys.RISK_RESPONSES):
        candidates.update(email for email, _ in base.redis.zscan_iter(kept, count=1000))
    ordered = sorted(candidates)
    at_risk = 0
    step = PLACE_BATCH * 20
    for start in range(0, len(ordered), step):
        pipe = base.redis.pipeline(transaction=False)
        queue_place_risk(base, pipe, ordered[start:start + step])
        at_risk += sum(int(placed) for placed in pipe.execute())
    return at_risk


def kept_threshold(base: RedisBase) -> float | None:
    """Return the threshold the at-risk ranking is kept for (None: not kept yet)."""
    kept = base.redis.hget(keys.RISK_STATE, "threshold")
    return float(kept) if kept else None


def _filled_for(state: Sequence[str | None], threshold: float) -> bool:
    """Say whether a ranking's state ("threshold", "built", "sets") says it is filled for this threshold."""
    kept, built, sets = state
    return kept is not None and kept == built and sets == RISK_SETS and float(kept) == float(threshold)


class RiskRanking(RedisBase):
    """Fill and read the at-risk ranking."""

    def risk_view(self, threshold: float, before: tuple[str, str] | None = None) -> RiskView | None:
        """Return the ranking's size, and how many members score within before ((low, high) as ZCOUNT takes it),
        in one round trip; None when it is not filled for this threshold (the reader walks the value ranking)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.RISK_STATE, "threshold", "built", "sets")
        pipe.zcard(keys.RANK_RISK)
        pipe.zcount(keys.RANK_RISK, "(0", "+inf")
        if before is not None:
            pipe.zcount(keys.RANK_RISK, *before)
        state, total, valued, *counted = pipe.execute()
        if not _filled_for(state, threshold):
            return None
        return RiskView(int(total), int(valued), int(counted[0]) if counted else 0)

    def risk_ranking_ready(self, threshold: float) -> bool:
        """Say whether the at-risk ranking is filled for this threshold (every set of it)."""
        return _filled_for(self.redis.hmget(keys.RISK_STATE, "threshold", "built", "sets"), threshold)

    def keep_risk_ranking(self, threshold: float) -> int | None:
        """Fill the at-risk ranking for this threshold unless it is filled for it (beat, every 30 s); return how
        many customers are at risk when it filled it now, None when there was nothing to do or another process is
        filling it."""
        if self.risk_ranking_ready(threshold):
            return None
        return self.fill_risk_ranking(threshold)

    def fill_risk_ranking(self, threshold: float) -> int | None:
        """Keep the at-risk ranking for this threshold from now on and place every customer that may be at risk
        (those scoring under it, and those the ranking holds) under a lease; return how many are at risk, None when
        another process holds the lease. Writers place by the new threshold from its first step on, so what moves
        meanwhile is placed by them or here, whichever runs last."""
        text = threshold_text(threshold)
        token = secrets.token_hex(8)
        if not self.redis.set(keys.RISK_LEASE, token, nx=True, px=FILL_LEASE_MS):
            return None
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(keys.RISK_STATE, "threshold", text)
            pipe.hdel(keys.RISK_STATE, "built")
            pipe.execute()
            at_risk = place_every_risk(self, threshold)
            self.script("risk_built")(keys=[keys.RISK_STATE], args=[text, RISK_SETS])
            return at_risk
        finally:
            self.script("release_if")(keys=[keys.RISK_LEASE], args=[token])
