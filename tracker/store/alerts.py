"""The alerts an answer called for, held until a worker has handed them to their deliveries (tracker.alerts.held).

One sorted set, `t:alerts:held`: "<sid>|<rating>" by the time it was held or last sent again. Few members (the
unhappy answers of the last minutes, and those a lost kick left), each removed once its deliveries are queued.
"""

from __future__ import annotations

from tracker.store import keys
from tracker.store.base import RedisBase


def _member(sid: str, rating: int) -> str:
    return f"{sid}|{rating}"


class HeldAlerts(RedisBase):
    """Hold, list, renew and release the alerts answers called for."""

    def hold_alert(self, sid: str, rating: int, now_ms: int) -> None:
        self.redis.zadd(keys.ALERTS_HELD, {_member(sid, rating): now_ms})

    def renew_alert(self, sid: str, rating: int, now_ms: int) -> None:
        """Mark a held alert as sent again now (it waits a while again before the next), unless released since."""
        self.redis.zadd(keys.ALERTS_HELD, {_member(sid, rating): now_ms}, xx=True)

    def release_alert(self, sid: str, rating: int) -> None:
        self.redis.zrem(keys.ALERTS_HELD, _member(sid, rating))

    def alerts_held_before(self, before_ms: int, most: int) -> list[tuple[str, int]]:
        """Return up to most held alerts (sid, rating) held or last sent again before a time, oldest first."""
        held = self.redis.zrangebyscore(keys.ALERTS_HELD, "-inf", before_ms, start=0, num=most)
        found = []
        for member in held:
            sid, _, rating = member.rpartition("|")
            if sid and rating.lstrip("-").isdigit():
                found.append((sid, int(rating)))
        return found
