"""Reads behind the leads' listings and summaries, and the per-key request counter of the API."""

from __future__ import annotations

from collections.abc import Iterator

from tracker.model import Answer, Survey
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.scores import answer_of
from tracker.store.surveys import survey_from_hash

BATCH = 500


def _chunks(items: list[str], size: int = BATCH) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Queries(RedisBase):
    """Batched reads across many customers, agents and responses."""

    def customer_emails(self) -> list[str]:
        """Return every known customer (applied events or aggregates), sorted."""
        found = {email for email, _ in self.redis.zscan_iter(keys.CUSTOMERS, count=1000)}
        found.update(self.redis.sscan_iter(keys.index("customer"), count=1000))
        return sorted(found)

    def customer_scores(self, below: float | None = None) -> dict[str, float]:
        """Return customers' decayed scores (those with answers), optionally only those under a bound."""
        high = "+inf" if below is None else f"({below!r}"
        return dict(self.redis.zrangebyscore(keys.RANK_SCORE, "-inf", high, withscores=True))

    def customer_field(self, emails: list[str], part: str, field: str) -> dict[str, str | None]:
        """Return one field of one of each customer's hashes (part "agg" or "profile"), in batches."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(emails, 2000):
            pipe = self.redis.pipeline(transaction=False)
            for email in chunk:
                pipe.hget(keys.customer(email, part), field)
            found.update(zip(chunk, pipe.execute(), strict=True))
        return found

    def order_values(self, emails: list[str]) -> dict[str, int]:
        """Return each customer's live order total in the main currency, in minor units."""
        values: dict[str, int] = {}
        for chunk in _chunks(emails):
            pipe = self.redis.pipeline(transaction=False)
            for email in chunk:
                pipe.smembers(keys.customer(email, "orders"))
            owned = [sorted(o) for o in pipe.execute()]
            pipe = self.redis.pipeline(transaction=False)
            for okeys in owned:
                for okey in okeys:
                    pipe.hmget(keys.order(okey), "status", "total", "refunded", "currency")
            rows = iter(pipe.execute())
            for email, okeys in zip(chunk, owned, strict=True):
                totals: dict[str, int] = {}
                for _ in okeys:
                    status, total, refunded, currency = next(rows)
                    if status is None or status == "cancelled":
                        continue
                    totals[currency] = totals.get(currency, 0) + int(total or 0) - int(refunded or 0)
                values[email] = max(totals.values()) if totals else 0
        return values

    def last_unsatisfied_at(self, emails: list[str], depth: int = 20) -> dict[str, int | None]:
        """Return when each customer last gave an answer that was not satisfied (None: never)."""
        found: dict[str, int | None] = {}
        pending = list(emails)
        offset = 0
        while pending:
            pipe = self.redis.pipeline(transaction=False)
            for email in pending:
                pipe.zrevrange(keys.customer(email, "responses"), offset, offset + depth - 1, withscores=True)
            windows = pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
            for window in windows:
                for sid, _ in window:
                    pipe.hget(keys.response(sid), "satisfied")
            flags = iter(pipe.execute())
            still: list[str] = []
            for email, window in zip(pending, windows, strict=True):
                hit = None
                for _sid, at in window:
                    flag = next(flags)  # the answer's satisfied count, as its scale decided when it was given
                    if flag is not None and not int(flag) and hit is None:
                        hit = int(at)
                if hit is not None or len(window) < depth:
                    found[email] = hit
                else:
                    still.append(email)
            pending, offset = still, offset + depth
        return found

    def first_activity_ms(self) -> int | None:
        """Return the time of the oldest answer or sent survey, None when there is neither."""
        times = [rows[0][1] for rows in (self.redis.zrange(keys.RESPONSES, 0, 0, withscores=True),
                                         self.redis.zrange(keys.SENT, 0, 0, withscores=True)) if rows]
        return int(min(times)) if times else None

    def _window(self, kind: str, min_ms: float | str, max_ms: float | str, newest_first: bool,
                batch: int) -> Iterator[dict[str, str]]:
        """Yield response hashes (kind "resp", by answer time) or sent survey hashes (kind "survey", by send time).

        Pages by score with an offset among equal scores, so batches neither repeat nor skip entries.
        """
        index_key, key_of = (keys.RESPONSES, keys.response) if kind == "resp" else (keys.SENT, keys.survey)
        low, high = min_ms, max_ms
        ties = 0
        while True:
            if newest_first:
                rows = self.redis.zrevrangebyscore(index_key, high, low, start=ties, num=batch, withscores=True)
            else:
                rows = self.redis.zrangebyscore(index_key, low, high, start=ties, num=batch, withscores=True)
            if not rows:
                return
            pipe = self.redis.pipeline(transaction=False)
            for sid, _ in rows:
                pipe.hgetall(key_of(sid))
            yield from (row for row in pipe.execute() if row)
            if len(rows) < batch:
                return
            edge = rows[-1][1]
            same = sum(1 for _, score in rows if score == edge)
            bound = high if newest_first else low
            ties = ties + same if edge == bound else same
            if newest_first:
                high = edge
            else:
                low = edge

    def customer_response_slice(self, email: str, offset: int, count: int) -> tuple[list[tuple[int, Answer]], bool]:
        """Return (position, answer) pairs of a customer's answers from offset, newest first, and whether they end."""
        sids = self.redis.zrevrange(keys.customer(email, "responses"), offset, offset + count - 1)
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.response(sid))
        found = [(offset + i, answer_of(raw)) for i, raw in enumerate(pipe.execute())]
        return [(i, a) for i, a in found if a], len(sids) < count

    def answers_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                        batch: int = BATCH) -> Iterator[Answer]:
        """Yield the answers given in a window of time (ms, or "-inf"/"+inf"), oldest first unless asked."""
        for raw in self._window("resp", min_ms, max_ms, newest_first, batch):
            if answer := answer_of(raw):
                yield answer

    def surveys_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                        batch: int = BATCH) -> Iterator[Survey]:
        """Yield the surveys sent in a window of time (ms, or "-inf"/"+inf"), oldest first unless asked."""
        for raw in self._window("survey", min_ms, max_ms, newest_first, batch):
            if survey := survey_from_hash(raw):
                yield survey
