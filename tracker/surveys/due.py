"""The due set's sweep: lease what is due, then send each entry as a survey or as a reminder."""

from __future__ import annotations

from tracker.config import Settings
from tracker.store import Store
from tracker.store.reminders import REMINDER_DUE
from tracker.surveys.outcome import Outcome, Sender
from tracker.surveys.reminders import send_reminder
from tracker.surveys.send import send_survey

LEASE_MS = 5 * 60_000  # longer than one batch of sends; a dead worker's claims come back after it

__all__ = ["LEASE_MS", "Outcome", "send_due", "sweep"]


def sweep(store: Store, now_ms: int, limit: int = 500) -> tuple[int, list[str]]:
    """Lease the surveys that are due now; return the lease score and the due entries."""
    return store.claim_due(now_ms, LEASE_MS, limit)


def send_due(store: Store, settings: Settings, sender: Sender, member: str, claimed: int, now_ms: int) -> Outcome:
    """Send one leased due entry: a reminder (`r|<sid>`) or a ticket's (or order's) survey."""
    if member.startswith(REMINDER_DUE):
        return send_reminder(store, settings, sender, member, claimed, now_ms)
    return send_survey(store, settings, sender, member, claimed, now_ms)
