"""GDPR erasure: remove every trace of one customer and take their answers off every aggregate.

The steps run in an order that makes a crashed erasure safe to run again: each survey goes with
its answer and its counts in one script; the log is swept next; the profile, which names the
customer's aliases, is deleted last. Erasure also lifts a suppression (the address is gone, so
is the fact that it bounced), and the next event about the customer starts a new profile.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from tracker.config import Settings
from tracker.events import RESOLVED_STATUSES
from tracker.store import Store
from tracker.store.keys import ORDER_DUE
from tracker.surveys.tokens import survey_id

log = logging.getLogger(__name__)


def _survey_ids(store: Store, footprint: dict[str, Any]) -> list[str]:
    """Name every survey of the customer: indexed ones, and any a crash left unindexed (from the solves)."""
    sids = set(footprint["sids"])
    members = [*footprint["tickets"], *(ORDER_DUE + okey for okey in footprint["orders"])]
    for member, (record, history) in zip(members, store.surveyed_state(members), strict=True):
        solves = {str(at) for status, at in history if status in RESOLVED_STATUSES}
        if record.get("solved_at"):
            solves.add(record["solved_at"])
        sids.update(survey_id(member, at) for at in solves)
        if record.get("survey_sid"):
            sids.add(record["survey_sid"])
    return sorted(sids)


def log_matcher(email: str, aliases: list[tuple[str, str]], tickets: list[str],
                orders: list[str]) -> Callable[[dict[str, str]], bool]:
    """Return a test for log entries about the customer: by email anywhere, or by their ids."""
    escaped = {email, json.dumps(email)[1:-1]}  # as written, and as JSON writes non-ASCII
    pattern = re.compile("|".join(rf"(?<![\w.+-]){re.escape(e)}(?![\w-])" for e in escaped), re.IGNORECASE)
    alias_set = {(source, ident) for source, ident in aliases}
    owned = set(tickets) | set(orders)

    def matches(fields: dict[str, str]) -> bool:
        if any(pattern.search(value) for value in fields.values()):
            return True
        try:
            record = json.loads(fields.get("e", ""))
        except ValueError:
            return False
        if not isinstance(record, dict) or not isinstance(record.get("customer"), dict):
            return False
        if record["customer"].get("email"):
            return False  # someone else's event (ours would have matched by email above)
        source = str(record.get("source", ""))
        if (source, str(record["customer"].get("id") or "")) in alias_set:
            return True
        for part, prefix in (("ticket", ""), ("order", "order:")):
            about = record.get(part)
            ident = str(about.get("id") or "") if isinstance(about, dict) else ""
            if ident and (f"{source}:{ident}" in owned or (source, prefix + ident) in alias_set):
                return True
        return False

    return matches


def erase_customer(store: Store, settings: Settings, email: str) -> dict[str, Any]:
    """Erase everything stored about a customer; return what was removed (all zeros when nothing was)."""
    email = email.strip().lower()
    footprint = store.customer_footprint(email)
    counts: dict[str, Any] = {"customer": email, "surveys": 0, "responses": 0, "sent": 0}
    for sid in _survey_ids(store, footprint):
        survey, response, sent = store.erase_survey(sid, email)
        counts["surveys"] += survey
        counts["responses"] += response
        counts["sent"] += sent
    counts.update(store.erase_log_entries(
        log_matcher(email, footprint["aliases"], footprint["tickets"], footprint["orders"])))
    counts.update(store.erase_records(email, footprint["tickets"], footprint["orders"], footprint["aliases"]))
    counts["profile"] = int(bool(footprint["profile"]))
    counts["keys"] = store.erase_customer_keys(email)
    counts["found"] = any(v for k, v in counts.items() if k not in ("customer", "found"))
    log.info("customer erased", extra={k: v for k, v in counts.items() if k != "customer"})
    return counts
