"""Drain the event log in batches and apply it: tickets, orders, customers, due surveys."""

from __future__ import annotations

import json
import logging
import time

from tracker.config import Settings
from tracker.events import SURVEY_TYPES, event_from_record
from tracker.ingest.enrich import enrich
from tracker.ingest.survey_events import apply_survey_event, introduces, skip_stale_solve
from tracker.model import Event
from tracker.store import Store
from tracker.store.state import TOO_OLD
from tracker.surveys.policy import stale_before

log = logging.getLogger(__name__)
BATCH = 200
STUCK_AFTER_MS = 60_000
MAX_DELIVERIES = 5


def _email_for(event: Event, known: dict[tuple[str, str], str], store: Store) -> str | None:
    """Return the customer's email: given, introduced earlier in the batch, or known by the alias index."""
    if event.customer.email:
        return event.customer.email
    if not event.customer.id:
        return None
    alias = (event.source, event.customer.id)
    return known.get(alias) or store.resolve_alias(*alias)


def _aliases_in_batch(events: list[Event]) -> dict[tuple[str, str], str]:
    """Collect the aliases a batch introduces: a later event in it may rely on an earlier one's."""
    known: dict[tuple[str, str], str] = {}
    for event in events:
        email = event.customer.email
        if not email:
            continue
        if event.customer.id:
            known[(event.source, event.customer.id)] = email
        if event.order:
            known[(event.source, f"order:{event.order.id}")] = email
    return known


def _read(store: Store, entries: list[tuple[str, str]]) -> list[tuple[str, str, Event]]:
    """Turn log entries into events, dead-lettering each one that is not a valid record."""
    read = []
    for entry_id, payload in entries:
        try:
            event = event_from_record(json.loads(payload))
        except ValueError as exc:
            store.dead_letter(entry_id, payload, f"malformed record: {exc}")
            continue
        read.append((entry_id, payload, event))
    return read


def apply_entries(store: Store, settings: Settings, entries: list[tuple[str, str]]) -> int:
    """Apply log entries, ack them, and park the ones that can never apply; return how many applied."""
    read = _read(store, entries)
    events, down = enrich([event for _, _, event in read], settings, store)
    known = _aliases_in_batch(events)
    ready: list[tuple[str, str, Event, str]] = []
    for (entry_id, payload, _), event in zip(read, events, strict=True):
        email = _email_for(event, known, store)
        if email is None and event.source in down:
            continue  # not acked: recovery retries it once the source's look-up answers again
        if email is None:
            store.dead_letter(entry_id, payload, "unknown customer: no email and no known alias")
            continue
        ready.append((entry_id, payload, event, email))
    errors = _apply(store, settings, [(event, email) for _, _, event, email in ready])
    applied = []
    for (entry_id, payload, _event, _email), error in zip(ready, errors, strict=True):
        if error is None:
            applied.append(entry_id)
        else:
            log.error("event %s could not be applied: %s", entry_id, error)
            store.dead_letter(entry_id, payload, f"apply failed: {error}")
    store.ack(applied)
    return len(applied)


def _apply(store: Store, settings: Settings, pairs: list[tuple[Event, str]]) -> list[str | None]:
    """Apply events in order of kind: state first, then survey events, then the skips of stale solves."""
    now_ms = int(time.time() * 1000)
    order_delay = -1 if settings.order_survey_delay is None else settings.order_survey_delay * 1000
    stateful = [i for i, (event, _) in enumerate(pairs) if event.type not in SURVEY_TYPES or introduces(store, event)]
    results: list[str | int | None] = [None] * len(pairs)
    for i, result in zip(stateful, store.apply_events([pairs[i] for i in stateful], settings.survey_delay * 1000,
                                                      order_delay, stale_before(settings, now_ms)), strict=True):
        results[i] = result
    errors = [r if isinstance(r, str) else None for r in results]
    # Survey events before the skips: a replayed survey keeps the attribution its event gives.
    for i, (event, email) in enumerate(pairs):
        if event.type in SURVEY_TYPES and errors[i] is None:
            errors[i] = apply_survey_event(store, settings, event, email)
    for i, (event, _) in enumerate(pairs):
        if results[i] == TOO_OLD:
            skip_stale_solve(store, settings, event, now_ms)
    return errors


def drain(store: Store, settings: Settings, consumer: str, budget_s: float = 20.0) -> tuple[int, bool]:
    """Apply new entries until the log is empty or the budget is spent; return (applied, more left)."""
    applied = 0
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        entries = store.read_batch(consumer, BATCH)
        if not entries:
            # Release the kick before the last look: an append after this point kicks a new drain,
            # an append before it is read below.
            store.release_kick()
            entries = store.read_batch(consumer, BATCH)
            if not entries:
                return applied, False
        applied += apply_entries(store, settings, entries)
    return applied, True


def recover(store: Store, settings: Settings, consumer: str, min_idle_ms: int = STUCK_AFTER_MS) -> int:
    """Re-apply entries a crashed consumer left pending; park those that failed too often."""
    recovered = 0
    while True:
        stuck = store.claim_stuck(consumer, min_idle_ms, BATCH)
        if not stuck:
            return recovered
        retry = []
        for entry_id, payload, delivered in stuck:
            if delivered > MAX_DELIVERIES:
                store.dead_letter(entry_id, payload, f"not applied after {delivered} deliveries")
            else:
                retry.append((entry_id, payload))
        recovered += apply_entries(store, settings, retry)
        if len(stuck) < BATCH:
            return recovered
