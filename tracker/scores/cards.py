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
    parts = store.card_parts(email)  # one read of everything the card shows: it sits on the API's hot path
    if parts is None:
        return None
    profile, aggregate, answer, orders = parts
    card = score_card(email, aggregate, now_ms, name=profile.name)
    last = None
    if answer:
        last = LastResponse(answer.rating, answer.scale, answer.at_ms, public_ref(answer.tkey))
    return replace(card, last_response=last, orders=orders,
                   at_risk=card.score is not None and card.score < settings.at_risk_score)
