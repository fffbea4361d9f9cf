"""Reads from rollups and ranked sets give what reading every answer and every customer gives, page by page."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.support import drain, tracker
from tracker.config import Settings
from tracker.scores import summary as summaries
from tracker.scores.cards import customer_card
from tracker.scores.maths import score_card
from tracker.scores.ranking import ORDERS, SORTS, aggregate_counts, aggregate_list, ranked_counts, ranked_customers
from tracker.store import Store

NOW_MS = 1_764_547_200_000  # 2025-12-01
SOURCES = ("zendesk", "freshdesk", "import")


def _order(email: str, order_id: str, total: str, kind: str = "order.created") -> dict[str, Any]:
    return {"type": kind, "id": f"evt-{order_id}-{kind}", "occurred_at": "2025-10-01T09:00:00Z",
            "order": {"id": order_id, "total": total, "currency": "NOK"},
            "customer": {"id": f"c-{email}", "email": email, "name": email.split("@")[0].title()}}


@pytest.fixture
def filled(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings, post_event: Any) -> list[str]:
    """Forty customers: answers on several sources, agents, teams and days; orders, some of equal totals."""
    rng = random.Random(20261130)
    rows = ["email,rating,scale,answered_at,ticket,source,agent,team,comment"]
    emails = [f"c{i:02d}@example.no" for i in range(40)]
    for i, email in enumerate(emails):
        for j in range(rng.choice((0, 0, 1, 2, 3, 5))):
            rating = rng.randint(1, 5)
            day = rng.randint(1, 28)
            source = rng.choice(SOURCES)
            agent = rng.choice(("ola", "kari", ""))
            team = rng.choice(("billing", "support", ""))
            rows.append(f"{email},{rating},csat5,2025-{rng.choice((10, 11))}-{day:02d}T09:00:00Z,T-{i}-{j},"
                        f"{source},{agent},{team},{'why' if rating < 3 else ''}")
        if i % 3 == 0:
            body = post_event("standard", _order(email, f"O-{i}", rng.choice(("100.00", "250.00", "99.50"))))
            assert body.status_code == 202, body.get_data(as_text=True)
        elif i % 7 == 1:
            assert post_event("standard", _order(email, f"O-{i}", "0.00")).status_code == 202
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert tracker(env, "import-ratings", str(path)).returncode == 0
    while drain(store, settings):
        pass
    return emails


def _oracle(store: Store, settings: Settings, emails: list[str], sort: str, order: str,
            at_risk: bool | None) -> list[str]:
    """Rank every customer the slow way: each one's card and answers, read one by one."""
    sign = -1 if order == "desc" else 1
    ranked = []
    for email in emails:
        card = customer_card(store, settings, email, NOW_MS)
        if card is None:
            continue
        if at_risk is not None and (card.score is not None and card.score < settings.at_risk_score) is not at_risk:
            continue
        answers = store.customer_responses(email, 0, 1000)
        unhappy = max((a.at_ms for a in answers if not a.counted.satisfied), default=None)
        value = int(Decimal(card.orders.total) * 100) if card.orders and card.orders.total else 0
        if sort == "score":
            rank: tuple[Any, ...] = (int(card.score is None), sign * (card.score or 0.0), email)
        elif sort == "responses":
            rank = (0, sign * card.responses, email)
        elif sort == "recent":
            last = card.last_response.at_ms if card.last_response else None
            rank = (int(not last), sign * (last or 0), email)
        else:
            rank = (0, sign * value, int(unhappy is None), -(unhappy or 0), email)
        ranked.append((rank, email))
    return [email for _, email in sorted(ranked)]


@pytest.mark.parametrize("at_risk", [None, True, False])
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("order", ORDERS)
def test_ranked_pages_list_customers_as_reading_every_customer_does(
        filled: list[str], store: Store, settings: Settings, sort: str, order: str, at_risk: bool | None) -> None:
    expected = _oracle(store, settings, filled, sort, order, at_risk)
    got: list[str] = []
    cursor = None
    for _ in range(100):
        cards, cursor = ranked_customers(store, settings, NOW_MS, at_risk=at_risk, sort=sort, order=order,
                                         limit=4, cursor=cursor)
        got += [card.id for card in cards]
        if cursor is None:
            break
    assert got == expected


def _totals_cards(totals: Any, anchor: int) -> tuple[Any, ...]:
    return (score_card("all", totals.total, anchor),
            {source: score_card(source, sums, anchor) for source, sums in totals.per_source.items()},
            {day: n for day, n in totals.satisfied_by_day.items() if n}, totals.distribution)


@pytest.mark.parametrize("filters", [summaries.Facets(), summaries.Facets(source="zendesk"),
                                     summaries.Facets(source="import"), summaries.Facets(agent="freshdesk:ola")])
@pytest.mark.parametrize("days", [(date(2025, 10, 1), date(2025, 11, 30)), (date(2025, 10, 10), date(2025, 11, 3))])
def test_summary_from_rollups_equals_the_sum_of_its_answers(
        filled: list[str], store: Store, filters: summaries.Facets, days: tuple[date, date]) -> None:
    first, last = days
    rolled = summaries._from_rollups(store, filters, first, last)
    assert rolled is not None
    read = summaries._from_answers(store, filters, first, last)
    assert read.total.n > 0
    assert _totals_cards(rolled, NOW_MS) == _totals_cards(read, NOW_MS)


def test_agents_are_named_from_one_place_in_one_command(store: Store, settings: Settings, post_event: Any) -> None:
    event = {"type": "ticket.solved", "id": "evt-named", "occurred_at": "2025-11-02T09:00:00Z",
             "ticket": {"id": "T-9", "status": "solved", "agent": {"id": "a-1", "name": "Ola Nordmann"}},
             "customer": {"email": "kari@example.no"}}
    assert post_event("standard", event).status_code == 202
    drain(store, settings)
    assert store.agent_names(["standard:a-1", "standard:nobody"]) == {"standard:a-1": "Ola Nordmann",
                                                                      "standard:nobody": None}
    assert aggregate_list(store, "agent", NOW_MS) == []  # named, but nothing counted yet


@pytest.mark.parametrize("kind", ["agent", "team", "source", "agent@bot"])
def test_a_kinds_ranked_counts_are_what_reading_every_entity_gives(filled: list[str], store: Store,
                                                                    kind: str) -> None:
    # The dashboard's tables and its agent picker read the ranked set: one command, however many agents.
    counted = aggregate_counts(store, kind)
    assert ranked_counts(store, kind) == sorted(counted, key=lambda row: (-row[1], row[0]))
    if kind != "agent@bot":
        assert counted
