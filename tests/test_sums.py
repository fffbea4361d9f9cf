"""An entity's sums and high-water marks in one hash, a customer's in their profile (key layout 10,
tracker.store.sums): the loop, a rebuild and an erasure keep the profile whole and count as before; a hash of sums
alone is no customer; `tracker upgrade-store` moves a layout 9 Redis's marks and customers' sums in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import World, refused_as_behind, tracker
from tests.test_layout import ANNA, BJORN, CARL, DINA, four_customers, readable
from tests.test_outbox import assert_equals_a_rebuild
from tests.test_settle import now_ms
from tracker.privacy.erase import erase_customer
from tracker.scores.rebuild import rebuild_scores
from tracker.store import keys
from tracker.store.sums import SUM_FIELDS, is_mark, own_fields

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)
EMAILS = (ANNA, BJORN, CARL, DINA)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def entities(store: Any) -> list[tuple[str, str]]:
    return [(kind, ident) for kind in keys.AGGREGATE_KINDS for ident in store.ids(kind)]


def layout9_keys(store: Any) -> list[str]:
    return sorted(name for pattern in keys.LAYOUT9_SUMS_MATCH for name in store.redis.scan_iter(match=pattern))


def to_layout9(store: Any) -> int:
    """Move every mark and customer's sum out into the hashes layout 9 kept them in; return the hashes written."""
    written = 0
    for kind, ident in entities(store):
        home = keys.aggregate(kind, ident)
        held = store.redis.hgetall(home)
        marks = {name: value for name, value in held.items() if is_mark(name)}
        sums = {name: value for name, value in held.items() if name in SUM_FIELDS}
        moved = {keys.layout9_marks(kind, ident): marks}
        if kind == "customer":
            moved[keys.customer(ident, "agg")] = sums
        for name, fields in moved.items():
            if fields:
                store.redis.hset(name, mapping=fields)
                store.redis.hdel(home, *fields)
                written += 1
    return written


def _without_sums(record: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in record.items() if name not in SUM_FIELDS}


def test_sums_and_marks_share_one_hash_and_a_customer_s_is_their_profile(
        world: World, store: Any, settings: Any) -> None:
    four_customers(world)
    assert layout9_keys(store) == []
    for email in EMAILS:
        profile = store.redis.hgetall(keys.customer(email, "profile"))
        assert profile["name"] and profile["sent"] == "1" and any(is_mark(name) for name in profile), email
        assert store.profile(email).name == profile["name"] and "n" not in own_fields(profile)
        assert keys.applied_marks("customer", email) == keys.aggregate("customer", email) == \
            keys.customer(email, "profile")
    assert store.aggregate("customer", BJORN).n == 1 and store.aggregate("customer", DINA).n == 0
    assert any(is_mark(name) for name in store.redis.hgetall(keys.aggregate("team", "vip")))
    assert_equals_a_rebuild(store, settings)
    rest = {email: _without_sums(store.redis.hgetall(keys.customer(email, "profile"))) for email in EMAILS}
    rebuild_scores(store, settings)  # the sums written again, every other field of the profile kept
    assert {email: _without_sums(store.redis.hgetall(keys.customer(email, "profile"))) for email in EMAILS} == rest
    assert all(store.redis.hget(keys.customer(email, "profile"), "sent") == "1" for email in EMAILS)
    assert_equals_a_rebuild(store, settings)
    erase_customer(store, settings, CARL)
    assert not store.redis.exists(keys.customer(CARL, "profile")) and store.profile(CARL) is None
    assert_equals_a_rebuild(store, settings)


def test_a_profile_holding_only_sums_and_marks_is_no_customer(client: Any, store: Any) -> None:
    email = "counted@example.no"
    store.redis.hset(keys.customer(email, "profile"), mapping={"n": "1", "sent": "1", "value6": "6", "3": "12"})
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    assert store.profile(email) is None and store.card_parts(email) is None and store.order_totals([email]) == [None]
    assert client.get(f"/api/v1/customers/{email}", headers=auth).status_code == 404
    assert store.customer_footprint(email)["profile"] == {}


def test_a_layout_9_redis_is_refused_until_upgrade_store_moves_its_sums_and_marks(
        world: World, store: Any, env: dict[str, str], settings: Any) -> None:
    four_customers(world)
    client, at = world.client, now_ms()
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = readable(store, client, settings, auth, at)
    written = to_layout9(store)
    assert written == len(layout9_keys(store)) > len(EMAILS)  # every entity's marks, every customer's sums
    assert not any(name in SUM_FIELDS for name in store.redis.hgetall(keys.customer(ANNA, "profile")))
    store.redis.set(keys.LAYOUT, keys.LAYOUT_FILED)
    refused_as_behind(env)
    # An upgrade stopped after one hash: running it again finishes it.
    first = layout9_keys(store)[0]
    assert store.script("move_sums")(keys=[first, keys.layout9_home(first)]) > 0
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"{written - 1} hashes of marks and customers' sums moved" in upgraded.stdout
    assert "rebuilt" not in upgraded.stdout
    assert layout9_keys(store) == [] and store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert readable(store, client, settings, auth, at) == before
    assert store.aggregate("customer", ANNA).n == 1 and store.aggregate("team", "vip").n == 1
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 hashes of marks and customers' sums moved" in again.stdout
    assert "already" in again.stdout
    world.answer(BJORN, 5, "Best")  # the marks moved in still guard every step: it counts once
    assert store.aggregate("customer", BJORN).n == 1
    assert_equals_a_rebuild(store, settings)
