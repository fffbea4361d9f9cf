"""Survey records, the due set they are sent from, and the per-customer throttle."""

from __future__ import annotations

from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase


def aggregate_ids(record: dict[str, str]) -> list[tuple[str, str]]:
    """Return the (kind, id) of every aggregate a survey counts towards."""
    ids = [("customer", record["customer"]), ("source", record["source"]), ("overall", "all")]
    if record.get("agent_id"):
        ids.append(("agent", f"{record['source']}:{record['agent_id']}"))
    if record.get("team"):
        ids.append(("team", record["team"]))
    if record.get("brand"):
        ids.append(("brand", record["brand"]))
    return ids


class Surveys(RedisBase):
    """Create, send-mark, skip and look up surveys."""

    def claim_due(self, now_ms: int, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        """Lease up to limit due tickets; return the lease score and their keys."""
        until = now_ms + lease_ms
        claimed = self.script("claim_due")(keys=[keys.DUE], args=[now_ms, until, limit])
        return until, list(claimed)

    def due_count(self, now_ms: int) -> int:
        return int(self.redis.zcount(keys.DUE, "-inf", now_ms))

    def due_at(self, tkey: str) -> float | None:
        return self.redis.zscore(keys.DUE, tkey)

    def oldest_due(self) -> float | None:
        first = self.redis.zrange(keys.DUE, 0, 0, withscores=True)
        return first[0][1] if first else None

    def reschedule(self, tkey: str, claimed: int, at_ms: int) -> bool:
        return bool(self.script("reschedule_due")(keys=[keys.DUE], args=[tkey, claimed, at_ms]))

    def survey(self, sid: str) -> dict[str, str]:
        return self.redis.hgetall(keys.survey(sid))

    def create_survey(self, sid: str, fields: dict[str, Any]) -> dict[str, str]:
        """Create the survey record once (later calls keep the first) and count an attempt."""
        pipe = self.redis.pipeline(transaction=True)
        for name, value in fields.items():
            pipe.hsetnx(keys.survey(sid), name, "" if value is None else str(value))
        pipe.hincrby(keys.survey(sid), "attempts", 1)
        pipe.hgetall(keys.survey(sid))
        return pipe.execute()[-1]

    def note_failure(self, sid: str, error: str, next_at_ms: int | None) -> None:
        mapping: dict[str | bytes, str] = {"error": error[:200]}
        if next_at_ms is not None:
            mapping["next_attempt_at"] = str(next_at_ms)
        self.redis.hset(keys.survey(sid), mapping=mapping)

    def suppress(self, email: str) -> None:
        self.redis.sadd(keys.SUPPRESSED, email)

    def unsuppress(self, email: str) -> bool:
        return bool(self.redis.srem(keys.SUPPRESSED, email))

    def suppressed(self) -> list[str]:
        return sorted(self.redis.smembers(keys.SUPPRESSED))

    def is_suppressed(self, email: str) -> bool:
        return bool(self.redis.sismember(keys.SUPPRESSED, email))

    def reserve_throttle(self, email: str, sid: str, window_ms: int) -> str:
        """Hold the customer's survey slot for sid; return the sid holding it (sid when won)."""
        return str(self.script("reserve_throttle")(
            keys=[keys.customer(email, "throttle")], args=[sid, window_ms]))

    def release_throttle(self, email: str, sid: str) -> None:
        self.script("release_if")(keys=[keys.customer(email, "throttle")], args=[sid])

    def mark_sent(self, record: dict[str, str], sent_ms: int, expires_ms: int, claimed: int) -> bool:
        ids = aggregate_ids(record)
        # Index first: an index entry without data is harmless, data missing from the index is not.
        index = self.redis.pipeline(transaction=False)
        for kind, ident in ids:
            index.sadd(keys.index(kind), ident)
        index.execute()
        agg = [keys.aggregate(kind, ident) for kind, ident in ids]
        return bool(self.script("mark_sent")(
            keys=[keys.survey(record["sid"]), keys.surveyed(record["tkey"]), keys.DUE, keys.SENT,
                  keys.customer(record["customer"], "surveys"), *agg],
            args=[record["sid"], sent_ms, expires_ms, record["tkey"], claimed]))

    def finish_due(self, tkey: str, claimed: int, sid: str, email: str, status: str, reason: str,
                   at_ms: int, extra: dict[str, Any] | None = None) -> None:
        """Record a skip or failure on the survey (once) and drop the due entry it came from."""
        flat = [str(x) for pair in (extra or {}).items() for x in pair]
        self.script("finish_due")(
            keys=[keys.survey(sid), keys.DUE, keys.STATS, keys.customer(email, "surveys")],
            args=[tkey, claimed, status, reason, at_ms, sid, *flat])

    def drop_due(self, tkey: str, claimed: int) -> None:
        self.script("drop_due")(keys=[keys.DUE], args=[tkey, claimed])

    def unsubscribe(self, email: str, at_ms: int) -> None:
        self.redis.hset(keys.customer(email, "profile"), mapping={"unsubscribed": str(at_ms)})

    def customer_surveys(self, email: str, limit: int = 100) -> list[dict[str, str]]:
        sids = self.redis.zrevrange(keys.customer(email, "surveys"), 0, limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.survey(sid))
        return [s for s in pipe.execute() if s]

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(keys.STATS).items()}
