"""Dispatch: every notice to every target that wants it, in stream order per (bucket, target), at least once.

One dispatcher per notice bucket at a time (a lease). Per target the bucket keeps a cursor, moved right after each
delivery, so a dispatcher that dies re-sends at most the notice it had in flight (with the same webhook-id). A
notice to retry blocks that target's later notices of the bucket (one customer's notices stay in order) until it
is due: backoff doubling from 5 s with full jitter up to 1 h, or the target's Retry-After; after 24 h of retries
it is recorded as failed and the target moves on (`tracker redeliver` sends it again).
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tracker.backoff import MAX_RETRY_AFTER_S, record_through_outage
from tracker.cases.target import case_targets
from tracker.config import Settings
from tracker.notify.events import Notice, notice_from_entry
from tracker.notify.targets import DispatchContext, Outcome, Target
from tracker.notify.urls import url_targets
from tracker.store import Store, keys
from tracker.store.dispatch import RetryState, delivery_bucket
from tracker.writeback import writeback_targets

log = logging.getLogger(__name__)
LEASE_MS = 60_000  # longer than a delivery can take (connect and read timeouts per address); renewed per record
BATCH = 100
FIRST_BACKOFF_S = 5.0
MAX_BACKOFF_S = 3600.0
MIN_BACKOFF_S = 1.0  # full jitter may draw ~0: never straight back at a target that just failed
GIVE_UP_MS = 24 * 3600 * 1000
DAY_MS = 86_400_000
_LOST = "lost"  # the lease went to another dispatcher
_SPENT = "spent"  # the run's time budget ran out
_DONE = "done"
_MORE = "more"  # a batch was done and more may follow


def targets_for(settings: Settings) -> list[Target]:
    """Return every target the settings configure: event URLs, then helpdesk write-back, then recovery cases."""
    targets: list[Target] = list(url_targets(settings))
    targets += writeback_targets(settings)
    targets += case_targets(settings)
    return targets


@dataclass
class DispatchReport:
    """What one dispatch run did: attempts by status, buckets another dispatcher held, buckets left for later."""

    delivered: int = 0
    retry: int = 0
    refused: int = 0
    skipped: int = 0
    failed: int = 0
    busy: list[int] = field(default_factory=list)
    left: tuple[int, ...] = ()

    def count(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


def backoff_s(attempts: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
    """Return the wait after failed attempt number `attempts`: the target's Retry-After, else full jitter over
    5 s doubling per attempt up to 1 h (at least MIN_BACKOFF_S)."""
    if retry_after_s is not None and math.isfinite(retry_after_s):  # a target's own reading may be nan or inf
        return min(max(MIN_BACKOFF_S, retry_after_s), MAX_RETRY_AFTER_S)
    cap = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** min(max(attempts - 1, 0), 30))
    return max(MIN_BACKOFF_S, (rng or random).uniform(0, cap))


def _attempt(target: Target, notice: Notice, ctx: DispatchContext) -> Outcome:
    try:
        return target.deliver(notice, ctx)
    except Exception as exc:  # a target must not raise; one that does is retried, not allowed to stop the bucket
        log.exception("target %s raised on notice %s", target.name, notice.id)
        return Outcome("retry", None, f"the target raised {type(exc).__name__}")


def delivery_record(notice: Notice, bucket: int, target: str, attempt: int, status: str, outcome: Outcome,
                    at_ms: int, next_ms: int | None = None, redelivery_of: str | None = None) -> dict[str, Any]:
    """Build the record of one attempt (the store adds its delivery id)."""
    return {"notice": notice.id, "type": notice.type, "customer": notice.customer, "target": target,
            "attempt": attempt, "status": status, "code": outcome.code, "detail": outcome.detail[:500],
            "at": at_ms, "next_at": next_ms, "bucket": bucket, "entry": notice.entry, "redelivery_of": redelivery_of}


def dispatch(store: Store, settings: Settings, consumer: str, now_ms: int, buckets: Sequence[int] | None = None,
             budget_s: float = 20.0, targets: Sequence[Target] | None = None) -> DispatchReport:
    """Deliver the notices of the given buckets (all by default) to every target, each bucket under its lease.

    A pass over every bucket also trims the notices older than TRACKER_LOG_RETENTION_DAYS every target has passed.
    """
    import requests

    chosen = list(range(keys.BUCKETS) if buckets is None else sorted(set(buckets)))
    configured = list(targets_for(settings) if targets is None else targets)
    names = [target.name for target in configured]
    report = DispatchReport()
    deadline = time.monotonic() + budget_s
    todo = store.buckets_with_notices(chosen, names) if configured else []
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment would resolve the checked name again
        ctx = DispatchContext(store, settings, now_ms, session)
        left: list[int] = []
        for bucket in todo:
            if time.monotonic() >= deadline:
                left.append(bucket)
                continue
            token = f"{consumer}:{uuid.uuid4().hex[:12]}"
            if not store.take_dispatch_lease(bucket, token, LEASE_MS):
                report.busy.append(bucket)
                continue
            try:
                finished = _dispatch_bucket(ctx, bucket, token, configured, report, deadline)
            finally:
                store.release_dispatch_lease(bucket, token)
            if not finished:
                left.append(bucket)
        report.left = tuple(left)
    if buckets is None:
        store.trim_notices(chosen, now_ms - settings.log_retention_days * DAY_MS, names)
    return report


def _dispatch_bucket(ctx: DispatchContext, bucket: int, token: str, targets: Sequence[Target],
                     report: DispatchReport, deadline: float) -> bool:
    """Deliver a bucket's notices to each target in turn, a batch each at most (so a target with a long backlog does
    not hold the others back); say whether the bucket was finished."""
    state = ctx.store.dispatch_state(bucket)
    behind: dict[str, int] = {}
    finished = True
    for target in targets:
        ended = _dispatch_target(ctx, bucket, token, target, state.cursor(target.name),
                                 state.retries.get(target.name), report, deadline, behind)
        if ended == _LOST:
            log.warning("notice bucket %d: the lease ran out; its new dispatcher goes on from the cursors", bucket)
            return True
        if ended == _SPENT:
            return False
        finished = finished and ended == _DONE
    ctx.store.note_behind(bucket, behind)
    return finished


def _dispatch_target(ctx: DispatchContext, bucket: int, token: str, target: Target, after: str,
                     retry: RetryState | None, report: DispatchReport, deadline: float, behind: dict[str, int]) -> str:
    """Deliver a target's notices of a bucket after its cursor, in order, until one is to be retried or a batch is
    done (_MORE: the bucket is left for the next run)."""
    store = ctx.store
    if retry is not None and retry.next_ms > ctx.now_ms:
        waiting = store.read_notices(bucket, after, 1)
        if waiting:
            behind[target.name] = int(waiting[0][1].get("at") or ctx.now_ms)
        return _DONE
    entries = store.read_notices(bucket, after, BATCH)
    passed_unwanted = ""
    for entry_id, fields in entries:
        try:
            notice = notice_from_entry(entry_id, fields)
        except (KeyError, ValueError):
            log.error("notice bucket %d: entry %s is not a notice; passed", bucket, entry_id)
            passed_unwanted = entry_id
            continue
        if not target.wants(notice):
            passed_unwanted = entry_id
            continue
        if time.monotonic() >= deadline:
            return _pass(store, bucket, token, target.name, passed_unwanted) or _SPENT
        passed_unwanted = ""
        same = retry is not None and retry.entry == entry_id
        attempt = retry.attempts + 1 if same and retry else 1
        first_ms = retry.first_ms if same and retry else ctx.now_ms
        outcome = _attempt(target, notice, ctx)
        status: str = outcome.status
        mode, next_state = "pass", None
        if status == "retry":
            if ctx.now_ms - first_ms >= GIVE_UP_MS:
                status = "failed"
            else:
                next_ms = ctx.now_ms + int(backoff_s(attempt, outcome.retry_after_s) * 1000)
                mode, next_state = "retry", RetryState(entry_id, attempt, first_ms, next_ms)
        record = delivery_record(notice, bucket, target.name, attempt, status, outcome, ctx.now_ms,
                                 next_state.next_ms if next_state else None)
        # The attempt is made (a message posted, a note written): a record lost to an outage would have the next
        # dispatcher make it again, so the record waits the outage out.
        _id, held = record_through_outage(
            partial(store.record_delivery, bucket, token, LEASE_MS, target.name, mode, entry_id, record, next_state,
                    attempt=uuid.uuid4().hex),  # one token for every try: a try applied is not recorded twice
            log, "notice attempted; recording it waits for storage",
            "notice attempted but not recorded; the next dispatch attempts it again",
            {"notice": notice.id, "target": target.name})
        report.count(status)
        if not held:
            return _LOST
        if next_state is not None:
            behind[target.name] = notice.at_ms
            return _DONE
        retry = None
    if _pass(store, bucket, token, target.name, passed_unwanted):
        return _LOST
    if len(entries) < BATCH:
        return _DONE
    behind[target.name] = int(entries[-1][1].get("at") or ctx.now_ms)  # about: the next is no older than this
    return _MORE


def _pass(store: Store, bucket: int, token: str, target: str, entry_id: str) -> str:
    """Move a target's cursor past notices it does not want; return _LOST when the lease is gone, else ""."""
    if not entry_id:
        return ""
    _id, held = store.record_delivery(bucket, token, LEASE_MS, target, "pass", entry_id)
    return "" if held else _LOST


class RedeliveryError(Exception):
    """A redelivery that cannot be made: the message says why, in one line."""


@dataclass(frozen=True)
class Redelivery:
    """A notice sent again by an operator: the new attempt's id and status, and how the target took it."""

    delivery_id: str
    status: str
    outcome: Outcome
    record: dict[str, Any]


def redeliver(store: Store, settings: Settings, delivery_id: str, now_ms: int) -> Redelivery:
    """Send a delivery's notice again now to its target (the same webhook-id), and record the attempt.

    The target's cursor and retries stay as they are; an attempt that would be retried is recorded as failed.
    """
    import requests

    earlier = store.delivery(delivery_id)
    if earlier is None:
        raise RedeliveryError(f"no delivery {delivery_id!r} is known (ids look like d3.1027; see tracker deliveries)")
    bucket = delivery_bucket(delivery_id)
    assert bucket is not None  # store.delivery found it by this id
    target = next((t for t in targets_for(settings) if t.name == earlier["target"]), None)
    if target is None:
        raise RedeliveryError(f"delivery {delivery_id} went to {earlier['target']}, which is no longer configured")
    fields = store.notice_entry(bucket, str(earlier["entry"]))
    if fields is None:
        raise RedeliveryError(f"notice {earlier['notice']} of delivery {delivery_id} is no longer held "
                              f"(older than TRACKER_LOG_RETENTION_DAYS)")
    notice = notice_from_entry(str(earlier["entry"]), fields)
    with requests.Session() as session:
        session.trust_env = False
        outcome = _attempt(target, notice, DispatchContext(store, settings, now_ms, session))
    status = "failed" if outcome.status == "retry" else outcome.status
    record = delivery_record(notice, bucket, target.name, int(earlier.get("attempt") or 0) + 1, status, outcome,
                             now_ms, redelivery_of=delivery_id)
    new_id, _held = store.record_delivery(bucket, "", LEASE_MS, target.name, "none", notice.entry, record)
    return Redelivery(new_id, status, outcome, {"id": new_id, **record})
