"""The key layout: an answer lives in its survey's hash; a Redis written with the previous layout (an answer hash
beside each answered survey's) is refused at start-up until `tracker upgrade-store` folds it in."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

import pytest

from tests.support import World, as_sorted_sets, refused_as_behind, stored_surveys, survey_link, tracker
from tests.test_outbox import _answered_long_ago, assert_equals_a_rebuild
from tracker.config import load_settings
from tracker.model import Survey
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.scores.cards import customer_card
from tracker.store import keys
from tracker.store.scores import ANSWER_FIELDS
from tracker.store.survey_codes import CODES, expanded

# Every test twice: on a standalone Redis and on a 3-master Redis Cluster (the upgrade scans every master).
pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)
ANNA, BJORN, CARL, DINA = "anna@example.no", "bjorn@example.no", "carl@example.no", "dina@example.no"
SURVEY_FIELDS = {field.name.removesuffix("_ms") for field in fields(Survey)}
# What the previous layout's record_answer.lua wrote into an answer hash (t:{s<b>}:resp:<sid>): the survey's id,
# scale, customer, ticket and attribution copied from the survey (empty when unknown), the answer's time as `at`,
# its follow-up reason as `reason`, and an empty comment as ''.
LAYOUT2_COPIED = ("sid", "scale", "customer", "tkey", "ticket_id", "source", "agent_id", "agent_name", "team", "brand",
                  "channel", "subject")


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def now_ms() -> int:
    return int(time.time() * 1000)


def layout2_keys(store: Any) -> list[str]:
    return sorted(store.redis.scan_iter(match=keys.LAYOUT2_ANSWERS, count=1000))


def give_reason(world: World, email: str, rating: int, reason: str, comment: str) -> None:
    """Pick a follow-up reason on the survey page, as a customer does after a low rating."""
    path = survey_link(world.mail_to(email), rating)
    assert world.client.post(f"{path}/reason", data={"reason": reason, "comment": comment}).status_code == 200


def test_an_answer_its_change_its_erasure_and_its_retirement_live_in_the_survey_s_hash(world, store, env):
    settings = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    _answered_long_ago(world, "T-OLD", CARL, 1, 40)
    sid = world.solved_and_answered("T-1", ANNA, 2, "Slow", agent={"id": "a-7", "name": "Ola"}, team="billing")
    give_reason(world, ANNA, 2, "slow", "Slow, and nobody called")
    stored = store.redis.hgetall(keys.survey(sid))
    assert not set(stored) & set(CODES) and set(stored) & set(CODES.values())  # the fields no script names, coded
    raw = expanded(stored)
    # One hash: the survey's fields and the answer's, each once (the follow-up reason under its own name).
    assert set(raw) <= SURVEY_FIELDS | set(ANSWER_FIELDS) | {"answer_event"}, set(raw) - SURVEY_FIELDS
    assert (raw["rating"], raw["answer_reason"], raw["changes"], raw["status"]) == ("2", "slow", "1", "answered")
    assert "reason" not in raw and store.survey(sid).reason is None
    answer = store.response(sid)
    assert (answer.rating, answer.reason, answer.comment, answer.at_ms) == (2, "slow", "Slow, and nobody called",
                                                                             int(raw["answered_at"]))
    assert (answer.tkey, answer.agent_id, answer.team, answer.customer) == ("standard:T-1", "a-7", "billing", ANNA)
    assert layout2_keys(store) == []
    assert_equals_a_rebuild(store, settings)

    # A change of rating: the same hash, counted once with the new value.
    world.answer(ANNA, 5)
    raw = expanded(store.redis.hgetall(keys.survey(sid)))
    assert (raw["rating"], raw["changes"], raw.get("answer_reason")) == ("5", "2", None)
    assert store.aggregate("customer", ANNA).n == 1 and store.aggregate("customer", ANNA).satisfied == 1
    assert_equals_a_rebuild(store, settings)

    # A survey sent and not answered holds no answer.
    world.solve("T-2", BJORN)
    assert world.send() == ["sent"]
    (unanswered,) = store.customer_surveys(BJORN)
    assert store.response(unanswered.sid) is None and "rating" not in store.redis.hgetall(keys.survey(unanswered.sid))

    # Erasure: the hash goes, with the answer in it, and what it counted comes off.
    report = erase_customer(store, settings, ANNA)
    assert report.responses == 1 and not store.redis.exists(keys.survey(sid))
    assert store.aggregate("overall", "all").n == 1  # carl's
    assert_equals_a_rebuild(store, settings)

    # Retirement: carl's old answered survey goes; its sums stay, as retired sums.
    (old,) = store.customer_surveys(CARL)
    removed = retire_old_records(store, settings, now_ms())
    assert (removed.surveys, removed.answers) == (1, 1) and not store.redis.exists(keys.survey(old.sid))
    assert store.aggregate("overall", "all").n == 1
    assert_equals_a_rebuild(store, settings)
    assert layout2_keys(store) == []


def to_names(store: Any) -> int:
    """Rewrite every survey's hash with its fields by name, as layout 4 and earlier stored them; return how many."""
    renamed = 0
    for name in list(store.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000)):
        stored = store.redis.hgetall(name)
        if set(stored) & set(CODES.values()):
            pipe = store.redis.pipeline(transaction=True)
            pipe.delete(name)
            pipe.hset(name, mapping=expanded(stored))
            pipe.execute()
            renamed += 1
    return renamed


def to_layout2(store: Any) -> int:
    """Rewrite every answered survey as the previous layout kept it, by hand: its fields by name, the answer's out of
    the survey's hash into an answer hash of their own; then drop the layout mark (that version wrote none)."""
    moved = 0
    to_names(store)
    for name in list(store.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000)):
        raw = store.redis.hgetall(name)
        if not raw.get("rating"):
            continue
        sid = raw["sid"]
        answer = {f: raw.get(f, "") for f in LAYOUT2_COPIED}
        answer |= {f: raw[f] for f in ANSWER_FIELDS if f in raw and f != "answer_reason"}
        answer |= {"at": raw["answered_at"], "comment": raw.get("comment", "")}
        if "answer_reason" in raw:
            answer["reason"] = raw["answer_reason"]
        pipe = store.redis.pipeline(transaction=True)
        pipe.hdel(name, *[f for f in ANSWER_FIELDS if f in raw])
        pipe.hset(keys.layout2_answer(sid), mapping=answer)
        pipe.execute()
        moved += 1
    as_sorted_sets(store)  # layout 2 indexed answers and sent surveys by time in one sorted set each
    store.redis.delete(keys.LAYOUT)
    return moved


def readable(store: Any, client: Any, settings: Any, auth: dict[str, str], at: int) -> dict[str, Any]:
    """What people read of the answers: each customer's answers and export, score card, and the CSV of every
    answer; and every survey hash as stored."""
    emails = (ANNA, BJORN, CARL, DINA)
    csv = client.get("/api/v1/export/responses.csv", headers=auth)
    assert csv.status_code == 200
    hashes = stored_surveys(store)  # by sid: each hash, or filed value
    return {"answers": {e: store.customer_responses(e) for e in emails},
            "export": {e: store.every_survey_and_answer(e) for e in emails},
            "cards": {e: customer_card(store, settings, e, at) for e in emails},
            "csv": csv.get_data(as_text=True), "hashes": hashes}


@pytest.fixture
def answered(world: World, store: Any) -> World:
    return four_customers(world)


def four_customers(world: World) -> World:
    """Four customers' surveys: answered with a comment and a follow-up reason, answered and changed, answered
    without a comment, and sent without an answer."""
    world.solved_and_answered("T-1", ANNA, 1, "Nobody called back", agent={"id": "a-7", "name": "Ola"}, team="vip")
    give_reason(world, ANNA, 1, "slow", "Nobody called back")
    world.solved_and_answered("T-2", BJORN, 2, "Meh", brand="zeta")
    world.answer(BJORN, 4, "Better after all")
    world.solved_and_answered("T-3", CARL, 5)
    world.solve("T-4", DINA)
    assert world.send() == ["sent"]
    return world


def test_upgrade_store_folds_the_previous_layout_into_the_same_answers_card_and_csv(answered, store, env, settings):
    client, at = answered.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = readable(store, client, settings, auth, at)
    assert to_layout2(store) == 3 and len(layout2_keys(store)) == 3
    profiles = [keys.customer(email, "profile") for email in (ANNA, BJORN, CARL)]
    for profile in profiles:  # layout 2 kept no copy of the newest answer for the card
        store.redis.hdel(profile, "last_response_card")
    assert "reason" in store.redis.hgetall(keys.layout2_answer(store.customer_surveys(ANNA)[0].sid))

    # An upgrade stopped after one answer: running it again finishes it.
    first = layout2_keys(store)[0]
    assert store.script("fold_answer")(keys=[first, keys.survey(keys.layout2_sid(first))]) == 1
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Folded 2 answers" in upgraded.stdout
    assert layout2_keys(store) == [] and store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert "3 score cards' copies" in upgraded.stdout
    assert all(store.redis.hget(profile, "last_response_card") for profile in profiles)
    assert readable(store, client, settings, auth, at) == before
    assert_equals_a_rebuild(store, settings)

    # A second run changes nothing.
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "Folded 0 answers" in again.stdout and "already" in again.stdout
    assert readable(store, client, settings, auth, at) == before


def test_a_redis_of_the_previous_layout_is_refused_at_start_up_with_one_line_naming_upgrade_store(
        answered, store, env):
    to_layout2(store)
    for command in ("web", "worker", "beat"):
        started = tracker(env, command)
        assert started.returncode == 2, started.stderr
        assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr
        assert "tracker upgrade-store" in started.stderr
    score = tracker(env, "score", ANNA)  # a command that reads answers would miss them: refused too
    assert score.returncode == 2 and "tracker upgrade-store" in score.stderr
    check = tracker(env, "check")
    assert check.returncode == 1
    assert [line for line in check.stderr.splitlines() if "upgrade-store" in line] != []
    assert tracker(env, "upgrade-store").returncode == 0
    assert "upgrade-store" not in tracker(env, "check").stderr


def test_an_empty_redis_is_marked_with_this_layout_when_first_opened_and_kept_so(store, env):
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION  # the store fixture opened it empty
    store.redis.delete(keys.LAYOUT)
    assert store.layout_state() == "empty"
    checked = tracker(env, "check")
    assert "upgrade-store" not in checked.stderr
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    ahead = str(int(keys.LAYOUT_VERSION) + 1)  # written by a later version
    store.redis.set(keys.LAYOUT, ahead)
    refused = tracker(env, "worker")
    assert refused.returncode == 2 and f"layout {ahead}" in refused.stderr and refused.stderr.count("\n") == 1


def test_answers_written_without_the_mark_after_a_flush_are_this_layouts_own_and_not_refused(answered, store, env):
    """A Redis flushed (or restarted empty) under running processes is written again without the mark, which
    their store set once at start: holding no layout-2 answer hash, it is marked, not refused."""
    store.redis.delete(keys.LAYOUT)
    assert store.customer_responses(ANNA) and store.layout_state() == "empty"
    checked = tracker(env, "check")
    assert "upgrade-store" not in checked.stderr
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    store.redis.delete(keys.LAYOUT)
    assert to_layout2(store) == 3 and store.layout_state() == "unmarked"  # its answers in hashes of their own


def test_a_layout_3_redis_is_refused_until_upgrade_store_rebuilds_its_rollups_crossed_and_with_reasons(
        answered, store, env, settings):
    """Layout 3's rollups held neither the sums crossed by the other dimensions nor the reasons' counts: the
    processes refuse it in one line, and upgrade-store writes them by rebuilding the scores."""
    rollups = {name: store.redis.hgetall(name) for name in store.redis.scan_iter(match=f"{keys.PREFIX}:{{a:*}}:rollup")}
    assert any("=" in field for fields_ in rollups.values() for field in fields_)
    assert any("|why|slow" in field for fields_ in rollups.values() for field in fields_)  # Anna's reason
    for name, fields_ in rollups.items():  # what layout 3 wrote: no crossed field, no reason
        gone = [field for field in fields_ if "=" in field or "|why|" in field]
        if gone:
            store.redis.hdel(name, *gone)
    assert to_names(store) == 4
    store.redis.set(keys.LAYOUT, keys.LAYOUT_BEFORE)
    for command in ("web", "worker"):
        started = tracker(env, command)
        assert started.returncode == 2 and started.stderr.count("\n") == 1, started.stderr
        assert "layout 3" in started.stderr and "tracker upgrade-store" in started.stderr
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "scores rebuilt from 3 answers" in upgraded.stdout and store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    for name, before in rollups.items():  # the same fields again (float sums as written by another path)
        now = store.redis.hgetall(name)
        assert set(now) == set(before) and all(abs(float(now[f]) - float(before[f])) < 1e-6 for f in now), name
    assert_equals_a_rebuild(store, settings)
    assert "upgrade-store" not in tracker(env, "check").stderr


def test_a_layout_4_redis_is_refused_until_upgrade_store_renames_its_surveys_fields_to_their_codes(
        answered, store, env, settings):
    """Layout 4 stored every survey's fields by name: the processes refuse it in one line, and upgrade-store renames
    them (no rebuild: its rollups are this layout's), leaving every hash as this layout writes it."""
    client, at = answered.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = readable(store, client, settings, auth, at)
    hashes = before["hashes"]
    assert all(set(CODES.values()) & set(stored) and not set(CODES) & set(stored) for stored in hashes.values())
    assert to_names(store) == 4
    named = {keys.survey(sid): store.redis.hgetall(keys.survey(sid)) for sid in hashes}
    assert all(set(stored) & set(CODES) and not set(stored) & set(CODES.values()) for stored in named.values())
    store.redis.set(keys.LAYOUT, keys.LAYOUT_RENAMED)
    refused_as_behind(env, ("web", "worker"))
    # An upgrade stopped after one hash: running it again finishes it.
    first = sorted(named)[0]
    renamed_one = store.script("code_fields")(keys=[first], args=[x for pair in CODES.items() for x in pair])
    assert renamed_one == len(set(CODES) & set(named[first]))
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "3 surveys' fields renamed" in upgraded.stdout and "rebuilt" not in upgraded.stdout
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert readable(store, client, settings, auth, at) == before  # every hash as this layout writes it, too
    assert_equals_a_rebuild(store, settings)
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 surveys' fields renamed" in again.stdout and "already" in again.stdout
    assert "upgrade-store" not in tracker(env, "check").stderr
