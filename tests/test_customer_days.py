"""A customer's day buckets keep the days their trend can still read and expire after them (customer_days)."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from typing import Any

import pytest

from tests.support import World, tracker
from tests.test_outbox import _answered_long_ago, assert_equals_a_rebuild
from tracker.config import load_settings
from tracker.model import DAY_MS, day_of
from tracker.scores.cards import customer_card
from tracker.scores.maths import trend
from tracker.scores.rebuild import rebuild_scores
from tracker.store import keys
from tracker.store.customer_days import KEPT_DAYS, expire_at_ms, kept_days, lua_keep_days

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def now_ms() -> int:
    return int(time.time() * 1000)


def expiry(store: Any, key: str) -> int:
    """When a key expires (ms, from its PTTL: PEXPIRETIME needs Redis 7), -1 without an expiry, -2 when gone."""
    ttl = store.redis.pttl(key)
    return ttl if ttl < 0 else now_ms() + ttl


def held_days(store: Any, email: str) -> dict[str, str]:
    return store.redis.hgetall(keys.daily("customer", email))


def ago(days: int) -> str:
    return day_of(now_ms() - days * DAY_MS)


def newest_expiry(days_ago: int) -> int:
    """When buckets whose newest day is days_ago days before today expire (ms): KEPT_DAYS days after it."""
    return (date.fromisoformat(ago(days_ago)).toordinal() - date(1970, 1, 1).toordinal() + KEPT_DAYS) * DAY_MS


def test_the_buckets_hold_the_days_a_trend_reads_whatever_the_order_and_a_rebuild_writes_the_same(world, store, env):
    settings = load_settings(env)
    # In time order: the 100-day-old answer's day no trend reads any more, the later ones stay.
    for n, days_ago in enumerate((100, 50, 35, 5)):
        _answered_long_ago(world, f"T-A{n}", "kari@example.no", 2 + n % 3, days_ago)
    # Newest first: the older answers' days that a trend can no longer read are dropped as they arrive.
    for n, days_ago in enumerate((3, 60, 59, 200)):  # 60: KEPT_DAYS before today, no trend reads it
        _answered_long_ago(world, f"T-B{n}", "ola@example.no", 1 + n, days_ago)
    # Only answers older than the window: no buckets at all, the sums still count them.
    _answered_long_ago(world, "T-C", "quiet@example.no", 4, 70)

    assert set(held_days(store, "kari@example.no")) == {f"{ago(d)}:{p}" for d in (50, 35, 5) for p in "nv"}
    assert {field.partition(":")[0] for field in held_days(store, "ola@example.no")} == {ago(3), ago(59)}
    assert not store.redis.exists(keys.daily("customer", "quiet@example.no"))
    assert store.aggregate("customer", "quiet@example.no").n == 1
    assert store.aggregate("customer", "ola@example.no").n == 4
    for email, newest in (("kari@example.no", 5), ("ola@example.no", 3)):
        assert abs(expiry(store, keys.daily("customer", email)) - newest_expiry(newest)) < 5_000

    # The card's trend is the one every answer's day gives.
    kari = customer_card(store, settings, "kari@example.no", now_ms())
    every_day = {ago(d): (1, 0) for d in (100, 50, 35, 5)}
    for day, (n, v) in store.aggregate("customer", "kari@example.no").days.items():
        every_day[day] = (n, v)
    assert kari is not None and kari.trend is not None
    assert kari.trend == trend(every_day, now_ms())

    assert_equals_a_rebuild(store, settings)
    before = {email: held_days(store, email) for email in ("kari@example.no", "ola@example.no")}
    rebuild_scores(store, settings)
    for email, days in before.items():
        assert held_days(store, email) == days
    assert abs(expiry(store, keys.daily("customer", "kari@example.no")) - newest_expiry(5)) < 5_000
    assert not store.redis.exists(keys.daily("customer", "quiet@example.no"))


def test_buckets_written_before_the_rule_are_trimmed_once_by_the_upgrade(world, store, env):
    _answered_long_ago(world, "T-1", "kari@example.no", 4, 10)
    _answered_long_ago(world, "T-2", "ola@example.no", 2, 20)
    # As layout 8 left them: every day ever answered on, no expiry.
    kari, ola = keys.daily("customer", "kari@example.no"), keys.daily("customer", "ola@example.no")
    store.redis.hset(kari, mapping={f"{ago(90)}:n": 1, f"{ago(90)}:v": 3})
    store.redis.persist(kari)
    store.redis.delete(ola)
    store.redis.hset(ola, mapping={f"{ago(80)}:n": 2, f"{ago(80)}:v": 6})
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "2 customers' day buckets trimmed" in upgraded.stdout
    assert set(held_days(store, "kari@example.no")) == {f"{ago(10)}:n", f"{ago(10)}:v"}
    assert abs(expiry(store, kari) - newest_expiry(10)) < 5_000
    assert not store.redis.exists(ola)  # its newest day no trend reads any more
    assert store.trim_customer_days() == 0  # safe to run again: nothing left without an expiry
    again = tracker(env, "upgrade-store")
    assert "0 customers' day buckets trimmed" in again.stdout and "already" in again.stdout


def test_the_lua_twin_numbers_days_and_keeps_them_as_python_does(store):
    """keep_days (Lua) against kept_days and expire_at_ms (Python): its day numbers from 1970 to 2400 (leap days and
    centuries too), and what it keeps and when the key expires, on random days around a random today."""
    rng = random.Random(9)
    numbers = store.redis.register_script(lua_keep_days() + "local found = {}\n"
                                          "for i, day in ipairs(ARGV) do found[i] = day_number(day) end\nreturn found")
    epoch = date(1970, 1, 1)
    named = [epoch + timedelta(days=rng.randrange(0, 157_000)) for _ in range(2_000)]
    named += [date(2000, 2, 29), date(2000, 3, 1), date(2100, 2, 28), date(2100, 3, 1), date(1972, 2, 29), epoch]
    assert numbers(keys=[keys.daily("customer", "x@example.no")], args=[day.isoformat() for day in named]) == [
        (day - epoch).days for day in named]

    keep = store.redis.register_script(lua_keep_days() + "keep_days(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"
                                       "return {redis.call('HGETALL', KEYS[1]), redis.call('PTTL', KEYS[1])}")
    for round_ in range(40):
        # A day to come stands for today, so the kept days' expiry is still ahead and the key can be read.
        day = date.today() + timedelta(days=rng.randrange(1, 60_000))
        days = {(day - timedelta(days=rng.randrange(0, 3 * KEPT_DAYS))).isoformat(): (1, rng.randrange(0, 7))
                for _ in range(rng.randrange(1, 12))}
        days[(day - timedelta(days=rng.randrange(0, KEPT_DAYS))).isoformat()] = (2, 5)  # one at least is kept
        key = keys.daily("customer", f"c{round_}@example.no")
        store.redis.hset(key, mapping={f"{name}:{part}": value for name, (n, v) in days.items()
                                       for part, value in (("n", n), ("v", v)) if value})
        held, ttl = keep(keys=[key], args=[KEPT_DAYS, (day - epoch).days])
        kept = kept_days(days, (day - epoch).days * DAY_MS + 3_600_000)
        assert kept and sorted(held[::2]) == sorted(f"{name}:{part}" for name, (n, v) in kept.items()
                                                    for part, value in (("n", n), ("v", v)) if value)
        expected = expire_at_ms(kept)
        assert expected is not None and abs(now_ms() + ttl - expected) < 5_000, day
