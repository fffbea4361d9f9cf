"""Ranked customers, and the score cards of agents, teams, sources and brands, as the API and dashboard list them."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

from tracker.config import Settings
from tracker.model import ScoreCard
from tracker.scores.cards import customer_card
from tracker.scores.maths import score_card
from tracker.store import Store

SORTS = ("score", "value", "recent", "responses")
ORDERS = ("asc", "desc")
KINDS = ("agent", "team", "source", "brand")
Rank = tuple[Any, ...]


class RankedQuery(NamedTuple):
    """What a page of ranked customers was asked for; a cursor carries it so it cannot serve another query."""

    sort: str
    order: str
    at_risk: bool | None


# Ranked customers ---------------------------------------------------------------------------------

def _encode_cursor(query: RankedQuery, rank: Rank) -> str:
    state = {"s": query.sort, "o": query.order, "r": query.at_risk, "k": list(rank)}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, query: RankedQuery, like: Rank) -> Rank:
    """Read a cursor back into the rank it stopped at; ValueError when it is not one of ours for this query."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("Not a valid cursor.") from exc
    if not isinstance(state, dict) or (state.get("s"), state.get("o"), state.get("r")) != query:
        raise ValueError("The cursor belongs to another query.")
    rank = state.get("k")
    if not isinstance(rank, list) or len(rank) != len(like):
        raise ValueError("Not a valid cursor.")
    for got, want in zip(rank, like, strict=True):
        numeric = isinstance(got, int | float) and not isinstance(got, bool)
        if (isinstance(want, str) and not isinstance(got, str)) or (not isinstance(want, str) and not numeric):
            raise ValueError("Not a valid cursor.")
    return tuple(rank)


def _below(score: float | None, threshold: float) -> bool:
    return score is not None and score < threshold


def ranked_customers(store: Store, settings: Settings, now_ms: int, *, at_risk: bool | None, sort: str,
                     order: str, limit: int, cursor: str | None) -> tuple[list[ScoreCard], str | None]:
    """Return one page of customers' score cards and the cursor of the next page (None at the end).

    at_risk: True keeps customers whose score is below settings.at_risk_score, False keeps the others
    (those without a score included), None keeps everyone. sort: "score" (nulls last), "responses",
    "recent" (latest answer, nulls last) or "value": lifetime order value (live orders, the main
    currency's total taken as is) with ties broken by the most recent unsatisfied answer, which is
    how the at-risk list ranks what a customer is worth and how recently things went wrong.
    order: "asc" or "desc". cursor: opaque, from a previous page of the same query; a malformed or
    foreign cursor raises ValueError.
    """
    if sort not in SORTS or order not in ORDERS or limit < 1:
        raise ValueError("sort, order or limit is not valid")
    threshold = settings.at_risk_score
    # The score ranking is kept as answers arrive (weighted / weight, exact at any query time); rounded
    # like the card, so the at-risk line falls where the card draws it.
    raw = store.customer_scores(below=threshold + 0.01 if at_risk else None)
    scores: dict[str, float | None] = {email: round(score, 2) for email, score in raw.items()}
    emails = sorted(scores) if at_risk else store.customer_emails()
    if at_risk is not None:
        emails = [e for e in emails if _below(scores.get(e), threshold) is at_risk]
    sign = -1 if order == "desc" else 1
    counts = store.customer_field(emails, "agg", "n") if sort == "responses" else {}
    latest = store.customer_field(emails, "profile", "last_response_at") if sort == "recent" else {}
    values = store.order_values(emails) if sort == "value" else {}
    unhappy = store.last_unsatisfied_at(emails) if sort == "value" else {}

    def rank(email: str) -> Rank:
        if sort == "score":
            score = scores.get(email)
            return (int(score is None), sign * (score or 0.0), email)
        if sort == "responses":
            return (0, sign * int(counts.get(email) or 0), email)
        if sort == "recent":
            last = latest.get(email)
            return (int(not last), sign * int(last or 0), email)
        bad = unhappy.get(email)
        return (0, sign * values[email], int(bad is None), -(bad or 0), email)

    ranked = sorted((rank(e), e) for e in emails)
    query = RankedQuery(sort, order, at_risk)
    if cursor:
        after = _decode_cursor(cursor, query, (0, 0, 0, 0, "") if sort == "value" else (0, 0, ""))
        ranked = [item for item in ranked if item[0] > after]
    page, more = ranked[:limit], len(ranked) > limit
    cards = [card for _, email in page if (card := customer_card(store, settings, email, now_ms))]
    next_cursor = _encode_cursor(query, page[-1][0]) if more else None
    return cards, next_cursor


# Agents, teams, sources, brands -------------------------------------------------------------------

def _agent_names(store: Store, idents: set[str]) -> dict[str, str | None]:
    """Name agents by the newest sent survey that carries a name for them."""
    names: dict[str, str | None] = dict.fromkeys(idents)
    missing = set(idents)
    if not missing:
        return names
    for survey in store.surveys_between("-inf", "+inf", newest_first=True):
        ident = f"{survey.source}:{survey.agent_id or ''}"
        if ident in missing and survey.agent_name:
            names[ident] = survey.agent_name
            missing.discard(ident)
            if not missing:
                break
    return names


def aggregate_list(store: Store, kind: str, now_ms: int) -> list[ScoreCard]:
    """Return every agent, team, source or brand with its SPEC §6 fields, most responses first.

    Agents' ids are `<source>:<agent id>` and their name is the one on their newest survey (None
    when never given); the other kinds are named by their id.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    rows = [(ident, agg) for ident, agg in store.aggregates(kind, store.ids(kind)) if not agg.empty]
    names = _agent_names(store, {ident for ident, _ in rows}) if kind == "agent" else {}
    found = [score_card(ident, agg, now_ms, names.get(ident) if kind == "agent" else ident) for ident, agg in rows]
    found.sort(key=lambda card: (-card.responses, card.id))
    return found


def aggregate_detail(store: Store, kind: str, ident: str, now_ms: int) -> ScoreCard | None:
    """Return one agent, team, source or brand as aggregate_list shows it, or None when unknown."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    agg = store.aggregate(kind, ident)
    if agg.empty:
        return None
    name = _agent_names(store, {ident})[ident] if kind == "agent" else ident
    return score_card(ident, agg, now_ms, name)
