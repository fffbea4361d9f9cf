"""Responses and the aggregates they move: written by one script per answer, rebuilt on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import redis

from tracker.scores.maths import Contribution
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.surveys import aggregate_ids

# (aggregates by (kind, id), daily buckets by (kind, id), response weights by sid)
Rebuilt = tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], dict[str, int]],
                dict[str, tuple[float, float]]]


class Scores(RedisBase):
    """Record answers and read or rebuild the aggregates."""

    def record_answer(self, survey: dict[str, str], rating: int, comment: str, at_ms: int,
                      part: Contribution, reason: str | None = None) -> int:
        """Record the answer once; return 0 unchanged, 1 comment (or reason) changed, 2 rating counted."""
        sid, email = survey["sid"], survey["customer"]
        entity_keys: list[str] = []
        index = self.redis.pipeline(transaction=False)
        for kind, ident in aggregate_ids(survey):
            entity_keys += [keys.aggregate(kind, ident), keys.daily(kind, ident)]
            index.sadd(keys.index(kind), ident)
        index.execute()
        extra = {f: survey.get(f, "") for f in ("customer", "tkey", "ticket_id", "source", "agent_id",
                                                  "agent_name", "team", "brand", "channel", "subject")}
        if reason is not None:  # None keeps the reason already given
            extra["reason"] = reason
        c = asdict(part)
        outcome = int(self.script("record_answer")(
            keys=[keys.response(sid), keys.survey(sid), keys.customer(email, "responses"),
                  keys.RESPONSES, keys.customer(email, "profile"), keys.RANK_SCORE, *entity_keys],
            args=[sid, rating, c["value6"], c["satisfied"], c["promoter"], c["detractor"], c["nps"],
                  repr(c["weight"]), repr(c["weighted"]), c["day"], at_ms, comment, survey["scale"], email,
                  *[x for pair in extra.items() for x in pair]]))
        return outcome

    def response(self, sid: str) -> dict[str, str]:
        return self.redis.hgetall(keys.response(sid))

    def aggregate(self, kind: str, ident: str) -> tuple[dict[str, str], dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.aggregate(kind, ident))
        pipe.hgetall(keys.daily(kind, ident))
        agg, daily = pipe.execute()
        return agg, daily

    def ids(self, kind: str) -> list[str]:
        return sorted(self.redis.smembers(keys.index(kind)))

    def customer_responses(self, email: str, offset: int = 0, limit: int = 50) -> list[dict[str, str]]:
        sids = self.redis.zrevrange(keys.customer(email, "responses"), offset, offset + limit - 1)
        return self._responses(sids)

    def _responses(self, sids: Iterable[str]) -> list[dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.response(sid))
        return [r for r in pipe.execute() if r]

    def iter_hashes(self, index_key: str, kind: str, batch: int = 500) -> Iterable[dict[str, str]]:
        """Yield every response (kind "resp") or survey (kind "survey") listed in an index zset."""
        key_of = keys.response if kind == "resp" else keys.survey
        total = self.redis.zcard(index_key)
        for start in range(0, total, batch):
            pipe = self.redis.pipeline(transaction=False)
            for sid in self.redis.zrange(index_key, start, start + batch - 1):
                pipe.hgetall(key_of(sid))
            yield from (h for h in pipe.execute() if h)

    def rebuild(self, compute: Callable[[], Rebuilt]) -> Rebuilt | None:
        """Replace every aggregate by what compute() derives; None when an answer came in meanwhile."""
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                # WATCH before reading: any answer or send recorded meanwhile aborts the swap.
                pipe.watch(keys.RESPONSES, keys.SENT)
                aggregates, dailies, weights = compute()
                old = [k for kind in keys.AGGREGATE_KINDS for k in self._aggregate_keys(kind)]
                pipe.multi()
                if old:
                    pipe.delete(*old)
                for kind in keys.AGGREGATE_KINDS:
                    pipe.delete(keys.index(kind))
                pipe.delete(keys.RANK_SCORE)
                for (kind, ident), fields in aggregates.items():
                    pipe.hset(keys.aggregate(kind, ident),
                              mapping={k: repr(v) if isinstance(v, float) else v for k, v in fields.items()})
                    pipe.sadd(keys.index(kind), ident)
                    if kind == "customer" and fields.get("n") and fields.get("weight"):
                        pipe.zadd(keys.RANK_SCORE, {ident: fields["weighted"] / fields["weight"]})
                for (kind, ident), fields in dailies.items():
                    if fields:
                        pipe.hset(keys.daily(kind, ident), mapping=dict(fields.items()))  # type: ignore[arg-type]
                for sid, (weight, weighted) in weights.items():
                    pipe.hset(keys.response(sid), mapping={"weight": repr(weight), "weighted": repr(weighted)})
                pipe.execute()
                return (aggregates, dailies, weights)
            except redis.WatchError:
                return None

    def _aggregate_keys(self, kind: str) -> list[str]:
        found: list[str] = []
        for ident in self.redis.smembers(keys.index(kind)):
            found += [keys.aggregate(kind, ident), keys.daily(kind, ident)]
        if kind == "overall":
            found += [keys.aggregate("overall", "all"), keys.daily("overall", "all")]
        return found
