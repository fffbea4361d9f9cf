"""The commented answers' index (tracker.store.commented): kept by the outbox forwarder through answers, changed
comments and ratings, and erasures; filled by beat on a Redis from before it; read by the dashboard's newest comments
alike with the search over every answer, passing over an entry left behind."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import World, tracker
from tests.test_layout import ANNA, BJORN, CARL, DINA, four_customers
from tracker.privacy.erase import erase_customer
from tracker.scores.summary import Facets
from tracker.store import commented, keys, time_index
from tracker.web.dashboard.data import comments_of
from workers.celery_app import create_celery

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def indexed(store: Any) -> list[tuple[str, int]]:
    return [row for rows in time_index.window(store.redis, keys.COMMENTED) for row in rows]


def commented_answers(store: Any) -> list[tuple[str, int]]:
    """What the index should hold: every answer holding a comment at its answer time, read off the answers."""
    answers = [answer for answer in store.answers_between("-inf", "+inf") if answer.comment]
    return sorted(((answer.sid, answer.at_ms) for answer in answers), key=lambda row: (row[1], row[0]))


def both_searches(store: Any, facets: Facets, scan: int = 2000) -> tuple[Any, Any]:
    """The dashboard's newest comments through the index, then through the search over every answer."""
    through_index = comments_of(store, None, None, facets, scan=scan)
    state = keys.time_index_state(keys.COMMENTED)
    store.redis.hdel(state, "complete")
    try:
        return through_index, comments_of(store, None, None, facets, scan=scan)
    finally:
        commented.mark_complete(store.redis)


def forget_the_index(store: Any) -> None:
    """Leave the Redis as one written before the index was: none of its keys."""
    members = store.redis.zrangebylex(keys.time_index_directory(keys.COMMENTED), "-", "+")
    store.redis.delete(keys.time_index_directory(keys.COMMENTED), keys.time_index_state(keys.COMMENTED),
                       *(keys.time_index_chunk(keys.COMMENTED, member.rpartition("\t")[2]) for member in members))


def test_the_forwarder_keeps_the_commented_answers_through_changes_and_an_erasure(world: World, store: Any,
                                                                                   settings: Any) -> None:
    assert store.comment_index_complete()  # an empty Redis: nothing left out
    four_customers(world)  # Anna commented, Bjørn commented then changed rating and comment, Carl none, Dina none
    assert [sid for sid, _ in indexed(store)] != [] and indexed(store) == commented_answers(store)
    assert {answer.customer for answer in store.answers_between("-inf", "+inf") if answer.comment} == {ANNA, BJORN}

    world.answer(BJORN, 4, "")  # the comment taken away, the rating the same: the time stays, the entry goes
    assert indexed(store) == commented_answers(store) and len(indexed(store)) == 1
    world.answer(BJORN, 2, "Worse again")  # a new rating moves the answer's time: its entry moves with it
    world.answer(CARL, 5, "Added later")  # a comment added to an answer without one
    assert indexed(store) == commented_answers(store) and len(indexed(store)) == 3

    erase_customer(store, settings, ANNA)
    assert indexed(store) == commented_answers(store)
    assert {answer.customer for answer in comments_of(store, None, None, Facets())[0]} == {BJORN, CARL}
    assert DINA not in {answer.customer for answer in comments_of(store, None, None, Facets())[0]}


def test_the_index_and_the_search_over_every_answer_find_the_same_comments(world: World, store: Any) -> None:
    four_customers(world)
    world.answer(CARL, 5, "Added later")
    for facets in (Facets(), Facets(team="vip"), Facets(brand="zeta"), Facets(scale="nps")):
        through_index, over_answers = both_searches(store, facets)
        assert through_index == over_answers, facets
    assert both_searches(store, Facets(), scan=1)[0] == ([comments_of(store, None, None, Facets())[0][0]], False)


def test_an_entry_left_behind_is_passed_over(world: World, store: Any) -> None:
    four_customers(world)
    (sid, at), carl = indexed(store)[0], store.customer_surveys(CARL)[0].sid
    # A filling that raced a change leaves such entries: an answer without a comment now, or gone; and it never
    # moves an entry a chunk holds (the forwarder's) to the time it read.
    time_index.place(store, keys.COMMENTED, adds=[(carl, at + 1), ("gone", at + 2), (sid, at - 5000)], only_new=True)
    assert (sid, at) in indexed(store) and (sid, at - 5000) not in indexed(store)
    found = list(store.comments_between("-inf", "+inf", newest_first=True))
    assert len(found) == len(indexed(store)) == 4
    shown = sorted(answer.sid for answer in found if answer is not None)
    assert shown == sorted(sid for sid, _ in commented_answers(store))
    assert comments_of(store, None, None, Facets()) == both_searches(store, Facets())[1]


def test_beat_fills_the_index_of_a_redis_from_before_it_once(world: World, store: Any, settings: Any,
                                                             env: dict[str, str]) -> None:
    four_customers(world)
    kept = indexed(store)
    forget_the_index(store)
    assert not store.comment_index_complete() and indexed(store) == []
    assert comments_of(store, None, None, Facets())[0]  # meanwhile the search over every answer finds them
    checked = tracker(env, "check")
    assert checked.returncode == 0 and "index of commented answers is not filled" in checked.stdout

    lease = keys.time_index_lease(keys.COMMENTED)
    store.redis.set(lease, "another", px=60_000)
    assert store.keep_comment_index() is None and not store.comment_index_complete()  # another one is filling
    store.redis.delete(lease)

    app = create_celery(settings)
    assert app.conf.beat_schedule["index-comments"] == {"task": "tracker.index_comments", "schedule": 30.0}
    app.tasks["tracker.index_comments"].apply()  # what beat runs, here in this process
    assert store.comment_index_complete() and indexed(store) == kept == commented_answers(store)
    assert store.keep_comment_index() is None  # complete: one read, nothing filled
    assert not store.redis.exists(lease)
    assert store.fill_comment_index() == 2 and indexed(store) == kept  # filled again: the same entries
    assert "commented answers" not in tracker(env, "check").stdout
