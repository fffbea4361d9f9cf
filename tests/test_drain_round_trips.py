"""A kicked drain's Redis round trips and its last look at a shard (issue 9, accepted and applied): counted on the
wire, never timed; the kick's delay read from the message on the broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from tests.support import iso
from tracker.events import parse_event
from tracker.ingest import apply as ingest
from tracker.model import Event
from tracker.store import keys
from tracker.store.log import ShardStep, kick_group, kicked_shards, shard_of

# Open the shard (lease, cursor, entries), the apply's three rounds (tickets, customers with the name read, the name
# index), then the cursor advanced and the last look that lets kick and lease go, in one: five. It took eighteen
# before, and six while the advance and the look were two.
KICKED_DRAIN_ROUND_TRIPS = 5


@pytest.fixture(autouse=True)
def closed_after(store) -> Iterator[None]:
    yield
    if not isinstance(store.redis, RedisCluster):
        store.redis.connection_pool.disconnect()  # its sockets closed now, not left to the garbage collector


def solved(n: int) -> Event:
    return parse_event({"type": "ticket.solved", "id": f"evt-{n}", "occurred_at": iso(3600),
                        "ticket": {"id": f"T-{n}", "subject": "Card declined", "status": "solved",
                                   "agent": {"id": "a-1", "name": "Agent"}},
                        "customer": {"id": f"c-{n}", "email": f"p{n}@example.no", "name": f"Person {n}"}},
                       "standard")


def same_shard_as(event: Event) -> Event:
    return next(other for other in map(solved, range(2, 1000)) if shard_of(other) == shard_of(event))


def test_a_kicked_drain_of_one_webhook_takes_six_round_trips_and_leaves_kick_and_lease_free(store, settings,
                                                                                           round_trips):
    event = solved(1)
    shards = kicked_shards(store.append_delivery("d-1", [event], "standard"))
    assert shards == [shard_of(event)]
    applied, left = ingest.drain(store, settings, "test", shards=shards)  # connections opened, scripts loaded
    assert (applied, left) == (1, ())
    assert store.redis.hget(keys.customer("p1@example.no", "profile"), "name") == "Person 1"
    assert store.find_by_name("person 1", 5) == [("p1@example.no", "person 1")]
    shard = shards[0]
    assert not store.redis.exists(keys.log_lease(shard), keys.log_kick(shard))
    # The next delivery to the shard kicks a drain of its own, which applies it.
    again = same_shard_as(event)
    assert kicked_shards(store.append_delivery("d-2", [again], "standard")) == [shard]
    before = round_trips[0]
    assert ingest.drain(store, settings, "test", shards=[shard]) == (1, ())
    assert round_trips[0] - before <= KICKED_DRAIN_ROUND_TRIPS, round_trips[0] - before


def test_a_kicked_drain_of_a_groups_four_shards_takes_the_round_trips_of_one(store, settings, round_trips):
    group = kick_group(shard_of(solved(1)))
    events = {}  # one webhook for each shard of the group
    for n in range(1, 1000):
        event = solved(n)
        if kick_group(shard_of(event)) == group:
            events.setdefault(shard_of(event), event)
    assert len(events) == 4
    warm = next(e for e in map(solved, range(1000, 2000)) if kick_group(shard_of(e)) == group)
    store.append_delivery("warm", [warm], "standard")
    assert ingest.drain(store, settings, "test", shards=[shard_of(warm)]) == (1, ())  # connections, scripts
    for shard, event in events.items():
        store.append_delivery(f"d-{shard}", [event], "standard")
    before = round_trips[0]
    assert ingest.drain(store, settings, "test", shards=sorted(events)) == (4, ())
    assert round_trips[0] - before <= KICKED_DRAIN_ROUND_TRIPS, round_trips[0] - before
    for shard, event in events.items():
        assert store.redis.exists(keys.customer(event.customer.email, "profile"))
        assert not store.redis.exists(keys.log_lease(shard), keys.log_kick(shard))
    assert store.lag().lag == 0


def test_a_step_over_several_shards_records_each_and_reads_on_but_not_where_the_lease_was_lost(store):
    first, second = (next(e for e in map(solved, range(n, 1000)) if shard_of(e) == shard) for n, shard in
                     ((1, 2), (1, 6)))
    for n, event in enumerate((first, second)):
        store.append_delivery(f"d-{n}", [event], "standard")
    opened = store.open_log_shards([2, 6, 10], "holder", 60_000, 200)
    assert sorted(opened) == [2, 6]  # shard 10 holds nothing: not opened, no lease taken
    assert not store.redis.exists(keys.log_lease(10))
    store.redis.set(keys.log_lease(6), "new")  # shard 6's lease ran out and another applier took it
    later = next(e for e in map(solved, range(1000, 2000)) if shard_of(e) == 2)
    store.append_delivery("d-later", [later], "standard")
    steps = [ShardStep(shard, [entry_id for entry_id, _ in opened[shard].entries], [],
                       opened[shard].entries[-1][0], look=True) for shard in (2, 6)]
    found = store.step_log_shards("holder", 60_000, 200, steps)
    recorded, look = found[2]
    assert recorded and [json.loads(record)["id"] for _, record in look.entries] == [later.id]  # the lease kept
    assert store.redis.hget(keys.log_cursor(2), "id") == steps[0].after
    assert store.redis.get(keys.log_lease(2)) == "holder" and not store.redis.exists(keys.log_kick(2))
    recorded, look = found[6]
    assert not recorded and look.lost  # nothing written: the new applier goes on from the cursor
    assert store.redis.hget(keys.log_cursor(6), "id") is None and store.redis.get(keys.log_lease(6)) == "new"
    store.release_log_leases([2, 6], "holder")
    assert not store.redis.exists(keys.log_lease(2)) and store.redis.get(keys.log_lease(6)) == "new"


def test_a_drains_taking_of_its_groups_mark_and_its_last_look_at_the_shards_are_one_round_trip(store, round_trips):
    event = solved(1)
    group = kick_group(shard_of(event))
    assert store.claim_kick(group)
    store.append_delivery("d-1", [event], "standard")  # came while the group's task drained: it sent no task
    before = round_trips[0]
    assert store.take_kicked(group) == [shard_of(event)]  # the mark taken first, then the look finds it
    assert round_trips[0] - before == 1
    assert not store.redis.exists(keys.log_kick_group(group))
    assert store.claim_kick(group)  # the next webhook of the group sends a task again


def test_a_kicked_drain_of_a_shard_with_nothing_to_apply_costs_one_look_and_takes_no_lease(store, settings,
                                                                                           round_trips):
    assert ingest.drain(store, settings, "test", shards=[4]) == (0, ())  # connections opened, the script loaded
    before = round_trips[0]
    assert ingest.drain(store, settings, "test", shards=[5]) == (0, ())
    assert round_trips[0] - before == 1
    assert not store.redis.exists(keys.log_lease(5))


def opened_one(store, shard: int, token: str):
    return store.open_log_shards([shard], token, 60_000, 200).get(shard)


def stepped_one(store, shard: int, token: str, after: str, passed: list[str] = ()):
    """One shard's step with its last look: the cursor moved past passed (when any), then the look."""
    return store.step_log_shards(token, 60_000, 200, [ShardStep(shard, passed, [], after, look=True)])[shard]


def test_an_append_after_a_drains_first_read_is_read_by_its_last_look_and_applied_by_it(store, settings):
    first = solved(1)
    shard, second = shard_of(first), same_shard_as(first)
    store.append_delivery("d-1", [first], "standard")
    opened = opened_one(store, shard, "holder")
    assert opened is not None and [record for _id, record in opened.entries] != []
    assert store.append_delivery("d-2", [second], "standard") == 0  # the first append's kick is still set
    recorded, look = stepped_one(store, shard, "holder", opened.entries[-1][0],
                                 [entry_id for entry_id, _ in opened.entries])
    assert recorded and len(look.entries) == 1 and not look.released  # the second delivery, the lease kept for it
    assert json.loads(look.entries[0][1])["id"] == second.id
    assert store.redis.get(keys.log_lease(shard)) == "holder" and not store.redis.exists(keys.log_kick(shard))
    recorded, last = stepped_one(store, shard, "holder", look.entries[0][0], [look.entries[0][0]])
    assert recorded and last.released and not last.entries and not store.redis.exists(keys.log_lease(shard))
    assert opened_one(store, shard, "another") is None  # nothing left: no lease taken either
    assert not store.redis.exists(keys.log_lease(shard))


def test_a_last_look_by_an_applier_whose_lease_was_taken_over_changes_nothing(store):
    event = solved(1)
    shard = shard_of(event)
    store.append_delivery("d-1", [event], "standard")
    opened = opened_one(store, shard, "slow")
    assert opened is not None
    store.redis.set(keys.log_lease(shard), "new")  # the slow applier's lease ran out and another took the shard
    _recorded, look = stepped_one(store, shard, "slow", opened.after)
    assert look.lost and not look.entries and not look.released
    assert store.redis.get(keys.log_lease(shard)) == "new" and store.redis.exists(keys.log_kick(shard))
    assert opened_one(store, shard, "third") is None  # held


def test_a_shard_holding_only_waiting_entries_is_opened_and_its_look_keeps_the_lease_for_them(store, settings):
    shard = 3
    store.redis.zadd(keys.log_waiting(shard), {"1-0": 0})
    opened = opened_one(store, shard, "holder")
    assert opened is not None and opened.entries == [] and opened.after == "0-0"
    _recorded, look = stepped_one(store, shard, "holder", opened.after)
    assert look.waiting and not look.released and store.redis.get(keys.log_lease(shard)) == "holder"


def test_a_pipeline_of_a_few_scripts_asks_no_script_exists_and_one_of_many_asks_once(store):
    release_if = store.script("release_if")
    store.redis.script_flush()  # no script loaded: EVAL by source needs none
    store.redis.set("t:test:a", "mine")
    store.redis.config_resetstat()
    pipe = store.redis.pipeline(transaction=False)
    release_if(keys=["t:test:a"], args=["not mine"], client=pipe)
    release_if(keys=["t:test:a"], args=["mine"], client=pipe)
    assert pipe.execute() == [0, 1]
    stats = store.redis.info("commandstats")
    assert _script_calls(stats) == 0 and stats["cmdstat_eval"]["calls"] == 2

    many = 20
    for n in range(many):
        store.redis.set(f"t:test:{n}", "mine")
    store.redis.config_resetstat()
    pipe = store.redis.pipeline(transaction=False)
    for n in range(many):
        release_if(keys=[f"t:test:{n}"], args=["mine"], client=pipe)
    assert pipe.execute() == [1] * many
    stats = store.redis.info("commandstats")
    assert _script_calls(stats) == 1 and stats["cmdstat_evalsha"]["calls"] == many
    assert stats.get("cmdstat_script|load") is None  # EVAL by source left the script in Redis's cache


def _script_calls(stats: dict[str, Any]) -> int:
    """Return the SCRIPT calls INFO commandstats counts: Redis 7 counts each subcommand apart (script|exists,
    script|load), 6.2 (the one `make run` uses, and the tests' without a redis-server on PATH) all as script."""
    return sum(int(stat["calls"]) for name, stat in stats.items()
               if name == "cmdstat_script" or name.startswith("cmdstat_script|"))


def test_a_pipeline_of_many_scripts_goes_on_the_threads_own_connection_its_errors_in_place(store, monkeypatch):
    if isinstance(store.redis, RedisCluster):
        pytest.skip("a cluster pipeline sends its scripts by source, a trip per node")
    release_if = store.script("release_if")
    many = 12
    for n in range(many):
        store.redis.set(f"t:test:{n}", "mine")
    store.redis.delete("t:test:5")
    store.redis.hset("t:test:5", "not", "a string")  # WRONGTYPE for the sixth call, answered in its place
    store.redis.script_flush()
    own = store.redis._own.connection
    writers: list[object] = []
    send = redis.Connection.send_packed_command

    def noted(self: redis.Connection, command: object, check_health: bool = True) -> None:
        writers.append(self)
        send(self, command, check_health)

    monkeypatch.setattr(redis.Connection, "send_packed_command", noted)
    pipe = store.redis.pipeline(transaction=False)
    for n in range(many):
        release_if(keys=[f"t:test:{n}"], args=["mine"], client=pipe)
    replies = pipe.execute(raise_on_error=False)
    assert [reply for n, reply in enumerate(replies) if n != 5] == [1] * (many - 1)
    assert isinstance(replies[5], redis.ResponseError) and "WRONGTYPE" in str(replies[5])
    # SCRIPT EXISTS, the SCRIPT LOAD of the flushed script, then the batch: three writes, all on the kept connection.
    assert len(writers) == 3 and all(writer is own for writer in writers)
    pipe = store.redis.pipeline(transaction=False)
    for n in range(many):
        release_if(keys=[f"t:test:{n}"], args=["mine"], client=pipe)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipe.execute()
    assert store.round_trip([("SET", "t:test:in-step", "1"), ("GET", "t:test:in-step")]) == [True, "1"]


def test_the_web_sends_a_drain_kick_to_start_after_the_kick_delay_and_other_tasks_at_once(settings, broker_url):
    from workers.celery_app import KICK_DELAYS, QUEUE, create_celery, web_enqueue

    broker = redis.Redis.from_url(broker_url, decode_responses=True)
    broker.delete(QUEUE)
    enqueue = web_enqueue(create_celery(settings))
    sent = time.time()
    enqueue("tracker.drain_kicked", 3)
    enqueue("tracker.send_alert", "s-1", 1)
    messages = {json.loads(raw)["headers"]["task"]: json.loads(raw)["headers"] for raw in broker.lrange(QUEUE, 0, -1)}
    broker.delete(QUEUE)
    assert messages["tracker.send_alert"]["eta"] is None
    from datetime import datetime

    eta = datetime.fromisoformat(messages["tracker.drain_kicked"]["eta"]).timestamp()
    delay = KICK_DELAYS["tracker.drain_kicked"]
    assert 0 < delay <= 1.0  # well inside the kick's own life (log.KICK_TTL_MS): a later webhook kicks again
    assert sent + delay - 0.05 <= eta <= time.time() + delay + 0.05
