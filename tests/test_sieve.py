"""Answers and sent surveys read under filters (tracker.store.sieve): Redis sends back only the surveys that may pass,
and what the reader keeps is what it kept reading every survey, for surveys in their hash, packed or filed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import World, stored_surveys
from tests.test_settle import hash_value
from tracker.scores.summary import Facets
from tracker.store import keys, sieve
from tracker.store.base import COMPACT_HASH_VALUE, REDIS_DEFAULT_HASH_VALUE

BOTH_STORES = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)

# Each customer's ticket: the values a filter compares, some of them made to trip a sieve (a tag that JSON escapes,
# tags outside ASCII, an agent id with a colon, a free-mail and a company address, a team named like a brand).
TICKETS = [
    ("T-1", "anna@nordvik.no", {"team": "billing", "brand": "acme", "channel": "email", "tags": ["vip", 'say "hi"'],
                                "agent": {"id": "a:7", "name": "Ola"}}),
    ("T-2", "bjorn@gmail.com", {"team": "acme", "brand": "zeta", "channel": "chat", "tags": ["refund", "ærlig"],
                                "agent": {"id": "a-8", "name": "Per"}, "resolved_by": "bot"}),
    ("T-3", "carl@nordvik.no", {"team": "billing", "brand": "zeta", "channel": "chat", "tags": ["vip", "back\\slash"],
                                "agent": {"id": "a:7", "name": "Ola"}}),
    ("T-4", "dina@firma.se", {"team": "shipping", "brand": "acme", "channel": "phone", "tags": [],
                              "agent": {"id": "b-1", "name": "Liv"}, "resolved_by": "human"}),
]
VALUES = {
    "source": ["standard", "zendesk"], "brand": ["acme", "zeta", "billing"], "team": ["billing", "acme", "nobody"],
    "agent": ["standard:a:7", "standard:a-8", "zendesk:a-8"], "scale": ["csat5", "nps"],
    "channel": ["email", "chat", "phone"], "tag": ["vip", 'say "hi"', "ærlig", "back\\slash", "refund", "none"],
    "organisation": ["nordvik.no", "gmail.com", "firma.se"], "resolved_by": ["bot", "human"],
}


@pytest.fixture
def compact(store: Any) -> Iterator[None]:
    """Redis set as docker-compose.yml sets it, where settled surveys are filed (tests/test_settle.py)."""
    hash_value(store, COMPACT_HASH_VALUE)
    yield
    hash_value(store, REDIS_DEFAULT_HASH_VALUE)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any, compact: None) -> World:
    world = World(post_event, store, env, smtp, client)
    for n, (ticket, email, fields) in enumerate(TICKETS):
        if n < 3:
            world.solved_and_answered(ticket, email, n + 2, "Fine" if n else "", **fields)
        else:
            world.solve(ticket, email, **fields)
            assert world.send() == ["sent"]  # sent, never answered
    return world


def _filters() -> list[dict[str, str]]:
    """Every single filter and every pair of filters of two dimensions, each with every value above."""
    singles = [{name: value} for name, values in VALUES.items() for value in values]
    pairs = [{**a, **b} for a, b in itertools.combinations(singles, 2) if a.keys() != b.keys()]
    return singles + pairs


def _kept(store: Any, where: dict[str, str] | None, filters: Facets) -> tuple[list[str], list[str]]:
    answers = [a.sid for a in store.answers_between("-inf", "+inf", where=where) if Facets.of_answer(a).passes(filters)]
    surveys = [s.sid for s in store.surveys_between("-inf", "+inf", where=where) if Facets.of_survey(s).passes(filters)]
    return answers, surveys


@BOTH_STORES
def test_every_filter_keeps_what_reading_every_survey_kept_in_hashes_and_filed(world: World, store: Any) -> None:
    sids = sorted(stored_surveys(store))
    assert len(sids) == 4
    for settled in (False, True):
        if settled:
            assert store.settle(sids) == 4  # packed and filed: the organisation derived, the values in one blob
            assert not any(store.redis.exists(keys.survey(sid)) for sid in sids)
        passing = 0
        for where in _filters():
            filters = Facets(**where)
            kept = _kept(store, where, filters)
            assert kept == _kept(store, None, filters), (settled, where)
            passing += bool(kept[0] or kept[1])
        assert passing > 100  # the filters are not all empty-handed


@BOTH_STORES
def test_the_sieve_sends_back_only_surveys_holding_every_value(world: World, store: Any) -> None:
    sids = sorted(stored_surveys(store))
    store.settle(sids[:2])  # two filed, two in their hashes
    assert sieve.holding(store, sids, []) == sids
    assert sieve.holding(store, sids, ["nobody"]) == []
    assert sieve.holding(store, [*sids, "gone"], sieve.needles({"team": "billing", "channel": "chat"})) == [
        s.sid for s in store.surveys_between("-inf", "+inf") if s.team == "billing" and s.channel == "chat"]
    assert len(sieve.holding(store, sids, sieve.needles({"channel": "chat"}))) == 2


def test_only_values_stored_as_they_are_compared_are_asked_for() -> None:
    assert sieve.needles({"team": "billing", "agent": "zendesk:a:7", "brand": None, "channel": ""}) == [
        "billing", "a:7"]
    assert sieve.needles({"tag": 'say "hi"'}) == [] and sieve.needles({"tag": "back\\slash"}) == []
    assert sieve.needles({"tag": "ærlig", "team": "line\x1fbreak"}) == ["ærlig"]
