"""Reads from rollups and ranked sets give what reading every answer and every customer gives, page by page."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.ranked_data import NOW_MS, fill_forty, rank_every_customer
from tests.support import drain
from tracker.config import Settings
from tracker.scores import summary as summaries
from tracker.scores.maths import score_card
from tracker.scores.ranking import ORDERS, SORTS, aggregate_counts, aggregate_list, ranked_counts, ranked_customers
from tracker.store import Store


@pytest.fixture
def filled(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings, post_event: Any) -> list[str]:
    return fill_forty(env, tmp_path, store, settings, post_event)


@pytest.mark.parametrize("at_risk", [None, True, False])
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("order", ORDERS)
def test_ranked_pages_list_customers_as_reading_every_customer_does(
        filled: list[str], store: Store, settings: Settings, sort: str, order: str, at_risk: bool | None) -> None:
    expected = rank_every_customer(store, settings, filled, sort, order, at_risk)
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
