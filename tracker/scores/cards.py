"""Score cards: a customer's (or agent's, team's, ...) numbers as support leads read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

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


def card_email(email: str) -> str:
    """Return the address a score card is kept under, as a request may spell it."""
    return email.strip().lower()


def customer_card(store: Store, settings: Settings, email: str, now_ms: int,
                  read: Sequence[Any] | None = None) -> ScoreCard | None:
    """Return the score card of SPEC.md §7, or None for a customer never seen.

    read: the replies of store.queue_card_parts for the address (card_email), when the caller read them already
    (the API reads them with its key check); otherwise they are read here, in one round trip.
    """
    email = card_email(email)
    parts = store.card_parts(email) if read is None else store.card_parts_from(email, read)
    if parts is None:
        return None
    name, aggregate, answer, orders = parts
    card = score_card(email, aggregate, now_ms, name=name)
    last = None
    if answer is not None:
        last = LastResponse(answer.rating, answer.scale, answer.at_ms, public_ref(answer.tkey))
    return replace(card, last_response=last, orders=orders,
                   at_risk=card.score is not None and card.score < settings.at_risk_score)
