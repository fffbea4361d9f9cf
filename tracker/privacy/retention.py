"""TRACKER_RETENTION_DAYS: answers, surveys and tickets older than this are deleted; the numbers stay.

The event log and the dead letters lose their entries appended before the cutoff too (never one not
yet applied), whatever TRACKER_LOG_RETENTION_DAYS says. A sweep walks the customers a batch at a time
from a cursor kept in Redis, so a run that stops (a time limit, a killed worker) is continued by the
next one. Every step is idempotent: a survey leaves
with its answer in one script that adds what they counted to the entity's retired sums (which
`tracker rebuild-scores` adds back), and a ticket leaves only while nothing newer touched it. A lease
keeps two workers from sweeping at once; should two still overlap, the second finds nothing to do.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, replace

from tracker.config import Settings
from tracker.model import DAY_MS
from tracker.store import Store

log = logging.getLogger(__name__)
BATCH = 200  # customers per round trip
BUDGET = 20_000  # customers per run: a run stays well inside the task time limit; the next run goes on
LEASE_MS = 10 * 60_000


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run looked at and deleted, and whether it finished a pass over every customer."""

    customers: int = 0
    surveys: int = 0
    answers: int = 0
    tickets: int = 0
    timeline: int = 0
    log_entries: int = 0
    cases: int = 0  # closed recovery cases
    finished: bool = True


def retire_old_records(store: Store, settings: Settings, now_ms: int, budget: int = BUDGET) -> RetentionReport:
    """Delete what is older than TRACKER_RETENTION_DAYS for up to budget customers; nothing when it is unset."""
    if settings.retention_days is None:
        return RetentionReport()
    holder = f"{socket.gethostname()}-{os.getpid()}-{now_ms}"
    if not store.take_retention_lease(holder, LEASE_MS):
        return RetentionReport(finished=False)  # another worker is sweeping
    try:
        cutoff_ms = now_ms - settings.retention_days * DAY_MS
        store.keep_first_activity(cutoff_ms)  # the aggregates keep what leaves: open ranges still start at it
        report = replace(_sweep(store, cutoff_ms, now_ms, budget), log_entries=store.trim_log(cutoff_ms),
                         cases=store.retire_closed_cases(cutoff_ms))
        store.retire_old_notices(cutoff_ms)
    finally:
        store.end_retention_lease(holder)
    if report.surveys or report.tickets or report.timeline or report.log_entries:
        log.info("old records retired", extra={"surveys": report.surveys, "answers": report.answers,
                                               "tickets": report.tickets, "timeline": report.timeline,
                                               "log_entries": report.log_entries})
    return report


def _sweep(store: Store, cutoff_ms: int, now_ms: int, budget: int) -> RetentionReport:
    surveys = answers = tickets = timeline = seen = 0
    cursor = store.retention_cursor()
    while True:
        cursor, emails = store.customers_batch(cursor, BATCH)
        for email, sids, tkeys in store.old_records(emails, cutoff_ms):
            for sid in sids:
                survey, answer, _ = store.retire_survey(sid, email, cutoff_ms, now_ms)
                surveys, answers = surveys + survey, answers + answer
            tickets += store.retire_tickets(email, tkeys, cutoff_ms)
        timeline += store.trim_timelines(emails, cutoff_ms)
        seen += len(emails)
        store.save_retention_cursor(cursor)
        if cursor == 0 or seen >= budget:
            return RetentionReport(seen, surveys, answers, tickets, timeline, finished=cursor == 0)
