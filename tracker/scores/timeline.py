"""A customer's timeline: tickets, orders, surveys and answers in time order."""

from __future__ import annotations

from typing import Any

from tracker.events import iso_from_ms
from tracker.scores.cards import public_ref
from tracker.store import Store


def customer_timeline(store: Store, email: str, limit: int = 200, newest_first: bool = False) -> list[dict[str, Any]]:
    """Merge the applied events, surveys and answers of one customer, oldest first unless asked."""
    rows: list[tuple[int, dict[str, Any]]] = []
    for entry, at in store.timeline_events(email, limit):
        rows.append((at, entry))
    for survey in store.customer_surveys(email, limit):
        when = survey.sent_at_ms or survey.closed_at_ms or survey.created_at_ms
        if not when:
            continue
        status = "sent" if survey.status == "answered" else survey.status
        item = {"kind": f"survey.{status}", "survey": survey.sid, "ticket": public_ref(survey.tkey)}
        if survey.reason:
            item["reason"] = survey.reason
        rows.append((when, item))
    for answer in store.customer_responses(email, 0, limit):
        rows.append((answer.at_ms, {
            "kind": "answer", "survey": answer.sid, "ticket": public_ref(answer.tkey), "rating": answer.rating,
            "scale": answer.scale, "satisfied": answer.satisfied, "comment": answer.comment, "reason": answer.reason}))
    rows.sort(key=lambda row: row[0], reverse=newest_first)
    return [{"at": iso_from_ms(at), **item} for at, item in rows[:limit]]
