"""The recovery cases' numbers for the summary and /metrics, from the buckets' counters (never by reading cases)."""

from __future__ import annotations

from typing import Any

from tracker.store import Store

HOUR_MS = 3_600_000


def case_numbers(store: Store, now_ms: int) -> dict[str, Any]:
    """Return cases_open (open and contacted), cases_overdue, recovered_rate (% of closed cases recovered, None
    before any closed) and first_contact_hours (mean hours from opening to first contact, None before any)."""
    counts = store.case_counts(now_ms)
    closed = counts.recovered + counts.not_recovered
    return {
        "cases_open": counts.active,
        "cases_overdue": counts.overdue,
        "recovered_rate": round(counts.recovered * 100 / closed, 2) if closed else None,
        "first_contact_hours": round(counts.contact_ms / counts.contacted / HOUR_MS, 2) if counts.contacted else None,
    }
