"""Operational counters and the reads behind /metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from tracker.store import keys
from tracker.store.base import RedisBase


@dataclass(frozen=True)
class MetricCounts:
    """The counters and set sizes /metrics shows, read in one round trip."""

    received: Mapping[str, int]  # "<source>|<outcome>" -> deliveries
    stats: Mapping[str, int]  # "<status>:<reason>" -> surveys skipped or failed
    sent: int
    answers: int
    customers: int
    dead: int
    oldest_due_ms: float | None


class Metrics(RedisBase):
    """Count webhook deliveries and read every number /metrics shows in one round trip."""

    def count_received(self, source: str, status: str) -> None:
        """Count a delivery refused or ignored before the log (appends count themselves) in the source's shard."""
        self.redis.hincrby(keys.received(keys.bucket_of(source)), f"{source}|{status}", 1)

    def metric_counts(self) -> MetricCounts:
        """Return the received, survey and answer counters, set sizes and the oldest due time."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(keys.BUCKETS):  # each shard counts the deliveries whose id (or source) falls in it
            pipe.hgetall(keys.received(shard))
        pipe.hgetall(keys.STATS)
        pipe.hgetall(keys.ERASED)
        pipe.hget(keys.time_index_state("sent"), "count")
        pipe.hget(keys.time_index_state("resp"), "count")
        pipe.zcard(keys.CUSTOMERS)
        pipe.xlen(keys.DEAD)
        due_sets = keys.due_sets()
        for due_set in due_sets:  # the oldest due entry (or lease) over every due set
            pipe.zrange(due_set, 0, 0, withscores=True)
        replies = pipe.execute()
        *shards, stats, erased, sent, answers, customers, dead = replies[:-len(due_sets)]
        oldest = min((rows[0][1] for rows in replies[-len(due_sets):] if rows), default=None)
        received: Counter[str] = Counter()
        for counts in shards:
            received.update({k: int(v) for k, v in counts.items()})
        return MetricCounts(received=dict(received),
                            stats={k: int(v) for k, v in stats.items()},
                            sent=int(sent or 0) + int(erased.get("sent", 0)),
                            answers=int(answers or 0) + int(erased.get("answers", 0)),
                            customers=customers, dead=dead,
                            oldest_due_ms=oldest)
