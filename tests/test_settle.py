"""Settled surveys (key layout 6): a survey that can no longer be answered has its coded fields packed into one, and
reads, changes, erasure, retention and the upgrade from layout 5 see it as before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.cluster import RedisCluster

from tests.support import World, refused_as_behind, stored_surveys, survey_link, tracker
from tests.test_layout import ANNA, BJORN, CARL, DINA, four_customers, readable
from tests.test_migrations import answered_event
from tests.test_outbox import _answered_long_ago, assert_equals_a_rebuild
from tracker.config import load_settings
from tracker.model import DAY_MS
from tracker.notify.expiry import emit_expired, settle_expired
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.store import keys
from tracker.store.base import COMPACT_HASH_VALUE, REDIS_DEFAULT_HASH_VALUE
from tracker.store.survey_codes import PACKED, PACKED_FIELD, SEPARATOR, coded, unpacked

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


def hash_value(store: Any, longest: int) -> None:
    """Set every node's hash-max-listpack-value (by its Redis 6.2 name, which 7.x knows too)."""
    client = store.redis
    for node in client.get_nodes() if isinstance(client, RedisCluster) else [None]:
        (client if node is None else client.get_redis_connection(node)).config_set("hash-max-ziplist-value", longest)


@pytest.fixture(autouse=True)
def compact(store: Any) -> Iterator[None]:
    """Redis set as docker-compose.yml and `tracker dev` set it (COMPACT_HASH_VALUE), its default again after."""
    hash_value(store, COMPACT_HASH_VALUE)
    yield
    hash_value(store, REDIS_DEFAULT_HASH_VALUE)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


@pytest.fixture
def answered(world: World) -> World:
    return four_customers(world)


def now_ms() -> int:
    return int(time.time() * 1000)


def survey_keys(store: Any) -> list[str]:
    return sorted(store.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000))


def filing_keys(store: Any) -> list[str]:
    return sorted(store.redis.scan_iter(match=keys.FILED_MATCH, count=1000))


def settle_all(store: Any) -> int:
    """Settle every survey now, as the expiry pass does once each can no longer be answered (safe at any time)."""
    return store.settle(sorted(stored_surveys(store)))


def stored(store: Any, sid: str) -> dict[str, str]:
    """Return a survey as stored: its hash, or its filed value with what was written beside it."""
    return stored_surveys(store).get(sid, {})


def test_a_settled_survey_reads_as_before_in_fewer_bytes(answered: World, store: Any, settings: Any) -> None:
    client, at = answered.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = readable(store, client, settings, auth, at)
    names = survey_keys(store)
    bytes_before = sum(store.redis.memory_usage(name) for name in names)
    assert settle_all(store) == 4  # three answered, one sent and unanswered
    assert settle_all(store) == 0  # settled already
    assert survey_keys(store) == []  # each filed: a field of a hash shared with others, no key of its own
    after = readable(store, client, settings, auth, at)
    for name in names:
        stored = after["hashes"][keys.survey_sid(name)]
        assert PACKED_FIELD in stored and not set(stored) & set(PACKED), stored  # only the status beside the pack
        assert {"sid", coded("status")} <= set(stored)
        # Every coded field's value, in the pack: what the hash held before.
        old = before["hashes"][keys.survey_sid(name)]
        assert unpacked(stored[PACKED_FIELD]) == {code: old[code] for code in PACKED if code in old}
        assert {k: v for k, v in stored.items() if k != PACKED_FIELD} == {k: v for k, v in old.items()
                                                                           if k not in PACKED}
    assert {k: v for k, v in after.items() if k != "hashes"} == {k: v for k, v in before.items() if k != "hashes"}
    bytes_after = sum(store.redis.memory_usage(name) for name in filing_keys(store))
    assert bytes_after < bytes_before, (bytes_before, bytes_after)  # bench/scale.py measures by how much
    assert {store.redis.object("encoding", name) for name in filing_keys(store)} <= {"listpack", "ziplist"}
    assert_equals_a_rebuild(store, settings)


def test_the_expiry_pass_settles_the_surveys_that_can_no_longer_be_answered_and_tells_each_expiry_once(
        world: World, store: Any, settings: Any) -> None:
    world.solved_and_answered("T-1", ANNA, 4, "Fine")
    world.solve("T-2", BJORN)
    assert world.send() == ["sent"]
    expiry = settings.survey_expiry_days * DAY_MS
    assert emit_expired(store, settings, now_ms() + expiry - 3_600_000) == 0  # both can still be answered
    assert not any(PACKED_FIELD in record for record in stored_surveys(store).values())
    later = now_ms() + expiry + 60_000
    assert emit_expired(store, settings, later) == 1  # Bjørn's, unanswered
    assert all(PACKED_FIELD in record for record in stored_surveys(store).values()) and survey_keys(store) == []
    assert emit_expired(store, settings, later) == 0
    assert store.customer_surveys(BJORN)[0].status == "sent" and store.customer_responses(ANNA)[0].rating == 4
    # By the clock of the moment Anna's survey still takes answers: its page reads the settled survey, and a change
    # posted there counts once.
    path = survey_link(world.mail_to(ANNA), 2)
    page = world.client.get(path)
    assert page.status_code == 200 and "Fine" in page.get_data(as_text=True)  # the stored comment, kept
    assert world.client.post(path, data={"rating": "2", "comment": "Worse on reflection"}).status_code == 200
    assert store.customer_responses(ANNA)[0].rating == 2
    assert_equals_a_rebuild(store, settings)


def test_a_settled_survey_changed_erased_or_retired_counts_exactly_what_it_did(
        world: World, store: Any, env: dict[str, str], settings: Any) -> None:
    _answered_long_ago(world, "T-OLD", DINA, 2, 40)
    world.solved_and_answered("T-1", ANNA, 1, "Slow", agent={"id": "a-7", "name": "Ola"}, team="vip")
    world.solved_and_answered("T-2", BJORN, 5, "Great")
    world.solved_and_answered("T-3", CARL, 3)
    assert settle_all(store) == 4
    assert_equals_a_rebuild(store, settings)

    # An answer imported later for Anna's ticket (survey.answered, the latest wins) changes the settled survey.
    later = datetime.fromtimestamp((now_ms() + 5) / 1000, tz=UTC).isoformat(timespec="milliseconds")
    event = answered_event("T-1", 5, later.replace("+00:00", "Z"), "evt-later", ANNA)  # after the answer it changes
    event["ticket"]["agent"] = {"id": "a-7", "name": "Ola"}
    event["ticket"]["team"] = "vip"
    world.event(event)
    world.send()
    (anna,) = store.customer_responses(ANNA)
    assert anna.rating == 5 and anna.agent_id == "a-7" and anna.team == "vip"
    sid = anna.sid
    assert PACKED_FIELD not in store.redis.hgetall(keys.survey(sid))  # thawed by the change
    assert store.answer_event(sid)  # the newest answer event's mark, as a field again
    assert_equals_a_rebuild(store, settings)

    # A mark written beside the pack (the import path's own write) wins over the packed one and survives a thaw.
    (bjorn,) = store.customer_responses(BJORN)
    assert PACKED_FIELD in stored(store, bjorn.sid) and not store.redis.exists(keys.survey(bjorn.sid))  # filed
    store.mark_answer_event(bjorn.sid, "009999999999999|evt-x")
    assert store.answer_event(bjorn.sid) == "009999999999999|evt-x"
    assert store.customer_responses(BJORN)[0].rating == 5  # the filed survey, with the mark written beside it
    store.script("thaw_survey")(keys=[keys.survey(bjorn.sid), keys.survey_filed(bjorn.sid)])
    assert not store.redis.hexists(keys.survey_filed(bjorn.sid), bjorn.sid)
    assert store.redis.hget(keys.survey(bjorn.sid), coded("answer_event")) == "009999999999999|evt-x"
    assert store.customer_responses(BJORN)[0].rating == 5

    # Erasing a customer whose survey is settled takes off exactly what it added.
    assert settle_all(store) >= 1
    erase_customer(store, settings, CARL)
    assert store.customer_responses(CARL) == []
    assert_equals_a_rebuild(store, settings)

    # Retiring a settled survey (TRACKER_RETENTION_DAYS) keeps what it counted.
    retained = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    retire_old_records(store, retained, now_ms())
    assert store.customer_responses(DINA) == []
    assert_equals_a_rebuild(store, retained)


def test_a_survey_too_long_to_pack_into_a_compact_hash_stays_unpacked(world: World, store: Any) -> None:
    sid = world.solved_and_answered("T-1", ANNA, 4)
    before = store.redis.hgetall(keys.survey(sid))
    hash_value(store, REDIS_DEFAULT_HASH_VALUE)  # Redis's default: the packed value would make it a hash table
    assert store.settle([sid]) == 0
    assert store.redis.hgetall(keys.survey(sid)) == before
    assert store.redis.object("encoding", keys.survey(sid)) in ("listpack", "ziplist")


def test_a_survey_holding_a_separator_stays_unpacked(world: World, store: Any) -> None:
    sid = world.solved_and_answered("T-1", ANNA, 4)
    store.redis.hset(keys.survey(sid), coded("subject"), f"odd{SEPARATOR}subject")
    assert store.settle([sid]) == 0
    assert PACKED_FIELD not in store.redis.hgetall(keys.survey(sid))
    assert store.survey(sid).subject == f"odd{SEPARATOR}subject"


def test_a_layout_5_redis_is_refused_until_upgrade_store_settles_its_closed_surveys(
        answered: World, store: Any, env: dict[str, str], settings: Any) -> None:
    client, at = answered.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    closed = [s.sid for s in (store.customer_surveys(ANNA)[0], store.customer_surveys(DINA)[0])]
    for sid in closed:  # their answer time is over
        store.redis.hset(keys.survey(sid), coded("expires_at"), str(at - DAY_MS))
    before = readable(store, client, settings, auth, at)
    store.redis.set(keys.LAYOUT, keys.LAYOUT_CODED)
    refused_as_behind(env)
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "2 closed surveys settled" in upgraded.stdout and "rebuilt" not in upgraded.stdout
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    settled = {sid for sid, record in stored_surveys(store).items() if PACKED_FIELD in record}
    assert settled == set(closed) and not any(store.redis.exists(keys.survey(sid)) for sid in closed)  # filed
    after = readable(store, client, settings, auth, at)
    assert {k: v for k, v in after.items() if k != "hashes"} == {k: v for k, v in before.items() if k != "hashes"}
    assert_equals_a_rebuild(store, settings)
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 closed surveys settled" in again.stdout and "already" in again.stdout
    assert settle_expired(store, settings, at) == 0


FIELDS = {"sid": "s1", "st": "answered", "tk": "zendesk:42", "so": "zendesk", "ti": "42", "cu": "kari@example.no",
          "og": "example.no", "sv": "1790618366972", "ca": "1790621966975", "sn": "1790621966975",
          "ex": "1791831566975", "aa": "1790622966975", "fa": "1790621999999", "ra": "4", "cg": "2",
          "wt": "8.048902331773437", "wd": "603.6676748830079", "dy": "2026-09-28", "sj": "Hei – æøå 😀",
          "comment": "kept as it is"}


@pytest.mark.parametrize("changed", [
    {},  # ticket key, organisation, creation time and first answer derived; times in base 36
    {"tk": "o|shopify:42", "og": "acme", "ca": "1790621966974", "fa": "1790622966975"},  # nothing derived
    {"cu": "no-at-sign", "og": "no-at-sign"},  # no email domain to derive from
    {"sv": "0", "aa": "999999999999999"},  # the edges of the times packed
    {"ti": "", "so": "", "tk": ":"},  # derived from empty values
])
def test_a_survey_packed_and_thawed_holds_exactly_what_it_held(store: Any, changed: dict[str, str]) -> None:
    key = keys.survey("s1")
    held = {**FIELDS, **changed}
    store.redis.hset(key, mapping=held)
    assert store.settle(["s1"]) == 1
    kept = stored(store, "s1")
    assert set(kept) == {"sid", "st", PACKED_FIELD, "comment"} and not store.redis.exists(key)
    assert {**unpacked(kept[PACKED_FIELD]), "sid": "s1", "st": held["st"], "comment": held["comment"]} == held
    assert store.survey("s1") is not None and store.survey("s1").subject == held["sj"]
    store.script("thaw_survey")(keys=[key, keys.survey_filed("s1")])
    assert store.redis.hgetall(key) == held


@pytest.mark.parametrize("odd", [{"sn": "01790621966975"}, {"aa": "-5"}, {"ex": "1.5"}, {"sv": "1" * 16},
                                 {"an": "x\x1dy"}, {"st": "sending"}])
def test_a_survey_whose_values_pack_cannot_take_stays_as_it_is(store: Any, odd: dict[str, str]) -> None:
    key = keys.survey("s1")
    store.redis.hset(key, mapping={**FIELDS, **odd})
    assert store.settle(["s1"]) == 0
    assert store.redis.hgetall(key) == {**FIELDS, **odd}


def test_a_key_that_is_not_a_surveys_hash_is_left_and_the_others_settle(world: World, store: Any) -> None:
    sid = world.solved_and_answered("T-1", ANNA, 4)
    store.redis.set(keys.survey("broken"), "not a hash")
    assert store.settle(["broken", sid]) == 1
    assert PACKED_FIELD in stored(store, sid)
    assert store.redis.get(keys.survey("broken")) == "not a hash"
