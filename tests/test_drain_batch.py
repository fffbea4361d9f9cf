"""The drain's batches: the outbox forwarded once per drain with an entity's steps of a batch summed, exactly once
through a forwarder that died part of the way; the tickets read at once per batch."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import World, drain, indexed, iso, solved_event
from tests.test_outbox import assert_equals_a_rebuild, assert_same, state
from tracker.ingest.survey_events import IMPORTED
from tracker.model import Survey
from tracker.store import keys
from tracker.surveys.tokens import survey_id

DAY_MS = 86_400_000
pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def now_ms() -> int:
    return int(time.time() * 1000)


def same_bucket(count: int) -> list[str]:
    """Return count survey ids of one survey bucket (so their entries share an outbox)."""
    found: dict[int, list[str]] = {}
    for n in range(10_000):
        sid = f"batch{n:04d}"
        group = found.setdefault(keys.bucket_of(sid), [])
        group.append(sid)
        if len(group) == count:
            return group
    raise AssertionError("no bucket with enough ids")


def surveys(store: Any, sids: list[str], teams: list[str], at: int) -> list[Survey]:
    return [store.create_survey(Survey(sid=sid, tkey=f"standard:T-{sid}", kind="ticket", scale="csat5",
                                       customer=f"{sid}@example.no", source="standard", status="sending",
                                       agent_id="a-7", team=team, brand="acme", created_at_ms=at))
            for sid, team in zip(sids, teams, strict=True)]


def held(store: Any, bucket: int) -> None:
    """Another forwarder holds the bucket: writers leave their entries to it (or beat)."""
    store.forward_wait_s = 0
    store.redis.set(keys.outbox_lease(bucket), "a forwarder that died", px=60_000)


def test_a_forwarder_that_died_part_of_the_way_through_summed_steps_neither_loses_nor_doubles_one(store, settings):
    at = now_ms()
    sids = same_bucket(3)
    bucket = keys.bucket_of(sids[0])
    held(store, bucket)
    for survey in surveys(store, sids, ["t-one", "crash", "crash"], at):
        assert store.mark_sent(survey, at, at + DAY_MS)
    entries = store.outbox_entries(bucket)
    assert len(entries) == 3 and store.aggregate("overall", "all").sent == 0  # nothing forwarded yet
    # The dead forwarder had applied the first entry and two steps (customer, source) of the second.
    (seq1, body1), (seq2, body2), _ = entries
    pipe = store.redis.pipeline(transaction=False)
    store.queue_steps(pipe, bucket, seq1, body1)
    assert store.queue_steps(pipe, bucket, seq2, body2, count=2) == [("customer", f"{sids[1]}@example.no"),
                                                                      ("source", "standard")]
    assert all(reply[0] == 1 for reply in pipe.execute())
    raw = store.redis.zrange(keys.outbox(bucket), 0, -1, withscores=True)
    store.redis.delete(keys.outbox_lease(bucket))  # its lease ran out
    assert store.forward_outbox(bucket) == 3
    assert not store.outbox_waiting()
    # overall, source, brand and agent had some of their entries applied, team crash none, t-one all.
    for kind, ident, sent in (("overall", "all", 3), ("source", "standard", 3), ("brand", "acme", 3),
                              ("agent", "standard:a-7", 3), ("team", "crash", 2), ("team", "t-one", 1),
                              *(("customer", f"{sid}@example.no", 1) for sid in sids)):
        assert store.aggregate(kind, ident).sent == sent, (kind, ident)
    assert len(indexed(store, "sent")) == 3
    assert sorted(store.ids("team")) == ["crash", "t-one"]
    assert_equals_a_rebuild(store, settings)
    # As if the forwarder died after every step and side effect, before the entries left the outbox.
    live = state(store)
    store.redis.zadd(keys.outbox(bucket), dict(raw))
    assert store.forward_outbox(bucket) == 3
    assert_same(live, state(store))


def test_an_entity_both_retired_and_counted_in_one_batch_takes_each_step_in_turn(store, settings):
    old, new = same_bucket(2)
    bucket = keys.bucket_of(old)
    then = now_ms() - 400 * DAY_MS
    (first,) = surveys(store, [old], ["crash"], then)
    assert store.mark_sent(first, then, then + 30 * DAY_MS)  # forwarded at once
    assert store.aggregate("overall", "all").sent == 1
    held(store, bucket)
    with pytest.raises(Exception, match="did not reach entry"):  # retired; its entry waits for the lease's holder
        store.retire_survey(old, first.customer, now_ms() - 365 * DAY_MS, now_ms())
    (second,) = surveys(store, [new], ["crash"], now_ms())
    assert store.mark_sent(second, now_ms(), now_ms() + DAY_MS)
    assert [body["op"] for _, body in store.outbox_entries(bucket)] == ["retire", "sent"]
    store.redis.delete(keys.outbox_lease(bucket))
    assert store.forward_outbox(bucket) == 2
    # The retired send moved to the retired sums, the new one counts live: neither step skipped for the other.
    retired = {ident: agg for ident, agg, _ in store.retired_aggregates()}
    assert retired[("overall", "all")].sent == 1 and retired[("team", "crash")].sent == 1
    assert store.aggregate("overall", "all").sent == 2  # live sums keep what was retired, and the new send
    assert_equals_a_rebuild(store, settings)


def test_the_drain_forwards_its_answers_once_at_its_end_and_leaves_a_held_bucket_to_its_holder(world, store,
                                                                                                settings):
    # Answers collected elsewhere for tickets solved long ago: each makes and answers a survey (two entries).
    for n in range(12):
        email = f"p{n}@example.no"
        body = solved_event(ticket=f"T-{n}", email_address=email, at=iso(40 * 86400))
        body["customer"] = {"id": f"c-{n}", "email": email}
        world.event(body)
        world.event({"type": "survey.answered", "id": f"a-{n}", "occurred_at": iso(39 * 86400),
                     "customer": {"id": f"c-{n}"}, "ticket": {"id": f"T-{n}"},
                     "answer": {"scale": "csat5", "rating": 1 + n % 5}})
    busy = keys.bucket_of(survey_id("standard:T-0", IMPORTED))  # the survey the first answer is counted on
    store.redis.set(keys.outbox_lease(busy), "another forwarder at work", px=60_000)
    assert drain(store, settings) == 24
    waiting = store.outbox_waiting()
    assert set(waiting) == {busy}  # every other bucket forwarded; the held one left to its holder, not waited for
    store.redis.delete(keys.outbox_lease(busy))
    store.forward_all()
    assert not store.outbox_waiting()
    assert store.aggregate("overall", "all").n == 12 and store.aggregate("overall", "all").sent == 12
    assert len(indexed(store, "resp")) == 12
    assert_equals_a_rebuild(store, settings)
