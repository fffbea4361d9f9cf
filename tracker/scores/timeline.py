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
        status = survey.get("status", "")
        when = survey.get("sent_at") or survey.get("closed_at") or survey.get("created_at")
        if not when:
            continue
        item = {"kind": f"survey.{'sent' if status == 'answered' else status}", "survey": survey.get("sid"),
                "ticket": public_ref(survey.get("tkey"))}
        if survey.get("reason"):
            item["reason"] = survey["reason"]
        rows.append((int(when), item))
    for response in store.customer_responses(email, 0, limit):
        rows.append((int(response["at"]), {
            "kind": "answer", "survey": response["sid"], "ticket": public_ref(response.get("tkey")),
            "rating": int(response["rating"]), "scale": response["scale"],
            "satisfied": response.get("satisfied") == "1", "comment": response.get("comment") or None,
            "reason": response.get("reason") or None}))
    rows.sort(key=lambda row: row[0], reverse=newest_first)
    return [{"at": iso_from_ms(at), **item} for at, item in rows[:limit]]
