"""Score cards: a customer's (or agent's, team's, ...) numbers as support leads read them."""

from __future__ import annotations

from dataclasses import replace

from tracker.config import Settings
from tracker.model import LastResponse, ScoreCard
from tracker.scores.maths import score_card
from tracker.store import Store
from tracker.store.keys import ORDER_DUE


def public_ref(tkey: str | None) -> str | None:
    """Show what a survey was about: `zendesk:1001` for a ticket, `order:shopify:42` for an order."""
    if not tkey:
        return None
    return "order:" + tkey.removeprefix(ORDER_DUE) if tkey.startswith(ORDER_DUE) else tkey


def customer_card(store: Store, settings: Settings, email: str, now_ms: int) -> ScoreCard | None:
    """Return the score card of SPEC.md §7, or None for a customer never seen."""
    email = email.strip().lower()
    profile = store.profile(email)
    if profile is None:
        return None
    card = score_card(email, store.aggregate("customer", email), now_ms, name=profile.name)
    last = None
    answer = store.response(profile.last_response_sid) if profile.last_response_sid else None
    if answer:
        last = LastResponse(answer.rating, answer.scale, answer.at_ms, public_ref(answer.tkey))
    return replace(card, last_response=last, orders=store.orders_summary(email),
                   at_risk=card.score is not None and card.score < settings.at_risk_score)
