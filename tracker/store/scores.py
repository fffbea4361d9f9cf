"""Answers and the aggregates they move: written by one script per answer, rebuilt on demand.

The response hash keeps what an answer counted (its Aggregate: value6, satisfied, promoter, detractor,
nps, weight, weighted and its day), so a change or an erasure takes off exactly what was added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import redis

from tracker.model import Aggregate, Answer, Survey
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.surveys import aggregate_ids, survey_to_hash

# (aggregates by (kind, id), each response's own sums by sid: rebuild writes their weights back)
Rebuilt = tuple[dict[tuple[str, str], Aggregate], dict[str, Aggregate]]
# The response fields an answer's sums are read from; a change or an erasure checks them unchanged.
COUNTED = ("rating", "value6", "satisfied", "promoter", "detractor", "nps", "weight", "weighted", "day")
ALIVE = ("n", "sent")  # an aggregate with neither is gone
RESIDUE = (("n", "weight"), ("n", "weighted"))  # float sums set to 0 with their count, as a rebuild has them
SCORE = ("weighted", "weight", "n")  # the ranking's numerator, denominator and count
ATTEMPTS = 20
EXTRA = ("customer", "tkey", "ticket_id", "source", "agent_id", "agent_name", "team", "brand", "channel", "subject")


def pairs_args(items: Iterable[tuple[str, object]]) -> list[object]:
    """Flatten field/value pairs into a script's arguments, their count first."""
    flat: list[object] = []
    for name, value in items:
        flat += [name, repr(value) if isinstance(value, float) else value]
    return [len(flat) // 2, *flat]


def delta_args(delta: Aggregate) -> list[object]:
    ints, floats, daily = delta.increments()
    return [*pairs_args(ints), *pairs_args(floats), *pairs_args(daily)]


def counted_fields(counted: Aggregate) -> dict[str, str]:
    """Return the response fields that keep what one answer counted."""
    ((day, _),) = counted.days.items()
    return {"value6": str(counted.value6), "satisfied": str(counted.satisfied), "promoter": str(counted.promoter),
            "detractor": str(counted.detractor), "nps": str(counted.nps), "weight": repr(counted.weight),
            "weighted": repr(counted.weighted), "day": day}


def answer_of(raw: Mapping[str, str]) -> Answer | None:
    """Read a stored response hash into an Answer; None when there is none."""
    if not raw.get("rating") or not raw.get("sid"):
        return None

    def text(name: str) -> str | None:
        return raw.get(name) or None

    return Answer(sid=raw["sid"], rating=int(raw["rating"]), scale=raw.get("scale", ""), at_ms=int(raw.get("at") or 0),
                  customer=raw.get("customer", ""), counted=Aggregate.from_hash(raw), comment=text("comment"),
                  reason=text("reason"), tkey=text("tkey"), source=text("source"), agent_id=text("agent_id"),
                  agent_name=text("agent_name"), team=text("team"), brand=text("brand"), channel=text("channel"),
                  subject=text("subject"), answered_via=text("answered_via"))


def answer_aggregate_ids(answer: Answer) -> list[tuple[str, str]]:
    """Return the (kind, id) of every aggregate an answer counts towards."""
    return aggregate_ids({"customer": answer.customer, "source": answer.source or "",
                          "agent_id": answer.agent_id or "", "team": answer.team or "", "brand": answer.brand or ""})


class Scores(RedisBase):
    """Record answers and read or rebuild the aggregates."""

    def record_answer(self, survey: Survey, rating: int, comment: str, at_ms: int,
                      counted: Aggregate, reason: str | None = None) -> int:
        """Record the answer once; return 0 unchanged, 1 comment (or reason) changed, 2 rating counted."""
        sid, email, record = survey.sid, survey.customer, survey_to_hash(survey)
        entity_keys: list[str] = []
        index = self.redis.pipeline(transaction=False)
        for kind, ident in aggregate_ids(record):
            entity_keys += [keys.aggregate(kind, ident), keys.daily(kind, ident)]
            index.sadd(keys.index(kind), ident)
        index.hmget(keys.response(sid), *COUNTED)  # the stored answer, read in the same round trip
        read = index.execute()[-1]
        fields = {"sid": sid, "rating": str(rating), **counted_fields(counted), "at": str(at_ms), "comment": comment,
                  "scale": survey.scale, **{f: record.get(f, "") for f in EXTRA}}
        if reason is not None:  # None keeps the reason already given
            fields["reason"] = reason
        for _ in range(ATTEMPTS):
            stored = dict(zip(COUNTED, read, strict=True))
            old = Aggregate.from_hash({k: v for k, v in stored.items() if v}) if stored["rating"] else Aggregate()
            outcome = int(self.script("record_answer")(
                keys=[keys.response(sid), keys.survey(sid), keys.customer(email, "responses"),
                      keys.RESPONSES, keys.customer(email, "profile"), keys.RANK_SCORE, *entity_keys],
                args=[sid, rating, at_ms, comment, reason or "", int(reason is not None), email, *SCORE,
                      *pairs_args((k, v or "") for k, v in stored.items()), *pairs_args(fields.items()),
                      *delta_args(counted - old)]))
            if outcome >= 0:
                return outcome
            read = self.redis.hmget(keys.response(sid), *COUNTED)
        raise RuntimeError(f"the answer to {sid} kept changing while it was recorded")

    def response(self, sid: str) -> Answer | None:
        return answer_of(self.redis.hgetall(keys.response(sid)))

    def aggregate(self, kind: str, ident: str) -> Aggregate:
        ((_, agg),) = self.aggregates(kind, [ident])
        return agg

    def aggregates(self, kind: str, idents: Sequence[str], batch: int = 500) -> list[tuple[str, Aggregate]]:
        """Return (id, aggregate with its daily buckets) for many ids of one kind, in batches."""
        rows: list[tuple[str, Aggregate]] = []
        for start in range(0, len(idents), batch):
            chunk = idents[start:start + batch]
            pipe = self.redis.pipeline(transaction=False)
            for ident in chunk:
                pipe.hgetall(keys.aggregate(kind, ident))
                pipe.hgetall(keys.daily(kind, ident))
            replies = pipe.execute()
            rows += [(ident, Aggregate.from_hash(replies[2 * i], replies[2 * i + 1])) for i, ident in enumerate(chunk)]
        return rows

    def ids(self, kind: str) -> list[str]:
        return sorted(self.redis.smembers(keys.index(kind)))

    def customer_responses(self, email: str, offset: int = 0, limit: int = 50) -> list[Answer]:
        sids = self.redis.zrevrange(keys.customer(email, "responses"), offset, offset + limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.response(sid))
        return [a for raw in pipe.execute() if (a := answer_of(raw))]

    def iter_answers(self, batch: int = 500) -> Iterator[Answer]:
        """Yield every stored answer."""
        for raw in self.iter_hashes(keys.RESPONSES, "resp", batch):
            if answer := answer_of(raw):
                yield answer

    def iter_hashes(self, index_key: str, kind: str, batch: int = 500) -> Iterator[dict[str, str]]:
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
                aggregates, answers = compute()
                old = [k for kind in keys.AGGREGATE_KINDS for k in self._aggregate_keys(kind)]
                pipe.multi()
                if old:
                    pipe.delete(*old)
                for kind in keys.AGGREGATE_KINDS:
                    pipe.delete(keys.index(kind))
                pipe.delete(keys.RANK_SCORE)
                for (kind, ident), agg in aggregates.items():
                    fields, daily = agg.to_hash()
                    pipe.hset(keys.aggregate(kind, ident), mapping=fields)  # type: ignore[arg-type]
                    if daily:
                        pipe.hset(keys.daily(kind, ident), mapping=daily)  # type: ignore[arg-type]
                    pipe.sadd(keys.index(kind), ident)
                    if kind == "customer" and agg.n and agg.weight:
                        pipe.zadd(keys.RANK_SCORE, {ident: agg.weighted / agg.weight})
                for sid, counted in answers.items():
                    pipe.hset(keys.response(sid), mapping={"weight": repr(counted.weight),
                                                           "weighted": repr(counted.weighted)})
                pipe.execute()
                return aggregates, answers
            except redis.WatchError:
                return None

    def _aggregate_keys(self, kind: str) -> list[str]:
        found: list[str] = []
        for ident in self.redis.smembers(keys.index(kind)):
            found += [keys.aggregate(kind, ident), keys.daily(kind, ident)]
        if kind == "overall":
            found += [keys.aggregate("overall", "all"), keys.daily("overall", "all")]
        return found
