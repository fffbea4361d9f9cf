"""Settled surveys filed in shared hashes (key layout 9, tracker.store.filed): a survey that can no longer be answered
leaves its key for a field of a hash it shares with others of its bucket; it reads, changes, takes replies and is
erased as before, and `tracker upgrade-store` files the settled surveys of a layout 8 Redis."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from tests.support import World, refused_as_behind, stored_surveys, tracker
from tests.test_layout import ANNA, BJORN, CARL, four_customers, readable
from tests.test_outbox import assert_equals_a_rebuild
from tests.test_settle import FIELDS, compact, now_ms  # noqa: F401 - compact: the Redis as compose sets it
from tracker.model import DAY_MS
from tracker.privacy.erase import erase_customer
from tracker.store import Store, filed, keys
from tracker.store.survey_codes import PACKED_FIELD, coded

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def _run(store: Any, body: str, sid: str, *args: Any) -> Any:
    """Run Lua with filing's functions on a survey's key and its filing hash (one slot)."""
    return store.redis.eval(filed.lua_filing() + body, 2, keys.survey(sid), keys.survey_filed(sid), *args)


def _random_text(rng: random.Random) -> str:
    alphabet = ["a", "Z", "0", "9", ":", "1:", "æ", "😀", " ", "\x1f", "\n", "=", "}", "12:"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def test_the_lua_and_python_twins_file_and_unfile_any_fields_alike(store: Any) -> None:
    rng = random.Random(9)
    for n in range(60):
        sid = f"sid{n}:{_random_text(rng)}"
        held = {"sid": sid, **{f"f{_random_text(rng)}{i}": _random_text(rng) for i in range(rng.randint(0, 6))}}
        store.redis.hset(keys.survey(sid), mapping=held)
        assert _run(store, "return file(KEYS[1], KEYS[2], tonumber(ARGV[1])) and 1 or 0", sid, 100000) == 1
        value = store.redis.hget(keys.survey_filed(sid), sid)
        assert value == filed.blob(held) and filed.unfiled(sid, value) == held
        assert not store.redis.exists(keys.survey(sid))
        assert filed.read_many(store, [sid]) == [held]
        assert _run(store, "return unfile(KEYS[1], KEYS[2]) and 1 or 0", sid) == 1
        assert store.redis.hgetall(keys.survey(sid)) == held
        assert not store.redis.hexists(keys.survey_filed(sid), sid)


def test_a_survey_is_not_filed_when_it_has_an_expiry_or_would_not_fit_a_compact_hash(store: Any) -> None:
    store.redis.hset(keys.survey("s1"), mapping=FIELDS)
    store.redis.pexpire(keys.survey("s1"), 7 * DAY_MS)  # a test survey's: it leaves by itself
    assert store.settle(["s1"]) == 1  # packed, not filed
    assert PACKED_FIELD in store.redis.hgetall(keys.survey("s1")) and store.redis.pttl(keys.survey("s1")) > 0
    assert store.settle(["s1"]) == 0
    store.redis.hset(keys.survey("s2"), mapping={**FIELDS, "sid": "s2", "comment": "x" * 400})
    assert store.settle(["s2"]) == 1  # its packed field fits, not all it holds
    assert store.redis.exists(keys.survey("s2")) and not store.redis.hexists(keys.survey_filed("s2"), "s2")


def test_a_filed_survey_reads_as_before_takes_a_reply_and_is_filed_again_with_it(
        world: World, store: Any, settings: Any) -> None:
    four_customers(world)
    client, at = world.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = readable(store, client, settings, auth, at)
    sids = sorted(stored_surveys(store))
    assert store.settle(sids) == 4
    assert not any(store.redis.exists(keys.survey(sid)) for sid in sids)
    assert {k: v for k, v in readable(store, client, settings, auth, at).items() if k != "hashes"} == \
        {k: v for k, v in before.items() if k != "hashes"}
    (bjorn,) = store.customer_responses(BJORN)
    assert store.note_reply(bjorn.sid, "auto_reply", at)  # a reply long after: written beside the filed value
    assert store.survey(bjorn.sid).reply_status == "auto_reply" and store.customer_responses(BJORN)[0].rating == 4
    assert store.settle([bjorn.sid]) == 1  # the hash beside it filed with it
    assert not store.redis.exists(keys.survey(bjorn.sid)) and store.survey(bjorn.sid).reply_status == "auto_reply"
    assert not store.note_reply("no-such-survey", "auto_reply", at)
    assert_equals_a_rebuild(store, settings)
    erase_customer(store, settings, CARL)  # a filed survey erased takes off what it added
    assert store.customer_responses(CARL) == [] and store.customer_surveys(CARL) == []
    assert CARL not in {record.get(coded("customer")) for record in stored_surveys(store).values()}
    assert_equals_a_rebuild(store, settings)


def test_a_layout_8_redis_is_refused_until_upgrade_store_files_its_settled_surveys(
        world: World, store: Any, env: dict[str, str], settings: Any) -> None:
    four_customers(world)
    client, at = world.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    sids = sorted(stored_surveys(store))
    for sid in sids:  # their answer time is over
        store.redis.hset(keys.survey(sid), coded("expires_at"), str(at - DAY_MS))
    assert store.settle(sids) == 4
    for sid in sids:  # as layout 8 kept them: settled, each in a key of its own
        assert _run(store, "return unfile(KEYS[1], KEYS[2]) and 1 or 0", sid) == 1
    assert all(PACKED_FIELD in store.redis.hgetall(keys.survey(sid)) for sid in sids)
    before = readable(store, client, settings, auth, at)
    store.redis.set(keys.LAYOUT, keys.LAYOUT_CHUNKED)
    refused_as_behind(env)
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "4 closed surveys settled or filed" in upgraded.stdout and "rebuilt" not in upgraded.stdout
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert not any(store.redis.exists(keys.survey(sid)) for sid in sids)
    assert readable(store, client, settings, auth, at) == before  # every survey as it was, filed
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 closed surveys settled or filed" in again.stdout
    assert "already" in again.stdout
    assert_equals_a_rebuild(store, settings)


def test_many_settled_surveys_share_compact_filing_hashes(store: Any) -> None:
    """Surveys of one filing hash (found by their sids) stay in one compact hash, each one field."""
    wanted = keys.survey_filed("s-0")
    sids = [sid for sid in (f"s-{n}" for n in range(1_000_000)) if keys.survey_filed(sid) == wanted][:12]
    assert len(sids) == 12  # one sid in 65,536 falls in a given filing hash
    for sid in sids:
        store.redis.hset(keys.survey(sid), mapping={**FIELDS, "sid": sid})
    assert store.settle(sids) == 12
    assert store.redis.hlen(wanted) == 12 and store.redis.object("encoding", wanted) in ("listpack", "ziplist")
    assert [record["sid"] for record in filed.read_many(store, sids)] == sids
    assert {store.survey(sid).subject for sid in sids} == {FIELDS["sj"]}
    assert len({keys.survey_filed(f"x{n}") for n in range(20_000)}) > 10_000  # spread over the bucket's hashes


def test_surveys_read_while_they_are_filed_and_thawed_over_and_over_are_always_found(store: Any, settings: Any) -> None:
    """A read's two commands (the hash, the filed value) may fall either side of a thaw that moves the survey from
    its filing hash into its own key (a long pipeline reaches Redis in pieces, other clients' commands between):
    such a survey, found in neither place, is read again at once, so a read never finds it gone. (Without
    read_at_once, 300 reads of these 400 surveys found some gone: 12 in one run on the development machine.)"""
    sids = [f"s{n}" for n in range(400)]
    for sid in sids:
        store.redis.hset(keys.survey(sid), mapping={**FIELDS, "sid": sid})
    assert store.settle(sids) == len(sids)
    stop, moves = threading.Event(), [0]

    def move() -> None:
        mover = Store.from_url(settings.redis_url)
        while not stop.is_set():
            pipe = mover.redis.pipeline(transaction=False)
            for sid in sids:  # thawed into their keys...
                pipe.execute_command("EVAL", filed.lua_filing() + "return unfile(KEYS[1], KEYS[2]) and 1 or 0", 2,
                                     keys.survey(sid), keys.survey_filed(sid))
            pipe.execute()
            mover.settle(sids)  # ...and filed again
            moves[0] += 1

    mover = threading.Thread(target=move)
    mover.start()
    found: list[dict[str, str]] = []
    rounds, deadline = 0, time.monotonic() + 120
    try:  # at least 300 reads, and on until they have raced a few moves (a cluster's pipelines take longer)
        while (rounds < 300 or moves[0] < 3) and time.monotonic() < deadline:
            found += filed.read_many(store, sids)
            rounds += 1
    finally:
        stop.set()
        mover.join()
    assert moves[0] >= 2  # the reads raced the moves (each move thaws and files all 400)
    assert all(record.get("sid") and record.get(PACKED_FIELD) for record in found)


def test_the_comment_search_finds_a_comment_where_the_survey_keeps_it(store: Store) -> None:
    """commented.lua: a comment in the survey's hash or in its filed value, never one a value only mentions."""
    rng = random.Random(7)
    filed_records = {
        "f-said": {"st": "answered", "comment": "Slow reply"},
        "f-empty": {"st": "answered", "comment": ""},
        "f-mention": {"st": "answered", "sj": "7:comment in a subject", "comment": "Real 😀 one"},
        "f-mention-only": {"st": "answered", "sj": "x7:comment10:not a one"},
        "f-none": {"st": "answered"},
        "f-odd": {"st": "answered", "comment": _random_text(rng) + "7:comment" + _random_text(rng)},
    }
    for sid, record in filed_records.items():
        store.redis.hset(keys.survey_filed(sid), sid, filed.blob(record))
    store.redis.hset(keys.survey("h-said"), mapping={"st": "answered", "comment": "From the hash"})
    store.redis.hset(keys.survey("h-none"), mapping={"st": "answered"})
    # A comment written beside a filed survey since wins over the filed one (joined), empty as well.
    store.redis.hset(keys.survey("f-said"), mapping={"comment": ""})
    store.redis.hset(keys.survey_filed("h-beside"), "h-beside", filed.blob({"st": "answered", "comment": ""}))
    store.redis.hset(keys.survey("h-beside"), mapping={"comment": "Written since"})
    sids = [*filed_records, "h-said", "h-none", "h-beside", "gone"]
    expected = {sid for sid in sids
                if (filed.read_many(store, [sid])[0] or {}).get("comment")}
    assert expected == {"f-mention", "f-odd", "h-said", "h-beside"}
    found = []
    for sid in sids:  # one call a sid: each call's keys must share a slot
        found += store.redis.eval(store.script("commented").source, 2, keys.survey(sid), keys.survey_filed(sid), sid)
    assert set(found) == expected
    by_bucket: dict[int, list[str]] = {}
    for sid in sids:
        by_bucket.setdefault(keys.bucket_of(sid), []).append(sid)
    for group in by_bucket.values():  # and several of one bucket at once, in their order
        found = store.redis.eval(store.script("commented").source, 2 * len(group), *map(keys.survey, group),
                                 *map(keys.survey_filed, group), *group)
        assert found == [sid for sid in group if sid in expected]


def test_the_newest_comments_are_found_alike_in_surveys_filed_or_not(world: World, store: Any) -> None:
    """The dashboard's comment search (commented_between: commented.lua a bucket, then the commented ones whole)."""
    four_customers(world)

    def comments() -> list[tuple[str, str | None]]:
        found = list(store.commented_between("-inf", "+inf", newest_first=True, batch=1))
        assert len(found) == 3  # every answer of the window, None for each without a comment
        return [(answer.customer, answer.comment) for answer in found if answer is not None]

    before = comments()
    assert sorted(before) == [(ANNA, "Nobody called back"), (BJORN, "Better after all")]
    sids = sorted(stored_surveys(store))
    assert store.settle(sids) == 4
    assert not any(store.redis.exists(keys.survey(sid)) for sid in sids)  # every one filed
    assert comments() == before
