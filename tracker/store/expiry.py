"""The expiry pass's reads: sent surveys in send order after a stored cursor, and what a notice of each says."""

from __future__ import annotations

from collections.abc import Sequence

from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.survey_codes import expanded

Cursor = tuple[int, str]  # (send time ms, sid): the last sent survey the pass has decided


class Expiries(RedisBase):
    """Walk the SENT index by send time behind a cursor, in pages."""

    def expiry_cursor(self) -> Cursor | None:
        """Return where the expiry pass stands, None before its first run."""
        raw = self.redis.get(keys.EXPIRY_CURSOR)
        if not raw:
            return None
        at, _, sid = raw.partition("|")
        return int(at), sid

    def set_expiry_cursor(self, cursor: Cursor) -> None:
        self.redis.set(keys.EXPIRY_CURSOR, f"{cursor[0]}|{cursor[1]}")

    def sent_after(self, cursor: Cursor, upto_ms: int, limit: int) -> list[Cursor]:
        """Return up to limit sent surveys after cursor (by send time, then sid) sent no later than upto_ms."""
        at, sid = cursor
        found: list[Cursor] = []
        offset = 0
        while len(found) < limit:
            rows = self.redis.zrangebyscore(keys.SENT, at, upto_ms, start=offset, num=limit, withscores=True)
            # Members of one score come in sid order: those up to the cursor's come first, then the rest.
            found += [(int(score), member) for member, score in rows if (int(score), member) > (at, sid)]
            if len(rows) < limit:
                break
            offset += len(rows)
        return found[:limit]

    def surveys_with_names(self, sids: Sequence[str]) -> list[tuple[dict[str, str], str | None]]:
        """Return each survey's hash and its customer's name (two round trips for them all)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.survey(sid))
        records = [expanded(record) for record in pipe.execute()]
        pipe = self.redis.pipeline(transaction=False)
        for record in records:
            pipe.hget(keys.customer(record.get("customer") or "-", "profile"), "name")
        return list(zip(records, pipe.execute(), strict=True)) if records else []
