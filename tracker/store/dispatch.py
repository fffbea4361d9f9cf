"""Notice dispatch state: per notice bucket a lease, per (bucket, target) a cursor and a retry state, and the
records of the newest delivery attempts.

Every command and script touches one notice bucket (`{n<b>}`): the stream, the lease, the cursors and the records
of a bucket share its hash tag, so the dispatcher's steps are single-slot on a Redis Cluster.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase

START = "0-0"  # the cursor of a target that has passed nothing in a bucket yet
PAGE = 200  # delivery records read per bucket and round trip when listing


@dataclass(frozen=True)
class RetryState:
    """A target's notice waiting to be tried again: its entry, attempts so far, first attempt and next one (ms)."""

    entry: str
    attempts: int
    first_ms: int
    next_ms: int

    def json(self) -> str:
        return json.dumps({"entry": self.entry, "attempts": self.attempts, "first_ms": self.first_ms,
                           "next_ms": self.next_ms}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RetryState:
        raw = json.loads(text)
        return cls(str(raw["entry"]), int(raw["attempts"]), int(raw["first_ms"]), int(raw["next_ms"]))


@dataclass(frozen=True)
class DispatchState:
    """Where every target stands in one bucket: cursors and retry states by target name."""

    cursors: Mapping[str, str]
    retries: Mapping[str, RetryState]

    def cursor(self, target: str) -> str:
        return self.cursors.get(target, START)


def _record_keys(bucket: int) -> list[str]:
    return [keys.dispatch_lease(bucket), keys.dispatch_cursors(bucket), keys.dispatch_retries(bucket),
            keys.deliveries(bucket), keys.delivery_seq(bucket), keys.delivery_counts(bucket),
            keys.dispatch_recorded(bucket)]


def delivery_bucket(delivery_id: str) -> int | None:
    """Return the bucket a delivery id ("d<bucket>.<seq>") names, or None when it is not one."""
    head, dot, seq = delivery_id.partition(".")
    if not (dot and head.startswith("d") and head[1:].isdigit() and seq.isdigit() and seq.isascii()):
        return None
    bucket = int(head[1:])
    return bucket if bucket < keys.BUCKETS else None


class Dispatch(RedisBase):
    """Lease the notice buckets, keep each target's place and retries, record and list delivery attempts."""

    # The lease and the state ---------------------------------------------------------------------------------

    def take_dispatch_lease(self, bucket: int, token: str, ttl_ms: int) -> bool:
        """Become the one dispatcher of a bucket for ttl_ms; say whether this token got it."""
        return bool(self.redis.set(keys.dispatch_lease(bucket), token, nx=True, px=ttl_ms))

    def release_dispatch_lease(self, bucket: int, token: str) -> None:
        self.script("release_if")(keys=[keys.dispatch_lease(bucket)], args=[token])

    def dispatch_state(self, bucket: int) -> DispatchState:
        """Return every target's cursor and retry state in a bucket (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.dispatch_cursors(bucket))
        pipe.hgetall(keys.dispatch_retries(bucket))
        cursors, retries = pipe.execute()
        return DispatchState(dict(cursors), {name: RetryState.from_json(raw) for name, raw in retries.items()})

    def buckets_with_notices(self, buckets: Sequence[int], targets: Sequence[str]) -> list[int]:
        """Return the buckets where a named target has a notice after its cursor, or a retry waits (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.xrevrange(keys.notices(bucket), count=1)
            pipe.hgetall(keys.dispatch_cursors(bucket))
            pipe.hkeys(keys.dispatch_retries(bucket))
        replies = pipe.execute()
        found = []
        for bucket, newest, cursors, retries in zip(buckets, replies[0::3], replies[1::3], replies[2::3],
                                                    strict=True):
            ahead = bool(newest) and any(_after(newest[0][0], cursors.get(name, START)) for name in targets)
            if ahead or set(retries) & set(targets):
                found.append(bucket)
        return found

    def read_notices(self, bucket: int, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Return up to count notice entries of a bucket after the given entry id."""
        entries = self.redis.xrange(keys.notices(bucket), min=f"({after}", count=count)
        return [(entry_id, dict(fields)) for entry_id, fields in entries]

    def notice_entry(self, bucket: int, entry_id: str) -> dict[str, str] | None:
        """Return one notice entry's fields, or None when the stream no longer holds it."""
        entries = self.redis.xrange(keys.notices(bucket), min=entry_id, max=entry_id)
        return dict(entries[0][1]) if entries else None

    def record_delivery(self, bucket: int, token: str, ttl_ms: int, target: str, mode: str, entry: str,
                        record: Mapping[str, Any] | None = None, retry: RetryState | None = None,
                        attempt: str = "") -> tuple[str, bool]:
        """Record an attempt (if given) and move the target on: mode "pass" (cursor past entry), "retry" or "none".

        Returns (the delivery id or "", whether the lease was still held). Without a token (a redelivery) nothing
        moves. A dispatcher that lost its lease records the attempt it made and moves nothing. attempt: a token
        naming this attempt, so that recording it again (its first call applied, the reply lost) returns the first
        record's id and writes none (tracker.backoff.record_through_outage).
        """
        body = json.dumps(dict(record), separators=(",", ":"), ensure_ascii=False) if record else ""
        status = str(record.get("status", "")) if record else ""
        delivery_id, held = self.script("dispatch_record")(
            keys=_record_keys(bucket),
            args=[token, ttl_ms, target, mode, entry, retry.json() if retry else "", body, status,
                  keys.DELIVERIES_KEPT, bucket, attempt])
        return str(delivery_id), bool(int(held))

    def note_behind(self, bucket: int, oldest: Mapping[str, int]) -> None:
        """Keep, per target, the time of its oldest notice in the bucket not passed yet (none: caught up)."""
        pipe = self.redis.pipeline(transaction=True)  # one slot: the bucket's
        pipe.delete(keys.dispatch_behind(bucket))
        if oldest:
            pipe.hset(keys.dispatch_behind(bucket), mapping={name: str(at) for name, at in oldest.items()})
        pipe.execute()

    def trim_notices(self, buckets: Iterable[int], cutoff_ms: int, targets: Sequence[str]) -> int:
        """Drop the buckets' notices older than cutoff_ms that every named target has passed; return how many left
        (one round trip, a script per bucket)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            self.script("dispatch_trim")(keys=[keys.notices(bucket), keys.dispatch_cursors(bucket)],
                                         args=[cutoff_ms, *targets], client=pipe)
        return sum(int(n) for n in pipe.execute())

    # Reading the records -------------------------------------------------------------------------------------

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        """Return one delivery record by id, or None when it is unknown (or no longer kept)."""
        bucket = delivery_bucket(delivery_id)
        if bucket is None:
            return None
        for record in self._bucket_records(bucket, lambda _record: True):
            if record.get("id") == delivery_id:
                return record
        return None

    def list_deliveries(self, limit: int, matches: Callable[[dict[str, Any]], bool],
                        buckets: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Return up to limit delivery records that match, newest first, over the given buckets (default all)."""
        chosen = range(keys.BUCKETS) if buckets is None else buckets
        merged = heapq.merge(*(self._bucket_records(b, matches) for b in chosen), key=_newest_first)
        found: list[dict[str, Any]] = []
        for record in merged:
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def _bucket_records(self, bucket: int, matches: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
        """Yield a bucket's records that match, newest first, a page a round trip."""
        start = 0
        while start < keys.DELIVERIES_KEPT:
            page = self.redis.lrange(keys.deliveries(bucket), start, start + PAGE - 1)
            for raw in page:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and matches(record):
                    yield record
            if len(page) < PAGE:
                return
            start += PAGE

    def erase_deliveries(self, email: str) -> int:
        """Delete the delivery records of a customer's notices (GDPR erasure: they name the customer); return how
        many. Each goes by its exact value (LREM), so a record the dispatcher adds meanwhile is never lost."""
        email = email.lower()
        gone = 0
        for bucket in sorted({keys.bucket_of(email)}):
            raws = self.redis.lrange(keys.deliveries(bucket), 0, -1)
            doomed = set()
            for raw in raws:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and str(record.get("customer", "")).lower() == email:
                    doomed.add(raw)
            if doomed:
                pipe = self.redis.pipeline(transaction=False)
                for raw in doomed:
                    pipe.lrem(keys.deliveries(bucket), 0, raw)
                gone += sum(int(n) for n in pipe.execute())
        return gone

    def delivery_counts(self) -> dict[str, int]:
        """Return every bucket's attempts summed by status."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.hgetall(keys.delivery_counts(bucket))
        totals: dict[str, int] = {}
        for counts in pipe.execute():
            for status, value in counts.items():
                totals[status] = totals.get(status, 0) + int(value)
        return totals

    def oldest_undelivered(self) -> dict[str, int]:
        """Return, per target, the time (ms) of its oldest notice not passed yet, as the dispatchers last saw it."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.hgetall(keys.dispatch_behind(bucket))
        oldest: dict[str, int] = {}
        for behind in pipe.execute():
            for name, at in behind.items():
                oldest[name] = min(int(at), oldest.get(name, int(at)))
        return oldest


def _newest_first(record: dict[str, Any]) -> tuple[int, int]:
    seq = str(record.get("id", "")).rpartition(".")[2]
    return -int(record.get("at") or 0), -int(seq) if seq.isdigit() else 0


def _after(a: str, b: str) -> bool:
    """Say whether stream entry id a comes after b."""
    a_ms, _, a_seq = a.partition("-")
    b_ms, _, b_seq = b.partition("-")
    return (int(a_ms), int(a_seq or 0)) > (int(b_ms), int(b_seq or 0))
