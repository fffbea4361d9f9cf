"""Customers' score cards narrowed by the filters (SPEC §12): one card, and the ranked list of cards.

A card under filters is computed from the customer's own answers and sent surveys that pass them (a customer has
few: their two indexes, two round trips), the way the summary sums them when no rollup answers (Answer.counted, one
Aggregate arithmetic); `orders` and `at_risk` stay the whole customer's (what they bought; the at-risk ranking is of
the whole score). No rollup is kept per customer and dimension, and no ranked set orders customers by a filtered
score, so a list under filters walks the answers of all time once through the sieve (tracker.store.sieve: Redis is
asked, a batch at a time, which surveys hold every filter's value, and only those come back), groups them by
customer and ranks them: its cost is in proportion to the answers kept, like an aggregate list under two filters,
whatever page is asked for. The page's cards are then read as the card under the same filters is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tracker.config import Settings
from tracker.model import Aggregate, Answer, LastResponse, OrdersSummary, ScoreCard, Survey
from tracker.scales import SCALES
from tracker.scores.cards import card_email, public_ref
from tracker.scores.maths import score_card
from tracker.scores.ranking import ORDERS, SORTS, Rank, RankedQuery, _decode_cursor, _encode_cursor, _Walk
from tracker.scores.summary import Facets
from tracker.store import Store

SENT_STATUSES = ("sent", "answered")
CHUNK = 5000  # customers whose whole-customer values are looked up in one round trip


def filters_key(filters: Facets) -> str | None:
    """Name a set of filters in a cursor (a short digest: the cursor stays short, and belongs to its filters)."""
    chosen = filters.chosen()
    if not chosen:
        return None
    return hashlib.sha256(json.dumps(chosen, separators=(",", ":")).encode()).hexdigest()[:16]


def passing_answers(answers: Sequence[Answer], filters: Facets) -> list[Answer]:
    return [a for a in answers if a.scale in SCALES and Facets.of_answer(a).passes(filters)]


def narrowed_card(email: str, name: str | None, whole: Aggregate, surveys: Sequence[Survey],
                  answers: Sequence[Answer], settings: Settings, now_ms: int, orders: OrdersSummary) -> ScoreCard:
    """Return a customer's card of the answers and sent surveys that pass filters (already chosen by the caller);
    at_risk from the whole customer's score."""
    sums = Aggregate()
    for answer in answers:
        sums += answer.counted
    for _ in surveys:
        sums += Aggregate.of_sent()
    card = score_card(email, sums, now_ms, name=name)
    newest = max(answers, key=lambda a: (a.at_ms, a.sid), default=None)
    last = None if newest is None else LastResponse(newest.rating, newest.scale, newest.at_ms,
                                                    public_ref(newest.tkey))
    whole_score = score_card(email, whole, now_ms).score
    return replace(card, last_response=last, orders=orders,
                   at_risk=whole_score is not None and whole_score < settings.at_risk_score)


def filtered_cards(store: Store, settings: Settings, emails: list[str], now_ms: int,
                   filters: Facets) -> list[ScoreCard]:
    """Return the cards of these customers narrowed by filters, in their order (unknown customers left out): their
    profiles and their own surveys and answers, three round trips for them all."""
    if not emails:
        return []
    cards = []
    for email, read, (surveys, answers) in zip(emails, store.card_replies(emails), store.customers_own(emails),
                                               strict=True):
        parts = store.card_parts_from(email, read)
        if parts is None:
            continue
        name, whole, _, orders = parts
        sent = [s for s in surveys if s.status in SENT_STATUSES and Facets.of_survey(s).passes(filters)]
        cards.append(narrowed_card(email, name, whole, sent, passing_answers(answers, filters), settings, now_ms,
                                   orders))
    return cards


def filtered_card(store: Store, settings: Settings, email: str, now_ms: int, filters: Facets) -> ScoreCard | None:
    """Return a customer's score card of the answers and sent surveys that pass the filters (None: never seen).

    A customer with none that pass gets a card of nulls and zeros (known, but nothing counted under the filters)."""
    found = filtered_cards(store, settings, [card_email(email)], now_ms, filters)
    return found[0] if found else None


@dataclass
class _Seen:
    """What the walk keeps of one customer: the sums of their passing answers and their newest answer's time."""

    sums: Aggregate
    newest_ms: int


def _walk(store: Store, filters: Facets) -> dict[str, _Seen]:
    """Sum every stored answer passing the filters by its customer (the sieve sends back only those that may)."""
    seen: dict[str, _Seen] = {}
    for answer in store.answers_between("-inf", "+inf", where=dict(filters.chosen())):
        if not answer.customer or answer.scale not in SCALES or not Facets.of_answer(answer).passes(filters):
            continue
        had = seen.get(answer.customer)
        if had is None:
            seen[answer.customer] = _Seen(answer.counted, answer.at_ms)
        else:
            had.sums += answer.counted
            had.newest_ms = max(had.newest_ms, answer.at_ms)
    return seen


def _whole_values(store: Store, sorts: list[str], emails: list[str]) -> dict[str, list[float | None]]:
    """Look up each customer's value in the named ranked sets (whole-customer values), a chunk a round trip."""
    values: dict[str, list[float | None]] = {sort: [] for sort in sorts}
    for start in range(0, len(emails), CHUNK):
        for sort, found in zip(sorts, store.rank_lookup(sorts, emails[start:start + CHUNK]), strict=True):
            values[sort] += found
    return values


def filtered_customers(store: Store, settings: Settings, now_ms: int, *, filters: Facets, at_risk: bool | None,
                       sort: str, order: str, limit: int, cursor: str | None) -> tuple[list[ScoreCard], str | None]:
    """Return a page of the customers with answers passing the filters, ranked as ranked_customers ranks (by their
    cards under the filters: score, answers, newest answer; by value, the whole customer's order value and newest
    unsatisfied answer), and the next page's cursor (None at the end); at_risk by the whole customer's score.

    Cost: one walk of the stored answers through the sieve (see the module's docstring), a ranked-set look-up a
    5,000 customers found, and the page's cards. A cursor belongs to its query and its filters (ValueError else).
    """
    if sort not in SORTS or order not in ORDERS or limit < 1:
        raise ValueError("sort, order or limit is not valid")
    query = RankedQuery(sort, order, at_risk)
    key = filters_key(filters)
    after = None
    if cursor:
        after = _decode_cursor(cursor, query, (0, 0, 0, 0, "") if sort == "value" else (0, 0, ""), key)
    seen = _walk(store, filters)
    emails = sorted(seen)
    wanted = [*(["score"] if at_risk is not None else []), *(["value", "unhappy"] if sort == "value" else [])]
    whole = _whole_values(store, wanted, emails) if wanted else {}
    ranker = _Walk(store, settings, sort, order, None, None, limit)
    rows: list[tuple[Rank, str]] = []
    for at, email in enumerate(emails):
        if at_risk is not None:
            score = whole["score"][at]
            below = score is not None and round(score, 2) < settings.at_risk_score
            if below is not at_risk:
                continue
        sums = seen[email].sums
        if sort == "value":
            rank = ranker.rank(email, whole["value"][at], whole["unhappy"][at])
        elif sort == "score":
            rank = ranker.rank(email, score_card(email, sums, now_ms).score)
        elif sort == "responses":
            rank = ranker.rank(email, sums.n)
        else:
            rank = ranker.rank(email, seen[email].newest_ms)
        if after is None or rank > after:
            rows.append((rank, email))
    rows.sort()
    page, more = rows[:limit], len(rows) > limit
    cards = filtered_cards(store, settings, [email for _, email in page], now_ms, filters)
    return cards, _encode_cursor(query, page[-1][0], key) if more else None
