"""Retention in storage: old surveys, answers and tickets leave; what they counted stays, as retired sums."""

from __future__ import annotations

from collections.abc import Iterable

from tracker.model import Aggregate
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.reminders import reminder_member
from tracker.store.scores import ATTEMPTS, COUNTED, answer_of, delta_args, pairs_args
from tracker.store.surveys import aggregate_ids


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = str(entry_id).partition("-")
    return int(ms), int(seq or 0)


class Retention(RedisBase):
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
            pipe.smembers(keys.customer(email, "tickets"))
        found = pipe.execute()
        return [(email, sorted(set(found[3 * i]) | set(found[3 * i + 1])), sorted(found[3 * i + 2]))
                for i, email in enumerate(emails)]

    def trim_timelines(self, emails: Iterable[str], cutoff_ms: int) -> int:
        """Drop the timeline entries before the cutoff; return how many went."""
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.zremrangebyscore(keys.customer(email, "timeline"), "-inf", f"({cutoff_ms}")
        return sum(pipe.execute())

    def trim_log(self, cutoff_ms: int) -> int:
        """Drop log entries and dead letters appended before the cutoff, but never one not yet applied."""
        floor: tuple[int, int] | None = None  # no consumer group yet: nothing was applied, nothing leaves
        for group in self.redis.xinfo_groups(keys.STREAM) if self.redis.exists(keys.STREAM) else []:
            if group["name"] == keys.GROUP:
                ms, seq = _stream_id(group["last-delivered-id"])
                floor = min((cutoff_ms, 0), (ms, seq + 1))  # entries not yet read stay
                if group["pending"]:  # read but not yet acknowledged stay too
                    floor = min(floor, _stream_id(self.redis.xpending(keys.STREAM, keys.GROUP)["min"]))
        trimmed = 0
        if floor is not None:
            trimmed = int(self.redis.xtrim(keys.STREAM, minid=f"{floor[0]}-{floor[1]}", approximate=False))
        return trimmed + int(self.redis.xtrim(keys.DEAD, minid=cutoff_ms, approximate=False))

    def retire_tickets(self, email: str, tkeys: list[str], cutoff_ms: int) -> int:
        """Delete the customer's tickets untouched since the cutoff and not due for a survey; return how many."""
        pipe = self.redis.pipeline(transaction=False)
        for tkey in tkeys:
            self.script("retire_ticket")(
                keys=[keys.ticket(tkey), keys.ticket_history(tkey), keys.customer(email, "tickets"), keys.DUE],
                args=[tkey, cutoff_ms], client=pipe)
        return sum(int(done) for done in pipe.execute())

    def retire_survey(self, sid: str, email: str, cutoff_ms: int, now_ms: int) -> tuple[int, int, int]:
        """Delete an old, closed survey and its answer, adding what they counted to the retired sums.

        Returns (survey removed, answer removed, sent count retired); all zeros when it is not old enough.
        """
        for _ in range(ATTEMPTS):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(keys.survey(sid))
            pipe.hgetall(keys.response(sid))
            survey, response = pipe.execute()
            if (survey.get("customer") or response.get("customer")) != email:
                return 0, 0, 0
            answered = aggregate_ids(response) if response.get("source") else []
            sent = aggregate_ids(survey) if survey.get("source") else answered
            entity_keys: list[str] = []
            for kind, ident in [*answered, *sent]:
                entity_keys += [keys.retired(kind, ident), keys.retired_daily(kind, ident)]
            answer = answer_of(response)
            sent_ints, _, _ = Aggregate.of_sent().increments()
            result = self.script("retire_survey")(
                keys=[keys.survey(sid), keys.response(sid), keys.RESPONSES, keys.SENT,
                      keys.customer(email, "responses"), keys.customer(email, "surveys"), keys.ERASED, keys.DUE,
                      keys.RETIRED_INDEX, *entity_keys],
                args=[sid, cutoff_ms, now_ms, len(answered), reminder_member(sid),
                      *[f"{kind}|{ident}" for kind, ident in [*answered, *sent]],
                      *pairs_args((f, response.get(f, "")) for f in COUNTED),
                      *delta_args(answer.counted if answer else Aggregate()), *pairs_args(sent_ints)])
            if result == -2:
                return 0, 0, 0
            if result != -1:
                gone, removed, retired = result
                return int(gone), int(removed), int(retired)
        raise RuntimeError(f"the answer to {sid} kept changing while it was retired")

    def retired_aggregates(self, batch: int = 500) -> list[tuple[tuple[str, str], Aggregate]]:
        """Return every entity's retired sums, which a rebuild adds to what the stored answers give."""
        members = sorted(self.redis.smembers(keys.RETIRED_INDEX))
        rows: list[tuple[tuple[str, str], Aggregate]] = []
        for start in range(0, len(members), batch):
            chunk = [tuple(member.split("|", 1)) for member in members[start:start + batch]]
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in chunk:
                pipe.hgetall(keys.retired(kind, ident))
                pipe.hgetall(keys.retired_daily(kind, ident))
            replies = pipe.execute()
            rows += [((kind, ident), Aggregate.from_hash(replies[2 * i], replies[2 * i + 1]))
                     for i, (kind, ident) in enumerate(chunk) if replies[2 * i]]
        return rows
