"""The outbox: answers, sends, erasures and retirements reach every aggregate once, in order, through a crash;
a rebuild equals the live aggregates, rollups and ranked sets."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from tests.support import World, drain, indexed, iso, solved_event, stored_surveys, wait_until
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.mail.smtp import SmtpSender
from tracker.model import COUNTS, SUMS, Survey, day_of
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.scores.rebuild import compute_rebuild, rebuild_scores
from tracker.store import keys
from tracker.store.outbox import OutboxStuck
from tracker.store.risk import unhappy_place
from tracker.store.rollups import cross_label
from tracker.store.sums import SUM_FIELDS
from tracker.store.survey_codes import expanded
from tracker.surveys import due

DAY_MS = 86_400_000
# Every test twice: on a standalone Redis and on a 3-master Redis Cluster (every script and command one slot).
pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)
RANKS = (keys.RANK_SCORE, keys.RANK_RESPONSES, keys.RANK_RECENT, keys.RANK_UNHAPPY)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def now_ms() -> int:
    return int(time.time() * 1000)


def _answered_long_ago(world: World, ticket: str, email: str, rating: int, days_ago: int) -> None:
    """Solve, survey and answer a ticket days_ago, through the real send and answer paths (in any order: the answer
    goes to this ticket's survey)."""
    store = world.store
    then = now_ms() - days_ago * DAY_MS
    body = solved_event(ticket=ticket, email_address=email, at=iso(days_ago * 86400 + 120))
    body["customer"] = {"id": f"c-{email.split('@')[0]}", "email": email, "name": "Old"}
    world.event(body)
    drain(store, load_settings({**world.env, "TRACKER_SURVEY_EXPIRY_DAYS": str(days_ago + 20)}))
    settings = load_settings({**world.env, "TRACKER_SURVEY_THROTTLE_DAYS": "0"})
    claimed, members = due.sweep(store, then)
    with SmtpSender(settings.smtp_url) as sender:
        assert [due.send_due(store, settings, sender, m, claimed, then).status for m in members] == ["sent"]
    (survey,) = [survey for survey in store.customer_surveys(email) if survey.tkey.endswith(f":{ticket}")]
    record_answer(store, world.settings, survey, rating, "", then + 60_000)


def state(store: Any) -> dict[str, Any]:
    """Everything the outbox writes and a rebuild rewrites: aggregates, rollups, indexes, ranked sets, unhappy
    answers."""
    ids = {kind: sorted(store.ids(kind)) for kind in keys.AGGREGATE_KINDS}
    return {
        "ids": ids,
        "aggregates": {(kind, ident): store.aggregate(kind, ident) for kind in ids for ident in ids[kind]},
        "rollups": {(kind, ident): store.rollup_fields(kind, ident) for kind in ids for ident in ids[kind]
                    if kind != "customer"},
        "ranks": {rank: dict(store.redis.zrange(rank, 0, -1, withscores=True)) for rank in (
            *RANKS, *(keys.entity_rank(kind) for kind in keys.AGGREGATE_KINDS if kind != "customer"))},
        "unhappy": {email: dict(store.redis.zrange(keys.customer(email, "unhappy"), 0, -1, withscores=True))
                    for email in ids["customer"]},
        "risk": [sorted(store.redis.zrange(risk, 0, -1)) for risk in (keys.RANK_RISK, keys.RISK_RECENT,
                                                                         keys.RISK_RESPONSES)],
    }


def assert_risk_follows_the_ranks(store: Any) -> None:
    """The at-risk ranking holds what the score, value and unhappy ranked sets say, for the threshold it is kept for
    (the store fixture keeps it, as beat does)."""
    threshold = float(store.redis.hget(keys.RISK_STATE, "threshold"))
    scores, values, unhappy = (dict(store.redis.zrange(rank, 0, -1, withscores=True))
                               for rank in (keys.RANK_SCORE, keys.RANK_VALUE, keys.RANK_UNHAPPY))
    wanted = {email: values[email] if values.get(email, 0) > 0 else unhappy_place(unhappy.get(email))
              for email, score in scores.items() if round(score, 2) < threshold}
    have = dict(store.redis.zrange(keys.RANK_RISK, 0, -1, withscores=True))
    assert have.keys() == wanted.keys()
    assert all(close(have[email], place) for email, place in wanted.items()), (have, wanted)
    for rank, risk in ((keys.RANK_RECENT, keys.RISK_RECENT), (keys.RANK_RESPONSES, keys.RISK_RESPONSES)):
        ranks = dict(store.redis.zrange(rank, 0, -1, withscores=True))
        assert dict(store.redis.zrange(risk, 0, -1, withscores=True)) == {email: ranks[email] for email in wanted}


def close(left: float, right: float) -> bool:
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(live: dict[str, Any], other: dict[str, Any]) -> None:
    assert live["risk"] == other["risk"]
    assert live["ids"] == other["ids"]
    for ident, agg in live["aggregates"].items():
        again = other["aggregates"][ident]
        for name in (*COUNTS, *SUMS):
            assert close(getattr(agg, name), getattr(again, name)), (ident, name, agg, again)
        assert agg.days == again.days, ident
    assert live["rollups"].keys() == other["rollups"].keys()
    for ident, rollup in live["rollups"].items():
        assert rollup.keys() == other["rollups"][ident].keys(), ident
        for name, value in rollup.items():
            assert close(value, other["rollups"][ident][name]), (ident, name)
    for rank, scores in live["ranks"].items():
        assert scores.keys() == other["ranks"][rank].keys(), rank
        for email, score in scores.items():
            assert close(score, other["ranks"][rank][email]), (rank, email)
    assert live["unhappy"] == other["unhappy"]


def assert_time_indexes_hold_every_survey(store: Any) -> None:
    """The time indexes hold every answer at its survey's answer time and every survey sent (not a test send) at its
    send time, each once, and nothing else."""
    answered, sent = set(), set()
    for stored in stored_surveys(store).values():
        record = expanded(stored)
        if record.get("test"):
            continue
        if record.get("rating"):
            answered.add((record["sid"], int(record["answered_at"])))
        if record.get("sent_at") and record.get("status") in ("sent", "answered"):
            sent.add((record["sid"], int(record["sent_at"])))
    resp, sent_rows = indexed(store, "resp"), indexed(store, "sent")
    assert len(resp) == len(set(resp)) and set(resp) == answered
    assert len(sent_rows) == len(set(sent_rows)) and set(sent_rows) == sent


def assert_equals_a_rebuild(store: Any, settings: Any) -> None:
    """The live aggregates and rollups are what the stored answers and sent surveys give."""
    rebuilt = compute_rebuild(store, settings)
    live = state(store)
    assert_risk_follows_the_ranks(store)
    assert_time_indexes_hold_every_survey(store)
    assert set(live["aggregates"]) == set(rebuilt.aggregates)
    for ident, agg in rebuilt.aggregates.items():
        have = live["aggregates"][ident]
        for name in (*COUNTS, *SUMS):
            assert close(getattr(have, name), getattr(agg, name)), (ident, name, have, agg)
        assert have.days == agg.days, ident
    for ident, rollup in rebuilt.rollups.items():
        have = live["rollups"][ident]
        assert have.keys() == rollup.keys(), ident
        assert all(close(have[name], value) for name, value in rollup.items()), ident
    # Each kind's ranked set holds every entity that counts something, at minus its answers.
    for kind in keys.AGGREGATE_KINDS:
        if kind != "customer":
            wanted = {ident: -agg.n for (k, ident), agg in rebuilt.aggregates.items() if k == kind and not agg.empty}
            assert live["ranks"][keys.entity_rank(kind)] == wanted, kind


def test_a_rebuild_equals_every_live_aggregate_rollup_and_ranked_set_after_a_mixed_history(world, store, env):
    settings = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    _answered_long_ago(world, "T-OLD-1", "old@example.no", 1, 40)
    _answered_long_ago(world, "T-OLD-2", "mixed@example.no", 2, 40)
    for n, (email, rating, fields) in enumerate([
            ("anna@example.no", 5, {"team": "billing"}), ("bjorn@example.no", 1, {"team": "shipping"}),
            ("mixed@example.no", 3, {"brand": "zeta"}), ("gone@example.no", 2, {}),
            ("anna@example.no", 4, {"agent": {"id": "a-9", "name": "Kim"}})]):
        world.solved_and_answered(f"T-{n}", email, rating, **fields)
    world.answer("bjorn@example.no", 4, "Better after all")  # a change of rating
    world.answer("bjorn@example.no", 4, "Only the comment changes")
    world.answer("anna@example.no", 2)  # anna's newest answer turns unhappy
    world.solve("T-SENT", "quiet@example.no")
    assert world.send() == ["sent"]  # sent, never answered
    erase_customer(store, settings, "gone@example.no")
    removed = retire_old_records(store, settings, now_ms())
    assert (removed.surveys, removed.answers) == (2, 2)
    assert not store.outbox_waiting()
    assert_equals_a_rebuild(store, settings)
    live = state(store)
    # The ranked sets say what the customers' cards say.
    assert live["ranks"][keys.RANK_RESPONSES] == {"anna@example.no": 2, "bjorn@example.no": 1,
                                                  "mixed@example.no": 2, "old@example.no": 1}
    # Not satisfied: anna's 2, mixed's 3 (mixed's old 2 and old's 1 were retired; bjorn changed his 1 to a 4).
    assert set(live["ranks"][keys.RANK_UNHAPPY]) == {"anna@example.no", "mixed@example.no"}
    assert "gone@example.no" not in repr(live)
    assert live["rollups"][("team", "billing")]  # rollups are kept per entity

    rebuild_scores(store, settings)
    assert_same(live, state(store))
    # A rebuild repairs: every aggregate, rollup and ranked set wiped, then rebuilt, is what it was.
    doomed = [key for kind in keys.AGGREGATE_KINDS for ident in live["ids"][kind]
              for key in (keys.daily(kind, ident), keys.rollup(kind, ident))]
    pipe = store.redis.pipeline(transaction=False)
    for key in (*doomed, *RANKS, *(keys.customer(email, "unhappy") for email in live["ids"]["customer"])):
        pipe.delete(key)
    for kind in keys.AGGREGATE_KINDS:  # the sums leave their hash (a customer's profile), the marks stay
        for ident in live["ids"][kind]:
            pipe.hdel(keys.aggregate(kind, ident), *SUM_FIELDS)
    pipe.execute()
    rebuild_scores(store, settings)
    assert_same(live, state(store))


def _sent(world: World, *emails: str) -> list[str]:
    """Solve and survey one ticket per customer; return the survey ids."""
    for n, email in enumerate(emails):
        world.solve(f"T-C{n}", email, team="crash")
    assert world.send() == ["sent"] * len(emails)
    return [world.store.customer_surveys(email)[0].sid for email in emails]


def test_a_forwarder_that_died_half_way_through_an_entry_neither_loses_nor_doubles_a_step(world, store, settings):
    (sid,) = _sent(world, "kari@example.no")
    bucket = keys.bucket_of(sid)
    store.forward_wait_s = 0  # a writer that finds the lease held leaves its entry to the holder (or beat)
    store.redis.set(keys.outbox_lease(bucket), "a forwarder that died", px=60_000)
    assert record_answer(store, settings, store.survey(sid), 2, "Meh", now_ms()) == 2
    ((seq, body),) = store.outbox_entries(bucket)
    assert [step[:2] for step in body["steps"]] == [["customer", "kari@example.no"], ["source", "standard"],
                                                    ["overall", "all"], ["agent", "standard:a-7"],
                                                    ["team", "crash"], ["brand", "acme"], ["channel", "email"],
                                                    ["organisation", "example.no"], ["tag", "vip"]]
    assert store.aggregate("team", "crash").n == 0  # not forwarded yet
    # The dead forwarder had applied three of the six steps.
    pipe = store.redis.pipeline(transaction=False)
    assert store.queue_steps(pipe, bucket, seq, body, count=3) == [("customer", "kari@example.no"),
                                                                   ("source", "standard"), ("overall", "all")]
    assert [reply[0] for reply in pipe.execute()] == [1, 1, 1]
    store.redis.delete(keys.outbox_lease(bucket))  # its lease ran out
    assert store.forward_outbox(bucket) == 1
    assert not store.outbox_waiting()
    for kind, ident in (("customer", "kari@example.no"), ("overall", "all"), ("team", "crash")):
        agg = store.aggregate(kind, ident)
        assert (agg.n, agg.sent, agg.value6, agg.satisfied) == (1, 1, 150, 0), (kind, ident)
    assert sid in dict(indexed(store, "resp"))
    assert store.redis.zscore(keys.RANK_UNHAPPY, "kari@example.no") is not None
    assert_equals_a_rebuild(store, settings)


def test_an_entry_applied_but_not_removed_changes_nothing_when_forwarded_again(world, store, settings):
    first, second = _sent(world, "kari@example.no", "ola@example.no")
    record_answer(store, settings, store.survey(first), 5, "", now_ms())
    record_answer(store, settings, store.survey(second), 1, "", now_ms())
    bucket = keys.bucket_of(first)
    store.forward_wait_s = 0
    store.redis.set(keys.outbox_lease(bucket), "another forwarder", px=60_000)
    with pytest.raises(OutboxStuck):  # erased, but its entry waits for the lease's holder
        store.erase_survey(first, "kari@example.no")
    ((raw, seq),) = store.redis.zrange(keys.outbox(bucket), 0, -1, withscores=True)
    assert store.aggregate("customer", "kari@example.no").n == 1
    store.redis.delete(keys.outbox_lease(bucket))
    assert store.forward_outbox(bucket) == 1
    live, metrics = state(store), store.metric_counts()
    assert "kari@example.no" not in live["ids"]["customer"]
    assert (metrics.sent, metrics.answers) == (2, 2)  # one of each erased: the totals never go back
    # As if the forwarder died after every step and side effect, before the entry left the outbox.
    store.redis.zadd(keys.outbox(bucket), {raw: seq})
    assert store.forward_outbox(bucket) == 1
    assert_same(live, state(store))
    assert store.metric_counts() == metrics  # nothing counted twice, the erased counts included
    assert_equals_a_rebuild(store, settings)


def test_a_writer_waits_for_a_dead_forwarder_s_lease_and_then_its_answer_is_seen_at_once(world, store, settings):
    (sid,) = _sent(world, "kari@example.no")
    bucket = keys.bucket_of(sid)
    store.redis.set(keys.outbox_lease(bucket), "a forwarder that died", px=300)
    assert record_answer(store, settings, store.survey(sid), 4, "", now_ms()) == 2
    assert not store.outbox_waiting()
    assert store.aggregate("customer", "kari@example.no").n == 1  # read right after the answer
    assert store.redis.zscore(keys.RANK_RESPONSES, "kari@example.no") == 1


def test_beat_forwards_what_a_writer_left(world, store, settings, start_worker):
    from workers.celery_app import create_celery

    (sid,) = _sent(world, "kari@example.no")
    bucket = keys.bucket_of(sid)
    store.forward_wait_s = 0
    store.redis.set(keys.outbox_lease(bucket), "a forwarder that died", px=1000)
    record_answer(store, settings, store.survey(sid), 3, "", now_ms())
    assert store.outbox_waiting() == {bucket: 1}
    assert create_celery(settings).conf.beat_schedule["forward-outbox"]["schedule"] <= 5
    start_worker(beat=True)
    wait_until(lambda: not store.outbox_waiting(), what="beat's forward_outbox")
    assert store.aggregate("overall", "all").n == 1


def test_rollups_count_answers_by_day_rating_and_sums_and_a_change_moves_them(world, store, settings):
    (sid,) = _sent(world, "kari@example.no")
    sent_day = day_of(store.survey(sid).sent_at_ms)
    at = now_ms()
    day = day_of(at)
    record_answer(store, settings, store.survey(sid), 5, "", at)
    everything = store.rollup_fields("team", "crash")
    rollup = {k: v for k, v in everything.items() if "=" not in k}  # the team's own fields, not crossed ones
    assert {k: v for k, v in rollup.items() if not k.endswith("weight") and not k.endswith("weighted")} == (
        {f"{sent_day}|sent": 1} | {f"{day}|n": 1, f"{day}|value6": 600, f"{day}|satisfied": 1, f"{day}|r|csat5|5": 1})
    assert rollup[f"{day}|weight"] > 0 and close(rollup[f"{day}|weighted"], rollup[f"{day}|weight"] * 100)
    # Crossed by its source: the sums in all and of each day; the team's ids never cross itself.
    source = cross_label("source", store.survey(sid).source)
    assert [everything[f"x|{source}|{name}"] for name in ("n", "sent", "value6")] == [1, 1, 600]
    assert (everything[f"{day}|{source}|n"], everything[f"{day}|{source}|satisfied"]) == (1, 1)
    assert close(everything[f"x|{source}|weight"], rollup[f"{day}|weight"])
    assert not any(k.startswith("x|team=") for k in everything)
    record_answer(store, settings, store.survey(sid), 2, "", at + 1000)
    everything = store.rollup_fields("team", "crash")
    rollup = {k: v for k, v in everything.items() if "=" not in k}
    assert f"{day}|r|csat5|5" not in rollup and f"{day}|satisfied" not in rollup
    assert (rollup[f"{day}|n"], rollup[f"{day}|value6"], rollup[f"{day}|r|csat5|2"]) == (1, 150, 1)
    assert (everything[f"x|{source}|n"], everything[f"x|{source}|value6"]) == (1, 150)
    assert f"x|{source}|satisfied" not in everything and f"{day}|{source}|satisfied" not in everything
    assert store.redis.zscore(keys.RANK_UNHAPPY, "kari@example.no") == at + 1000
    assert store.redis.zscore(keys.RANK_RECENT, "kari@example.no") == at + 1000
    assert close(store.redis.zscore(keys.RANK_SCORE, "kari@example.no"), 25.0)
    record_answer(store, settings, store.survey(sid), 4, "", at + 2000)
    assert store.redis.zscore(keys.RANK_UNHAPPY, "kari@example.no") is None
    erase_customer(store, settings, "kari@example.no")
    assert store.rollup_fields("team", "crash") == {}  # the team counts nothing any more: it is gone
    assert "crash" not in store.ids("team")
    assert all(store.redis.zscore(rank, "kari@example.no") is None for rank in RANKS)


def test_a_chunk_of_sends_forwards_each_bucket_once_at_its_end(store, settings):
    at = now_ms()
    surveys = [store.create_survey(Survey(sid=f"chunk{n:02d}", tkey=f"standard:T-{n}", kind="ticket", scale="csat5",
                                          customer=f"c{n}@example.no", source="standard", status="sending",
                                          team="chunk", created_at_ms=at)) for n in range(20)]
    with store.forwarding_later():
        for survey in surveys:
            assert store.mark_sent(survey, at, at + DAY_MS)
        assert sum(store.outbox_waiting().values()) == 20  # nothing forwarded inside the block
        assert store.aggregate("team", "chunk").sent == 0
    assert not store.outbox_waiting()
    assert store.aggregate("team", "chunk").sent == 20
    assert len(indexed(store, "sent")) == 20
    assert not store.mark_sent(surveys[0], at, at + DAY_MS)  # a second mark appends nothing
    assert not store.outbox_waiting() and store.aggregate("team", "chunk").sent == 20
    assert_equals_a_rebuild(store, settings)


def test_a_rebuild_after_a_new_half_life_reweighs_every_answer_and_later_changes_stay_exact(world, store, env):
    first, second = _sent(world, "kari@example.no", "ola@example.no")
    short = load_settings({**env, "TRACKER_SCORE_HALF_LIFE_DAYS": "30"})
    long = load_settings({**env, "TRACKER_SCORE_HALF_LIFE_DAYS": "300"})
    record_answer(store, short, store.survey(first), 5, "", now_ms() - 20 * DAY_MS)
    record_answer(store, short, store.survey(second), 2, "", now_ms())
    before = store.aggregate("team", "crash").weight
    assert rebuild_scores(store, long) == 2
    assert store.aggregate("team", "crash").weight != before
    assert_equals_a_rebuild(store, long)  # the stored answers carry the new weights
    record_answer(store, long, store.survey(first), 3, "", now_ms())  # takes off what the rebuild counted
    assert_equals_a_rebuild(store, long)


def test_each_kind_s_ranked_set_follows_its_entities_through_concurrent_forwarders(world, store, settings):
    """Answers for one agent, team and brand forwarded by writers of many buckets at once (each forwarder writes the
    answers it saw, then checks them): the ranked sets end at every entity's count, as a rebuild sets them."""
    sids = _sent(world, *(f"c{n}@example.no" for n in range(24)))
    assert len({keys.bucket_of(sid) for sid in sids}) > 4
    at = now_ms()

    def answer(part: list[str]) -> None:
        for n, sid in enumerate(part):
            record_answer(store, settings, store.survey(sid), 1 + n % 5, "", at + n)

    threads = [threading.Thread(target=answer, args=(sids[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not store.outbox_waiting()
    (agent,) = store.ids("agent")
    assert store.redis.zrange(keys.entity_rank("agent"), 0, -1, withscores=True) == [(agent, -24.0)]
    assert store.ranked_entities("source", 0, 10) == (store.ids("source"), 1)
    assert_equals_a_rebuild(store, settings)
