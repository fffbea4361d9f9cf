"""The alerts answers called for, held until a worker has handed them to their deliveries (tracker.alerts.held).

One sorted set per survey bucket, `t:{s<b>}:alerts:held`: "<sid>|<rating>" by the time it was held or last sent
again. record_answer.lua holds an alert in the same script that records its answer (Scores.record_answer), so a web
process killed between the two cannot lose it. Few members (the unhappy answers of the last minutes, and those a
lost kick left), each removed once its deliveries are queued.
"""

from __future__ import annotations

from tracker.store import keys
from tracker.store.base import RedisBase


def held_member(sid: str, rating: int) -> str:
    """Name an alert in its bucket's held set."""
    return f"{sid}|{rating}"


def _held_sets() -> list[str]:
    return [keys.alerts_held(bucket) for bucket in range(keys.BUCKETS)] + [keys.ALERTS_HELD_BEFORE]


class HeldAlerts(RedisBase):
    """List, renew and release the alerts answers called for (record_answer.lua holds them)."""

    def renew_alert(self, sid: str, rating: int, now_ms: int) -> None:
        """Mark a held alert as sent again now (it waits a while again before the next), unless released since."""
        member = held_member(sid, rating)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.alerts_held(keys.bucket_of(sid)), {member: now_ms}, xx=True)
        pipe.zadd(keys.ALERTS_HELD_BEFORE, {member: now_ms}, xx=True)
        pipe.execute()

    def take_alert(self, sid: str, rating: int, token: str, ttl_ms: int) -> bool:
        """Claim a held alert for ttl_ms under token, for the one task that queues its deliveries (the same token
        takes it again: a task's retry, a reply lost); False when it is held no more (its deliveries were queued and
        it was released) or another token claimed it meanwhile."""
        member, bucket = held_member(sid, rating), keys.bucket_of(sid)
        claim = keys.alert_claim(bucket, member)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(keys.alerts_held(bucket), member)
        pipe.zscore(keys.ALERTS_HELD_BEFORE, member)
        if all(score is None for score in pipe.execute()):
            return False
        return bool(self.redis.set(claim, token, nx=True, px=ttl_ms)) or self.redis.get(claim) == token

    def release_alert(self, sid: str, rating: int) -> None:
        member = held_member(sid, rating)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(keys.alerts_held(keys.bucket_of(sid)), member)
        pipe.zrem(keys.ALERTS_HELD_BEFORE, member)
        pipe.execute()

    def alerts_held_before(self, before_ms: int, most: int) -> list[tuple[str, int]]:
        """Return up to most held alerts (sid, rating) held or last sent again before a time, oldest first."""
        pipe = self.redis.pipeline(transaction=False)
        for name in _held_sets():
            pipe.zrangebyscore(name, "-inf", before_ms, start=0, num=most, withscores=True)
        held = sorted((score, member) for found in pipe.execute() for member, score in found)
        alerts = []
        for _, member in held[:most]:
            sid, _, rating = member.rpartition("|")
            if sid and rating.lstrip("-").isdigit():
                alerts.append((sid, int(rating)))
        return alerts
