"""Retention in storage: old surveys, answers and tickets leave; what they counted stays, as retired sums.

A replay carries the retired sums of the install an export came from (tracker.ingest.retired_lines): carry_retired
adds an entity's to its retired and live sums once, a mark in its retired hash (CARRIED) saying it was done.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tracker.model import COUNTS, Aggregate
from tracker.store import keys
from tracker.store.customer_days import KEPT_DAYS, today
from tracker.store.erasure import Removal
from tracker.store.outbox import CARD_COPY, queue_place_risk, write_entity_ranks, write_ranks
from tracker.store.pairs import pairs_args
from tracker.store.rollups import Rollup, is_float_field, reasons_in, rollup_from_hash

CARRIED = "carried"  # a retired hash's field: a replay added the retired sums it carried to the live ones
# One entity's retired sums as stored: (kind, id, the retired hash without CARRIED, its day buckets, and a customer's
# newest answer (sid, ms) when retention deleted it, which their profile still names).
RetiredRow = tuple[str, str, dict[str, str], dict[str, str], tuple[str, int] | None]


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

    def _retired_hashes(self, batch: int, newest: bool = False) -> Iterator[tuple[str, str, dict[str, str],
                                                                                 dict[str, str], list[Any]]]:
        """Yield every entity in the retired index with its retired sums and day buckets as stored, a batch of
        entities a round trip; with newest, a customer's profile fields that say whether retention took its newest
        answer (empty for other kinds)."""
        members = sorted(self.redis.smembers(keys.RETIRED_INDEX))
        for start in range(0, len(members), batch):
            chunk = [tuple(member.split("|", 1)) for member in members[start:start + batch]]
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in chunk:
                pipe.hgetall(keys.retired(kind, ident))
                pipe.hgetall(keys.retired_daily(kind, ident))
                if newest and kind == "customer":
                    pipe.hmget(keys.customer(ident, "profile"), "last_response_sid", "last_response_at", CARD_COPY)
            replies = iter(pipe.execute())
            for kind, ident in chunk:
                sums, daily = next(replies), next(replies)
                yield kind, ident, sums, daily, next(replies) if newest and kind == "customer" else []

    def retired_aggregates(self, batch: int = 500) -> list[tuple[tuple[str, str], Aggregate, Rollup]]:
        """Return every entity's retired sums and retired rollup, which a rebuild adds to what the stored answers
        and surveys give."""
        return [((kind, ident), Aggregate.from_hash(sums, daily), rollup_from_hash(sums))
                for kind, ident, sums, daily, _ in self._retired_hashes(batch) if sums]

    def iter_retired(self, batch: int = 500) -> Iterator[RetiredRow]:
        """Yield every entity's retired sums as stored (RetiredRow), those holding nothing left out."""
        for kind, ident, sums, daily, newest in self._retired_hashes(batch, newest=True):
            sums.pop(CARRIED, None)
            sid, at, copy = newest or (None, None, None)
            left = (sid, int(at)) if sid and at and copy == f"{sid}|" else None  # "<sid>|": the answer left
            if sums or daily:
                yield kind, ident, sums, daily, left

    def first_activity_kept(self) -> int | None:
        """Return the time retention kept of the oldest answer or sent survey before deleting it, None when none."""
        kept = self.redis.get(keys.FIRST_ACTIVITY)
        return None if kept is None else int(kept)

    def carry_first_activity(self, at_ms: int, dry_run: bool = False) -> bool:
        """Keep at_ms as the first activity retention kept, unless an earlier one is kept; say whether it changed
        (or, dry, would)."""
        if dry_run:
            kept = self.first_activity_kept()
            return kept is None or at_ms < kept
        return bool(int(self.script("keep_earliest")(keys=[keys.FIRST_ACTIVITY], args=[at_ms])))

    def carry_retired(self, kind: str, ident: str, sums: Mapping[str, float], rollup: Mapping[str, float],
                      daily: Mapping[str, int], newest: tuple[str, int] | None = None, dry_run: bool = False) -> bool:
        """Add an entity's retired sums carried from another install to its retired sums and to its live sums, day
        buckets and rollup, once (one script in the entity's slot, marked CARRIED), and place it in its index and
        ranked sets. Say whether they were carried now (or, dry, would be): False when they were carried before."""
        retired = keys.retired(kind, ident)
        if dry_run:
            return not self.redis.hexists(retired, CARRIED)
        pipe = self.redis.pipeline(transaction=False)  # index before data
        pipe.sadd(keys.RETIRED_INDEX, f"{kind}|{ident}")
        pipe.sadd(keys.index(kind), ident)
        if reasons := sorted(reasons_in(dict(rollup))):
            pipe.sadd(keys.REASONS, *reasons)
        pipe.execute()
        customer = kind == "customer"
        args = [CARRIED, "1" if customer else "0",
                *pairs_args((name, int(value)) for name, value in sums.items() if name in COUNTS),
                *pairs_args((name, float(value)) for name, value in sums.items() if name not in COUNTS),
                *pairs_args(daily.items()),
                *pairs_args((name, int(value)) for name, value in rollup.items() if not is_float_field(name)),
                *pairs_args((name, float(value)) for name, value in rollup.items() if is_float_field(name))]
        if customer:
            args += [KEPT_DAYS, today(int(time.time() * 1000)), *(newest or ("", ""))]
        names = [retired, keys.retired_daily(kind, ident), keys.aggregate(kind, ident), keys.daily(kind, ident),
                 keys.rollup(kind, ident)]
        carried, n, sent = self.script("carry_retired")(keys=names, args=args)
        self._place_carried(kind, ident, int(n), int(sent))  # again too: a replay that died before it did not
        return bool(int(carried))

    def _place_carried(self, kind: str, ident: str, n: int, sent: int, attempts: int = 10) -> None:
        """Put an entity whose sums a carry moved where its ranked sets want it, and look again: an outbox step
        applied meanwhile may have placed it from what it saw before (its forwarder looks again too)."""
        for _ in range(attempts):
            pipe = self.redis.pipeline(transaction=False)
            if kind == "customer":
                state = self.rank_states([ident])[ident]
                write_ranks(pipe, ident, state)
                queue_place_risk(self, pipe, [ident])
                pipe.execute()
                if self.rank_states([ident])[ident] == state:
                    return
            else:
                write_entity_ranks(pipe, {(kind, ident): n if n > 0 or sent > 0 else None})
                pipe.execute()
                read = self.redis.hmget(keys.aggregate(kind, ident), "n", "sent")
                if (int(read[0] or 0), int(read[1] or 0)) == (n, sent):
                    return
                n, sent = int(read[0] or 0), int(read[1] or 0)
