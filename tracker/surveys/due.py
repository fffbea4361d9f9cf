"""The due sets' sweep: lease what is due, then send each entry as a survey or as a reminder."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from tracker.config import Settings
from tracker.errors import StorageUnavailable
from tracker.store import Store, keys
from tracker.store.due import Claim
from tracker.store.reminders import REMINDER_DUE
from tracker.surveys.outcome import Outcome, Sender
from tracker.surveys.reminders import park_reminder, send_reminder
from tracker.surveys.send import park_survey, send_survey

log = logging.getLogger(__name__)
# A dead worker's claims come back after this; a live one renews the lease of all it holds every RENEW_EVERY_MS
# (and before a send that follows a slow one), and checks it still holds an entry before each survey it sends.
LEASE_MS = 60_000
RENEW_EVERY_MS = 5_000
# A chunk stops starting sends after this and hands the rest on, well inside Celery's time limits.
CHUNK_BUDGET_MS = 30_000
FORWARD_EVERY_MS = 1_000  # a chunk's sends reach the aggregates and metrics at least this often
# One sweep leases at most this many entries from each due set (there are keys.BUCKETS * 2 of them).
SWEEP_LIMIT = 500

__all__ = ["LEASE_MS", "SWEEP_LIMIT", "Chunk", "Claim", "Outcome", "send_chunk", "send_due", "sweep", "sweep_round"]


def sweep(store: Store, now_ms: int, limit: int = SWEEP_LIMIT) -> tuple[int, list[str]]:
    """Lease the surveys and reminders that are due now; return the lease score and the due entries."""
    return store.claim_due(now_ms, LEASE_MS, limit)


def sweep_round(store: Store, now_ms: int, limit: int = SWEEP_LIMIT) -> Claim:
    """Lease what is due now from every due set; `more` says a set was full, so the sweep goes on at once
    (after the chunks it handed out, which hold their entries under the lease) rather than at the next beat."""
    return store.claim_all_due(now_ms, LEASE_MS, limit)


def send_due(store: Store, settings: Settings, sender: Sender, member: str, claimed: int, now_ms: int) -> Outcome:
    """Send one leased due entry: a reminder (`r|<sid>`) or a ticket's (or order's) survey."""
    if member.startswith(REMINDER_DUE):
        return send_reminder(store, settings, sender, member, claimed, now_ms)
    if member.startswith(keys.CASE_DUE):  # a closed recovery case's new survey (TRACKER_CASE_RESURVEY)
        from tracker.cases.resurvey import send_resurvey

        return send_resurvey(store, settings, sender, member, claimed, now_ms)
    return send_survey(store, settings, sender, member, claimed, now_ms)


@dataclass
class Chunk:
    """What a chunk of leased due entries came to: each one's outcome, and those handed on under the lease."""

    claimed: int
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)


def _now_ms() -> int:
    return int(time.time() * 1000)


def send_chunk(store: Store, settings: Settings, sender: Sender, members: list[str], claimed: int,
               not_isolated: tuple[type[BaseException], ...] = (), clock: Callable[[], int] = _now_ms) -> Chunk:
    """Send leased due entries one at a time under a renewed lease; one that raises is parked alone.

    Before each send the entry is checked to be still held (one small script); the lease of every entry is
    moved on when the last renewal is RENEW_EVERY_MS old, so all of them stay leased for at least LEASE_MS less
    that and one send (renewing them all before each send cost a script per due set and a write per entry
    left, for every mail). Entries whose lease another claim took are skipped. Past the time budget the
    rest is returned in `left` under a fresh lease. Storage outages and not_isolated exceptions propagate:
    the lease brings the unsent entries back.
    """
    started = clock()
    passed_on: tuple[type[BaseException], ...] = (StorageUnavailable, *not_isolated)
    chunk, left = Chunk(claimed), list(members)
    with ExitStack() as deferred:
        # The sends' aggregate steps are forwarded a survey bucket at a time, at least every FORWARD_EVERY_MS;
        # a bucket another forwarder is at work on is left to it (it goes on until that outbox is empty, these
        # entries included) rather than waited for: nothing here reads the counts back.
        deferred.enter_context(store.forwarding_later(wait=False))
        forwarded_at = started
        renewed_at: int | None = None
        while left:
            now_ms = clock()
            if now_ms - forwarded_at >= FORWARD_EVERY_MS:
                deferred.close()
                deferred.enter_context(store.forwarding_later(wait=False))
                forwarded_at = now_ms
            if renewed_at is None or now_ms - renewed_at >= RENEW_EVERY_MS or now_ms - started >= CHUNK_BUDGET_MS:
                held = store.renew_claims(left, chunk.claimed, now_ms + LEASE_MS)
                chunk.claimed, renewed_at = now_ms + LEASE_MS, now_ms
            else:  # the next one only, its lease left as it is
                held = store.renew_claims(left[:1], chunk.claimed, chunk.claimed) + left[1:]
            for lost in (m for m in left if m not in held):
                chunk.outcomes[lost] = Outcome("none", "claimed_elsewhere")
            left = held
            if not left or now_ms - started >= CHUNK_BUDGET_MS:
                break
            member = left.pop(0)
            try:
                chunk.outcomes[member] = send_due(store, settings, sender, member, chunk.claimed, now_ms)
            except passed_on:
                raise
            except Exception as exc:  # one entry's failure must not stop the chunk around it
                chunk.outcomes[member] = _park(store, member, chunk.claimed, f"{type(exc).__name__}: {exc}", now_ms)
    chunk.left = left
    return chunk


def _park(store: Store, member: str, claimed: int, error: str, now_ms: int) -> Outcome:
    if member.startswith(REMINDER_DUE):
        return park_reminder(store, member, claimed, error, now_ms)
    if member.startswith(keys.CASE_DUE):
        store.drop_resurvey(member, claimed)
        log.error("case survey parked", extra={"due": member, "reason": "internal_error"})
        return Outcome("failed", "internal_error")
    return park_survey(store, member, claimed, "internal_error", error, now_ms)
