"""Drain the event log in batches and apply it: tickets, orders, customers, due surveys."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

from tracker.config import Settings
from tracker.ingest import zendesk as zendesk_api
from tracker.store import Store

log = logging.getLogger(__name__)
BATCH = 200
STUCK_AFTER_MS = 60_000
MAX_DELIVERIES = 5


def _email_for(record: dict[str, Any], known: dict[tuple[str, str], str], store: Store) -> str | None:
    customer = record.get("customer") or {}
    if customer.get("email"):
        return str(customer["email"])
    alias = (record.get("source", ""), customer.get("id") or "")
    if not alias[1]:
        return None
    return known.get(alias) or store.resolve_alias(*alias)


def check_record(record: Any) -> None:
    """Raise ValueError unless record has the shape tracker.events.normalise produces."""
    if not isinstance(record, dict):
        raise ValueError("not an object")
    if not isinstance(record.get("type"), str) or not isinstance(record.get("source"), str):
        raise ValueError("type and source are required")
    if not isinstance(record.get("at"), int) or isinstance(record.get("at"), bool):
        raise ValueError("at must be epoch milliseconds")
    customer = record.get("customer")
    if not isinstance(customer, dict) or not (customer.get("email") or customer.get("id")):
        raise ValueError("customer needs an email or an id")
    subject, needed = (("ticket", ("id",)) if record["type"].startswith("ticket.")
                       else ("order", ("id", "total", "currency", "status")))
    part = record.get(subject)
    if not isinstance(part, dict) or any(not isinstance(part.get(f), str) for f in needed):
        raise ValueError(f"{subject} needs {', '.join(needed)}")
    if subject == "order":
        try:
            finite = Decimal(part["total"]).is_finite()
        except ArithmeticError:
            finite = False
        if not finite:
            raise ValueError("order total is not a number")


def _aliases_in_batch(records: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Collect the aliases a batch introduces: a later event in it may rely on an earlier one's."""
    known: dict[tuple[str, str], str] = {}
    for record in records:
        email = (record.get("customer") or {}).get("email")
        if not email:
            continue
        if record["customer"].get("id"):
            known[(record["source"], record["customer"]["id"])] = email
        if record.get("order"):
            known[(record["source"], f"order:{record['order']['id']}")] = email
    return known


def apply_entries(store: Store, settings: Settings, entries: list[tuple[str, str]]) -> int:
    """Apply log entries, ack them, and park the ones that can never apply; return how many applied."""
    parsed: list[tuple[str, str, dict[str, Any]]] = []
    for entry_id, payload in entries:
        try:
            record = json.loads(payload)
            check_record(record)
        except ValueError as exc:
            store.dead_letter(entry_id, payload, f"malformed record: {exc}")
            continue
        parsed.append((entry_id, payload, record))
    known = _aliases_in_batch([r for _, _, r in parsed])
    try:
        zendesk_api.enrich([r for _, _, r in parsed], settings, store)
        lookup_failed = False
    except zendesk_api.ZendeskUnavailable as exc:
        log.warning("Zendesk look-up failed (%s); events that need it stay pending", exc)
        lookup_failed = True
    ready: list[tuple[str, str, dict[str, Any], str]] = []
    for entry_id, payload, record in parsed:
        email = _email_for(record, known, store)
        if email is None and lookup_failed and record["source"] == "zendesk":
            continue  # not acked: recovery retries it once Zendesk answers again
        if email is None:
            store.dead_letter(entry_id, payload, "unknown customer: no email and no known alias")
            continue
        ready.append((entry_id, payload, record, email))
    order_delay = -1 if settings.order_survey_delay is None else settings.order_survey_delay * 1000
    errors = store.apply([(r, e) for _, _, r, e in ready], settings.survey_delay * 1000, order_delay)
    applied = []
    for (entry_id, payload, _record, _email), error in zip(ready, errors, strict=True):
        if error is None:
            applied.append(entry_id)
        else:
            log.error("event %s could not be applied: %s", entry_id, error)
            store.dead_letter(entry_id, payload, f"apply failed: {error}")
    store.ack(applied)
    return len(applied)


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
