"""The at-risk ranking (tracker.store.risk): kept by every writer, filled by beat for the configured threshold (and
again after a change of it), read by the at-risk list by value a page at a time, brought over by upgrade-store."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from tests.ranked_data import NOW_MS, fill_forty, order_event, rank_every_customer
from tests.support import drain, refused_as_behind, tracker
from tests.test_buckets import monitored
from tracker.config import Settings
from tracker.scores.ranking import ORDERS, ranked_customers
from tracker.store import Store, keys
from workers.celery_app import create_celery


@pytest.fixture
def filled(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings, post_event: Any) -> list[str]:
    return fill_forty(env, tmp_path, store, settings, post_event)


@pytest.fixture
def kept(store: Store, settings: Settings) -> Store:
    """The ranking kept from the first write on, as beat fills it on an empty Redis (the store fixture does)."""
    assert store.risk_ranking_ready(settings.at_risk_score) and not store.redis.exists(keys.RANK_RISK)
    return store


@pytest.fixture
def unkept(store: Store, settings: Settings) -> Store:
    """The ranking never filled: as on a Redis beat has not reached yet."""
    store.redis.delete(keys.RISK_STATE)
    return store


def at_risk_by_value(store: Store, settings: Settings, order: str = "desc", limit: int = 4,
                     sort: str = "value") -> list[str]:
    """Read the whole at-risk list by value (or another order), page after page, as the API does."""
    got: list[str] = []
    cursor = None
    for _ in range(100):
        cards, cursor = ranked_customers(store, settings, NOW_MS, at_risk=True, sort=sort, order=order,
                                         limit=limit, cursor=cursor)
        got += [card.id for card in cards]
        if cursor is None:
            return got
    raise AssertionError("the pages did not end")


def ranked(store: Store) -> set[str]:
    return set(store.redis.zrange(keys.RANK_RISK, 0, -1))


OTHER_SORTS = {"recent": (keys.RANK_RECENT, keys.RISK_RECENT), "responses": (keys.RANK_RESPONSES, keys.RISK_RESPONSES)}


def assert_ranked_as_every_customer_says(store: Store, settings: Settings, emails: list[str]) -> None:
    expected = rank_every_customer(store, settings, emails, "value", "desc", True)
    assert expected, "nobody is at risk: the test shows nothing"
    assert store.risk_view(settings.at_risk_score) is not None
    assert ranked(store) == set(expected)
    for ranks, risk in OTHER_SORTS.values():  # the other orders' sets: the same customers, scored as their ranks
        assert dict(store.redis.zrange(risk, 0, -1, withscores=True)) == {
            email: store.redis.zscore(ranks, email) for email in expected}
    for sort in ("value", *OTHER_SORTS):
        for order in ORDERS:
            expected = rank_every_customer(store, settings, emails, sort, order, True)
            assert at_risk_by_value(store, settings, order, sort=sort) == expected, (sort, order)


@pytest.mark.parametrize("order", ORDERS)
def test_the_writers_keep_the_ranking_and_its_pages_are_what_reading_every_customer_gives(
        kept: Store, filled: list[str], store: Store, settings: Settings, order: str) -> None:
    expected = rank_every_customer(store, settings, filled, "value", order, True)
    assert len(expected) > 4 and ranked(store) == set(expected)
    for limit in (1, 3, 50):
        assert at_risk_by_value(store, settings, order, limit) == expected
    for sort in OTHER_SORTS:
        expected = rank_every_customer(store, settings, filled, sort, order, True)
        for limit in (1, 3, 50):
            assert at_risk_by_value(store, settings, order, limit, sort) == expected, (sort, limit)


def test_a_fill_ranks_what_was_written_before_it_and_a_second_one_has_nothing_to_do(
        unkept: Store, filled: list[str], store: Store, settings: Settings) -> None:
    assert not store.risk_ranking_ready(settings.at_risk_score) and store.risk_view(settings.at_risk_score) is None
    walked = at_risk_by_value(store, settings)  # the ranking not filled: the value ranking is walked
    assert walked == rank_every_customer(store, settings, filled, "value", "desc", True)
    assert store.keep_risk_ranking(settings.at_risk_score) == len(walked)
    assert store.keep_risk_ranking(settings.at_risk_score) is None
    assert at_risk_by_value(store, settings) == walked
    assert_ranked_as_every_customer_says(store, settings, filled)


def test_a_new_threshold_is_walked_the_old_way_until_beat_fills_the_ranking_for_it(
        kept: Store, filled: list[str], store: Store, settings: Settings) -> None:
    higher = replace(settings, at_risk_score=80.0)
    before = rank_every_customer(store, higher, filled, "value", "desc", True)
    assert len(before) > len(rank_every_customer(store, settings, filled, "value", "desc", True))
    assert store.risk_view(80.0) is None  # kept for 50: readers of 80 walk
    assert at_risk_by_value(store, higher) == before
    app = create_celery(higher)
    assert app.conf.beat_schedule["rank-at-risk"] == {"task": "tracker.rank_at_risk", "schedule": 30.0}
    app.tasks["tracker.rank_at_risk"].apply()  # what beat runs, here in this process
    assert store.risk_ranking_ready(80.0) and store.risk_view(settings.at_risk_score) is None
    assert_ranked_as_every_customer_says(store, higher, filled)
    assert store.keep_risk_ranking(80.0) is None


def test_answers_orders_an_erasure_and_a_rebuild_each_leave_the_ranking_as_every_customer_says(
        kept: Store, filled: list[str], store: Store, settings: Settings, env: dict[str, str], tmp_path: Any,
        post_event: Any) -> None:
    at_risk = rank_every_customer(store, settings, filled, "value", "desc", True)
    happy = next(email for email in rank_every_customer(store, settings, filled, "value", "desc", False)
                 if store.customer_responses(email, 0, 10))
    # A happy customer answers badly three times and becomes at risk; the most valuable one at risk orders more.
    rows = ["email,rating,scale,answered_at,ticket,source,agent,team,comment"]
    rows += [f"{happy},1,csat5,2025-11-2{n}T09:00:00Z,T-new-{n},zendesk,ola,billing,bad" for n in range(3)]
    path = tmp_path / "more.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert tracker(env, "import-ratings", str(path)).returncode == 0
    assert post_event("standard", order_event(at_risk[-1], "O-more", "5000.00")).status_code == 202
    while drain(store, settings):
        pass
    assert happy in ranked(store)
    assert at_risk_by_value(store, settings)[0] == at_risk[-1]  # the most valuable now
    assert_ranked_as_every_customer_says(store, settings, filled)
    erased = at_risk[0]
    assert tracker(env, "erase", erased).returncode == 0
    assert erased not in ranked(store)
    assert_ranked_as_every_customer_says(store, settings, [email for email in filled if email != erased])
    store.redis.zadd(keys.RANK_SCORE, {happy: 99.0})  # a score gone wrong: rebuild-scores puts it right
    lost, stray = at_risk[1], next(email for email in filled if email not in ranked(store) and email != erased)
    store.redis.zrem(keys.RANK_RISK, lost)  # and the ranking itself gone wrong both ways
    store.redis.zadd(keys.RANK_RISK, {stray: 5.0})
    assert tracker(env, "rebuild-scores").returncode == 0
    assert happy in ranked(store) and lost in ranked(store) and stray not in ranked(store)
    assert_ranked_as_every_customer_says(store, settings, [email for email in filled if email != erased])


def test_a_page_reads_the_page_from_the_ranking_not_every_customer_at_risk(
        unkept: Store, filled: list[str], store: Store, settings: Settings, redis_url: str) -> None:
    def reads(limit: int) -> list[list[str]]:
        with monitored(redis_url) as commands:
            ranked_customers(store, settings, NOW_MS, at_risk=True, sort="value", order="desc", limit=limit,
                             cursor=None)
        return [command for command in commands if command and command[0].upper().startswith("Z")]

    walked = reads(2)  # not filled: the value ranking walked, or every customer at risk read
    assert any(command[0].upper() == "ZRANGEBYSCORE" and command[1] == keys.RANK_SCORE for command in walked) \
        or any(command[1] == keys.RANK_VALUE and command[0].upper() in ("ZRANGE", "ZREVRANGE") for command in walked)
    store.keep_risk_ranking(settings.at_risk_score)
    paged = reads(2)
    slices = [command for command in paged if command[0].upper() in ("ZRANGE", "ZREVRANGE")]
    assert slices and all(command[1] == keys.RANK_RISK for command in slices)
    assert all(int(command[3]) - int(command[2]) + 1 <= 8 for command in slices)  # what the page needs, or 8
    assert not any(command[0].upper() == "ZRANGEBYSCORE" for command in paged)
    assert not any(command[1] in (keys.RANK_SCORE, keys.RANK_VALUE) for command in paged)


@pytest.mark.parametrize("sort", sorted(OTHER_SORTS))
def test_a_page_by_newest_answer_or_by_answers_reads_the_page_from_its_at_risk_set(
        unkept: Store, filled: list[str], store: Store, settings: Settings, redis_url: str, sort: str) -> None:
    ranks, risk = OTHER_SORTS[sort]

    def reads(limit: int, order: str) -> list[list[str]]:
        with monitored(redis_url) as commands:
            ranked_customers(store, settings, NOW_MS, at_risk=True, sort=sort, order=order, limit=limit, cursor=None)
        return [command for command in commands if command and command[0].upper().startswith("Z")]

    walked = reads(2, "desc")  # not filled: the order's ranked set walked, or every customer at risk read
    assert any(command[1] in (ranks, keys.RANK_SCORE) for command in walked)
    store.keep_risk_ranking(settings.at_risk_score)
    for order in ORDERS:
        paged = reads(2, order)
        slices = [command for command in paged if command[0].upper().startswith(("ZRANGE", "ZREVRANGE"))]
        assert slices and all(command[1] == risk for command in slices), paged
        assert not any(command[1] in (ranks, keys.RANK_SCORE, keys.CUSTOMERS) for command in paged), paged


def test_a_ranking_filled_before_its_other_orders_existed_is_walked_until_beat_fills_it_again(
        kept: Store, filled: list[str], store: Store, settings: Settings) -> None:
    # As the code before them left a Redis: the value ranking filled and marked built, no "sets", no other orders.
    store.redis.hdel(keys.RISK_STATE, "sets")
    store.redis.delete(keys.RISK_RECENT, keys.RISK_RESPONSES)
    assert not store.risk_ranking_ready(settings.at_risk_score) and store.risk_view(settings.at_risk_score) is None
    for sort in ("value", *OTHER_SORTS):  # walked meanwhile, and right
        assert at_risk_by_value(store, settings, sort=sort) == rank_every_customer(
            store, settings, filled, sort, "desc", True)
    assert store.keep_risk_ranking(settings.at_risk_score) == len(ranked(store)) > 0
    assert store.redis.hget(keys.RISK_STATE, "sets") == "value,recent,responses"
    assert_ranked_as_every_customer_says(store, settings, filled)


def test_a_layout_6_redis_is_refused_until_upgrade_store_moves_its_ranked_sets_and_fills_the_ranking(
        filled: list[str], store: Store, settings: Settings, env: dict[str, str]) -> None:
    for old, new in keys.OLD_RANKS.items():  # as layout 6 kept them
        rows = store.redis.zrange(new, 0, -1, withscores=True)
        assert rows
        store.redis.zadd(old, dict(rows))
        store.redis.delete(new)
    store.redis.delete(keys.RANK_RISK, keys.RISK_STATE)
    store.redis.set(keys.LAYOUT, keys.LAYOUT_SETTLED)
    refused_as_behind(env)
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    at_risk = rank_every_customer(store, settings, filled, "value", "desc", True)
    assert f"{len(at_risk)} customers at risk ranked" in upgraded.stdout and "rebuilt" not in upgraded.stdout
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert not any(store.redis.exists(old) for old in keys.OLD_RANKS)
    assert_ranked_as_every_customer_says(store, settings, filled)
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 places in the ranked sets moved" in again.stdout
    assert "already" in again.stdout


def test_check_notes_a_ranking_not_filled_for_the_threshold_until_beat_fills_it(
        unkept: Store, store: Store, settings: Settings, env: dict[str, str]) -> None:
    result = tracker(env, "check")
    assert result.returncode == 0 and result.stderr == "", result.stderr  # advice, not a problem
    notes = [line for line in result.stdout.splitlines() if "at-risk ranking" in line]
    assert len(notes) == 1 and notes[0].lstrip().startswith("note") and "TRACKER_AT_RISK_SCORE=50" in notes[0]
    store.keep_risk_ranking(settings.at_risk_score)
    assert "at-risk ranking" not in tracker(env, "check").stdout


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", str(10 ** 400), "1e308"])
def test_a_cursor_holding_a_number_no_rank_holds_is_refused_with_a_clear_error(
        kept: Store, filled: list[str], store: Store, client: Any, number: str) -> None:
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    page = client.get("/api/v1/customers?at_risk=true&limit=2", headers=auth)
    assert page.status_code == 200 and page.get_json()["next_cursor"]
    state = json.loads(base64.urlsafe_b64decode(page.get_json()["next_cursor"] + "=="))
    for place in range(len(state["k"]) - 1):  # every number of the rank in turn
        forged = {**state, "k": [*state["k"][:place], "@", *state["k"][place + 1:]]}
        text = json.dumps(forged, separators=(",", ":")).replace('"@"', number)
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        answer = client.get(f"/api/v1/customers?at_risk=true&limit=2&cursor={cursor}", headers=auth)
        assert answer.status_code == 422, (number, place, answer.get_data(as_text=True))
        assert "cursor" in answer.get_json()["errors"], answer.get_json()


def test_a_filling_that_died_holds_others_off_until_its_lease_ends_then_the_next_beat_tick_fills(
        unkept: Store, filled: list[str], store: Store, settings: Settings) -> None:
    # A fill killed after it named the threshold and placed nothing: the state says 50, not filled; its lease held.
    store.redis.hset(keys.RISK_STATE, "threshold", "50.0")
    store.redis.set(keys.RISK_LEASE, "dead-filler", px=60_000)
    assert store.keep_risk_ranking(settings.at_risk_score) is None  # another holds the lease: nothing done
    assert store.risk_view(settings.at_risk_score) is None and not ranked(store)
    assert at_risk_by_value(store, settings) == rank_every_customer(store, settings, filled, "value", "desc", True)
    store.redis.delete(keys.RISK_LEASE)  # as its TTL would
    assert store.keep_risk_ranking(settings.at_risk_score) == len(ranked(store)) > 0
    assert not store.redis.exists(keys.RISK_LEASE)  # let go once filled
    assert_ranked_as_every_customer_says(store, settings, filled)
