"""The recovery cases' numbers for the summary and /metrics: from the buckets' counters (never by reading cases), or,
narrowed to the cases whose survey passes the summary's filters, from the cases kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.model import Case, Survey
from tracker.store import Store
from tracker.store.cases import CaseCounts

HOUR_MS = 3_600_000
# Whether a case (with the survey whose answer opened it, None when no longer stored) passes a reader's filters.
CaseFilter = Callable[[Case, Survey | None], bool]


def case_numbers(store: Store, now_ms: int, passes: CaseFilter | None = None,
                 label: str | None = None) -> dict[str, Any]:
    """Return cases_open (open and contacted), cases_overdue, recovered_rate (% of closed cases recovered, None
    before any closed) and first_contact_hours (mean hours from opening to first contact, None before any).

    passes: count only the cases it keeps. When it keeps the cases of one label (label: one filter's value, as
    tracker.store.cases.labels_of names it) and every case is labelled, the counters of that label answer, in one
    round trip (tracker.cases.labels); else the cases kept are counted (Store.cases_with_surveys: the cases and
    their surveys, 500 a batch). Closed cases that retention deleted count in the unfiltered numbers, and in a
    label's once they were labelled.
    """
    if passes is None:
        counts = store.case_counts(now_ms)
    elif label is not None and store.cases_labelled():
        counts = store.case_counts(now_ms, label)
    else:
        counts = _counted(store, now_ms, passes)
    closed = counts.recovered + counts.not_recovered
    return {
        "cases_open": counts.active,
        "cases_overdue": counts.overdue,
        "recovered_rate": round(counts.recovered * 100 / closed, 2) if closed else None,
        "first_contact_hours": round(counts.contact_ms / counts.contacted / HOUR_MS, 2) if counts.contacted else None,
    }


def _counted(store: Store, now_ms: int, passes: CaseFilter) -> CaseCounts:
    """Count the kept cases that pass, as the buckets' counters count every case."""
    sums = dict.fromkeys(("opened", "active", "overdue", "recovered", "not_recovered", "contacted", "contact_ms"), 0)
    for batch in store.cases_with_surveys():
        for case, survey in batch:
            if not passes(case, survey):
                continue
            sums["opened"] += 1
            sums["active"] += int(not case.closed)
            sums["overdue"] += int(case.overdue(now_ms))
            sums["recovered"] += int(case.status == "recovered")
            sums["not_recovered"] += int(case.status == "not_recovered")
            if case.first_contact_at_ms is not None:
                sums["contacted"] += 1
                sums["contact_ms"] += case.first_contact_at_ms - case.opened_at_ms
    return CaseCounts(**sums)
