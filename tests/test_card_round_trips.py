"""The score card GET's Redis round trips (issue 9, hot paths): counted on the wire, never timed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tracker.store import keys

# The key check with its rate count and the card's reads (the customer's own keys: the profile holds their orders'
# summary and a copy of their newest answer), pipelined together: one.
CARD_GET_ROUND_TRIPS = 1


@pytest.fixture(autouse=True)
def closed_after(store) -> Iterator[None]:
    yield
    store.redis.connection_pool.disconnect()  # its sockets closed now, not left to the garbage collector


def test_a_customer_card_get_takes_one_redis_round_trip_key_check_included(world, client, store, round_trips):
    world.solve("T-1", "kari@example.no")
    world.order("O-1", "kari@example.no", "120.00")
    world.order("O-2", "kari@example.no", "80.50")
    assert world.send() == ["sent"]
    world.answer("kari@example.no", 4)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = round_trips[0]
    first = client.get("/api/v1/customers/kari@example.no", headers=auth)  # connections opened, key seen once
    assert first.status_code == 200
    assert round_trips[0] - before <= 2, round_trips[0] - before  # a key not seen yet: its digest looked up first
    assert first.json["last_response"]["rating"] == 4 and first.json["orders"]["count"] == 2

    before = round_trips[0]
    again = client.get("/api/v1/customers/kari@example.no", headers=auth)
    assert again.status_code == 200 and again.json == first.json
    assert round_trips[0] - before <= CARD_GET_ROUND_TRIPS, round_trips[0] - before

    before = round_trips[0]
    assert client.get("/api/v1/customers/nobody@example.no", headers=auth).status_code == 404
    assert round_trips[0] - before <= CARD_GET_ROUND_TRIPS, round_trips[0] - before


def test_a_key_made_again_under_a_revoked_name_gets_its_own_scopes_not_the_remembered_ones(client, store):
    old = {"Authorization": f"Bearer {store.create_key('lead', ('read', 'admin'))}"}
    assert client.get("/api/v1/customers/nobody@example.no", headers=old).status_code == 404
    assert store.revoke_key("lead")
    new = {"Authorization": f"Bearer {store.create_key('lead', ('admin',))}"}
    assert client.get("/api/v1/customers/nobody@example.no", headers=old).status_code == 401
    lacking = client.get("/api/v1/customers/nobody@example.no", headers=new)
    assert lacking.status_code == 403 and "'read'" in lacking.json["message"]


def commands_of(store, request: Any) -> int:
    """Run a request; return the commands Redis executed for it (INFO commandstats)."""
    store.redis.config_resetstat()
    request()
    stats = store.redis.info("commandstats")
    return sum(int(v["calls"]) for name, v in stats.items() if not name.startswith(("cmdstat_info", "cmdstat_config")))


def test_a_card_get_runs_four_commands_and_the_rate_counters_keep_their_expiry(world, client, store):
    world.solve("T-1", "kari@example.no")
    assert world.send() == ["sent"]
    world.answer("kari@example.no", 4)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    card = lambda: client.get("/api/v1/customers/kari@example.no", headers=auth)  # noqa: E731
    assert card().status_code == 200
    # The key's digest, the count, the card's two reads (the profile, which holds the sums, and the day buckets);
    # the first request of a rate window also gives its counter an expiry (three requests: a window may start
    # among them, once).
    counts = sorted(commands_of(store, card) for _ in range(3))
    assert counts[:2] == [4, 4] and counts[2] in (4, 5), counts
    counters = list(store.redis.scan_iter(match=keys.rate_counter("lead", 0).rsplit(":", 1)[0] + ":*"))
    assert counters and all(store.redis.pttl(name) > 0 for name in counters)

    store.redis.delete(*counters)  # gone (evicted, deleted): the request that makes it anew gives it its expiry
    assert card().status_code == 200
    counters = list(store.redis.scan_iter(match=keys.rate_counter("lead", 0).rsplit(":", 1)[0] + ":*"))
    assert counters and all(store.redis.pttl(name) > 0 for name in counters)
