"""Score cards: a customer's (or agent's, team's, ...) numbers as support leads read them."""

from __future__ import annotations

from typing import Any

from tracker.config import Settings
from tracker.events import iso_from_ms
from tracker.scores.maths import aggregate_fields
from tracker.store import Store
from tracker.store.keys import ORDER_DUE


def public_ref(tkey: str | None) -> str | None:
    """Show what a survey was about: `zendesk:1001` for a ticket, `order:shopify:42` for an order."""
    if not tkey:
        return None
    return "order:" + tkey.removeprefix(ORDER_DUE) if tkey.startswith(ORDER_DUE) else tkey


def customer_card(store: Store, settings: Settings, email: str, now_ms: int) -> dict[str, Any] | None:
    """Return the score card of SPEC.md §7, or None for a customer never seen."""
    email = email.strip().lower()
    profile = store.profile(email)
    if not profile:
        return None
    agg, daily = store.aggregate("customer", email)
    fields = aggregate_fields(agg, daily, now_ms)
    last = None
    if profile.get("last_response_sid"):
        response = store.response(profile["last_response_sid"])
        if response:
            last = {"rating": int(response["rating"]), "scale": response["scale"],
                    "at": iso_from_ms(int(response["at"])), "ticket": public_ref(response.get("tkey"))}
    orders = store.orders_summary(email)
    score = fields["score"]
    return {
        "customer": email,
        "name": profile.get("name") or None,
        **fields,
        "last_response": last,
        "orders": orders,
        "at_risk": score is not None and float(score) < settings.at_risk_score,
    }


def aggregate_card(store: Store, kind: str, ident: str, now_ms: int) -> dict[str, Any] | None:
    """Return the score fields of one agent, team, source or brand, or None when unknown."""
    agg, daily = store.aggregate(kind, ident)
    if not agg:
        return None
    return {"id": ident, **aggregate_fields(agg, daily, now_ms)}


def response_row(response: dict[str, str]) -> dict[str, Any]:
    """Shape a stored response for the API and the CSV export."""
    return {
        "survey": response["sid"],
        "ticket": public_ref(response.get("tkey")),
        "subject": response.get("subject") or None,
        "source": response.get("source") or None,
        "agent": ({"id": response["agent_id"], "name": response.get("agent_name") or None}
                  if response.get("agent_id") else None),
        "team": response.get("team") or None,
        "brand": response.get("brand") or None,
        "rating": int(response["rating"]),
        "scale": response["scale"],
        "value": round(int(response["value6"]) / 6, 2),
        "satisfied": response.get("satisfied") == "1",
        "comment": response.get("comment") or None,
        "reason": response.get("reason") or None,
        "at": iso_from_ms(int(response["at"])),
    }
