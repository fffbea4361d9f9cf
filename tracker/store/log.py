"""The event log: a Redis Stream appended to by the receiver and drained by a consumer group."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import redis

from tracker.events import event_record
from tracker.model import Event
from tracker.store import keys
from tracker.store.base import RedisBase

DEDUPE_TTL = 7 * 86400  # longer than any vendor's retry schedule
KICK_TTL_MS = 1000


def _payload(record: dict[str, Any]) -> str:
    """Serialise a log record compactly and with sorted keys, so that one event is always one string."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


class LogLag(NamedTuple):
    """The event log's backlog: entries held, read but unacknowledged, and not yet read."""

    length: int
    pending: int
    lag: int


class EventLog(RedisBase):
    """Append deliveries, read batches for a consumer, acknowledge, and reclaim stuck entries."""

    def append_delivery(self, delivery_id: str, events: Iterable[Event], source: str = "replay") -> int:
        """Store a delivery's events unless it was seen; return -1 duplicate, 1 kick a drain, 0 not."""
        payloads = [_payload(event_record(event)) for event in events]
        return int(self.script("append_delivery")(
            keys=[keys.seen(0, delivery_id), keys.STREAM, keys.KICK, keys.RECEIVED],
            args=[DEDUPE_TTL, KICK_TTL_MS, source, *payloads]))

    def known_delivery(self, delivery_id: str, source: str) -> bool:
        """Say whether a delivery was appended already, counting it as a duplicate when it was (one round trip)."""
        # Only a shortcut for retries: a delivery that races past it is still deduplicated by append_delivery.
        return bool(self.script("count_if_seen")(keys=[keys.seen(0, delivery_id), keys.RECEIVED], args=[source]))

    def delivered(self, delivery_id: str) -> bool:
        """Say whether a delivery was seen within the dedupe window."""
        return bool(self.redis.exists(keys.seen(0, delivery_id)))

    def iter_log(self, batch: int = 500) -> Iterator[str]:
        """Yield every record in the event log, oldest first."""
        start = "-"
        while True:
            entries = self.redis.xrange(keys.STREAM, min=start, count=batch)
            for _entry_id, fields in entries:
                if fields.get("e"):
                    yield fields["e"]
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0]

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_batch(self, consumer: str, count: int) -> list[tuple[str, str]]:
        """Read up to count new entries for this consumer; they stay pending until acked."""
        try:
            reply = self.redis.xreadgroup(keys.GROUP, consumer, {keys.STREAM: ">"}, count=count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            reply = self.redis.xreadgroup(keys.GROUP, consumer, {keys.STREAM: ">"}, count=count)
        return [(entry_id, fields.get("e", "")) for _stream, entries in reply or [] for entry_id, fields in entries]

    def claim_stuck(self, consumer: str, min_idle_ms: int, count: int) -> list[tuple[str, str, int]]:
        """Take over entries a dead consumer left pending; return (id, record, times delivered)."""
        try:
            _next, entries, _deleted = self.redis.xautoclaim(
                keys.STREAM, keys.GROUP, consumer, min_idle_ms, "0-0", count=count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            return []
        if not entries:
            return []
        ids = [entry_id for entry_id, _ in entries]
        delivered = {p["message_id"]: p["times_delivered"] for p in self.redis.xpending_range(
            keys.STREAM, keys.GROUP, min=ids[0], max=ids[-1], count=len(ids) + 10, consumername=consumer)}
        return [(entry_id, (fields or {}).get("e", ""), delivered.get(entry_id, 1)) for entry_id, fields in entries]

    def ack(self, entry_ids: list[str]) -> None:
        if entry_ids:
            self.redis.xack(keys.STREAM, keys.GROUP, *entry_ids)

    def dead_letter(self, entry_id: str, payload: str, reason: str) -> None:
        """Park an entry that cannot be applied, keep it for inspection and replay, and ack it."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(keys.DEAD, {"e": payload, "origin": entry_id, "reason": reason[:200]})
        pipe.xack(keys.STREAM, keys.GROUP, entry_id)
        pipe.execute()

    def release_kick(self) -> None:
        self.redis.delete(keys.KICK)

    def lag(self) -> LogLag:
        """Return how many entries the log holds and how many wait unread and unacknowledged."""
        try:
            groups = self.redis.xinfo_groups(keys.STREAM)
        except redis.ResponseError:
            return LogLag(0, 0, 0)  # no consumer group yet: nothing has been read
        ours = [g for g in groups if g["name"] == keys.GROUP]
        pending, lag = (int(ours[0].get("pending") or 0), int(ours[0].get("lag") or 0)) if ours else (0, 0)
        return LogLag(int(self.redis.xlen(keys.STREAM)), pending, lag)
