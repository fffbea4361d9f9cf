"""Retention in storage: old surveys, answers and tickets leave; what they counted stays, as retired sums."""

from __future__ import annotations

from collections.abc import Iterable

from tracker.model import Aggregate
from tracker.store import keys
from tracker.store.erasure import Removal
from tracker.store.rollups import Rollup, rollup_from_hash


class Retention(Removal):
    """Find a batch of customers' old records and retire them one by one, each step safe to repeat."""

    def take_retention_lease(self, holder: str, ttl_ms: int) -> bool:
        """Hold the one retention sweep for ttl_ms; say whether this holder got it."""
        return bool(self.redis.set(keys.RETENTION_LEASE, holder, nx=True, px=ttl_ms))

    def end_retention_lease(self, holder: str) -> None:
        self.script("release_if")(keys=[keys.RETENTION_LEASE], args=[holder])

    def retention_cursor(self) -> int:
        return int(self.redis.get(keys.RETENTION_CURSOR) or 0)

    def save_retention_cursor(self, cursor: int) -> None:
        self.redis.set(keys.RETENTION_CURSOR, str(cursor))

    def customers_batch(self, cursor: int, count: int) -> tuple[int, list[str]]:
        """Return the next batch of customers from a scan cursor (0 starts, and ends, a full pass)."""
        following, scored = self.redis.zscan(keys.CUSTOMERS, cursor, count=count)
        return int(following), sorted({email for email, _ in scored})

    def old_records(self, emails: list[str], cutoff_ms: int) -> list[tuple[str, list[str], list[str]]]:
        """Return (email, survey ids with something before the cutoff, ticket keys) for each customer."""
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.zrangebyscore(keys.customer(email, "surveys"), "-inf", f"({cutoff_ms}")
            pipe.zrangebyscore(keys.customer(email, "responses"), "-inf", f"({cutoff_ms}")
            pipe.zrange(keys.customer(email, "tickets"), 0, -1)
        found = pipe.execute()
        return [(email, sorted(set(found[3 * i]) | set(found[3 * i + 1])), sorted(found[3 * i + 2]))
                for i, email in enumerate(emails)]

    def trim_timelines(self, emails: Iterable[str], cutoff_ms: int) -> int:
        """Drop the timeline entries before the cutoff; return how many went."""
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.zremrangebyscore(keys.customer(email, "timeline"), "-inf", f"({cutoff_ms}")
        return sum(pipe.execute())

    def retire_tickets(self, email: str, tkeys: list[str], cutoff_ms: int) -> int:
        """Delete the customer's tickets untouched since the cutoff and not due for a survey; return how many."""
        pipe = self.redis.pipeline(transaction=False)
        for tkey in tkeys:
            self.script("retire_ticket")(keys=[keys.ticket(tkey), keys.ticket_history(tkey), keys.due_of(tkey)],
                                         args=[tkey, cutoff_ms], client=pipe)
        outcomes = [int(done) for done in pipe.execute()]
        # The customer's list of tickets is in the customer's slot: it forgets the deleted and the missing.
        forget = [tkey for tkey, done in zip(tkeys, outcomes, strict=True) if done != 0]
        if forget:
            self.redis.zrem(keys.customer(email, "tickets"), *forget)
        return sum(1 for done in outcomes if done == 1)

    def retire_survey(self, sid: str, email: str, cutoff_ms: int, now_ms: int) -> tuple[int, int, int]:
        """Delete an old, closed survey and its answer, adding what they counted to the retired sums.

        Returns (survey removed, answer removed, sent count retired); all zeros when it is not old enough.
        """
        return self.leave_survey(sid, email, "retire", cutoff_ms, now_ms) or (0, 0, 0)

    def retired_aggregates(self, batch: int = 500) -> list[tuple[tuple[str, str], Aggregate, Rollup]]:
        """Return every entity's retired sums and retired rollup, which a rebuild adds to what the stored answers
        and surveys give."""
        members = sorted(self.redis.smembers(keys.RETIRED_INDEX))
        rows: list[tuple[tuple[str, str], Aggregate, Rollup]] = []
        for start in range(0, len(members), batch):
            chunk = [tuple(member.split("|", 1)) for member in members[start:start + batch]]
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in chunk:
                pipe.hgetall(keys.retired(kind, ident))
                pipe.hgetall(keys.retired_daily(kind, ident))
            replies = pipe.execute()
            rows += [((kind, ident), Aggregate.from_hash(replies[2 * i], replies[2 * i + 1]),
                      rollup_from_hash(replies[2 * i]))
                     for i, (kind, ident) in enumerate(chunk) if replies[2 * i]]
        return rows
