"""A delivery's portions and its mark go to Redis in one round trip; a mark is trusted only once its portions are in.

The receiver appends each shard's portion of a delivery and marks the delivery seen (in the shard its id falls
in) in the same pipeline. Queued after the portions, the mark can still land when a portion failed: it then
names the portions' shards: a retry's append completes them, and a retry whose body is refused checks them before
it is answered "duplicate", so nothing acknowledged is lost and nothing is counted twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis.connection

from tests.support import solved_event
from tracker.events import event_record, parse_event
from tracker.model import Event
from tracker.store import Store, keys, log

WEBHOOK_ID = "msg-marks-1"
DELIVERY = f"standard:{WEBHOOK_ID}"


def received(store: Store) -> Counter[str]:
    return Counter({name: count for name, count in store.metric_counts().received.items() if count})


def logged(store: Store) -> list[str]:
    return sorted(json.loads(payload)["id"] for payload in store.iter_log())


def spanning_events(count: int) -> list[Event]:
    """Events of customers in `count` different shards."""
    events: list[Event] = []
    shards: set[int] = set()
    number = 0
    while len(events) < count:
        number += 1
        event = parse_event(solved_event(ticket=f"T-{number}", email_address=f"p{number}@example.no")
                            | {"customer": {"id": f"c-{number}", "email": f"p{number}@example.no"}}, "standard")
        if log.shard_of(event) not in shards:
            shards.add(log.shard_of(event))
            events.append(event)
    return events


def fail_half_way(store: Store, delivery_id: str, events: list[Event], stored: list[Event]) -> None:
    """Leave what an attempt leaves whose pipeline stored only some portions and still wrote the mark."""
    for event in stored:
        shard = log.shard_of(event)
        store.script("append_delivery")(
            keys=[keys.log_part(shard, delivery_id), keys.stream(shard), keys.log_kick(shard), keys.log_cursor(shard)],
            args=[log.DEDUPE_TTL, log.KICK_TTL_MS, json.dumps(event_record(event), separators=(",", ":"),
                                                               sort_keys=True)])
    home = keys.bucket_of(delivery_id)
    mark = log.MARK + ",".join(str(s) for s in sorted({log.shard_of(event) for event in events}))
    assert store.script("log_mark_delivery")(keys=[keys.seen(home, delivery_id), keys.received(home)],
                                             args=[log.DEDUPE_TTL, "standard", mark]) == 1


def test_a_delivery_is_appended_and_marked_in_one_round_trip_and_its_retry_known_in_one_more(store, round_trips):
    events = spanning_events(3)
    assert not store.known_delivery("d-0", "standard")  # loads the script: counted below is its use alone
    with round_trips() as count:
        outcome = store.append_delivery("d-1", events, "standard")
    assert count() == 1 and outcome > 0
    with round_trips() as count:
        assert store.known_delivery("d-1", "standard")
    assert count() == 2  # the mark, then its portions
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}


def test_a_mark_whose_portion_is_missing_is_not_a_duplicate_and_the_retry_stores_the_rest_once(store):
    events = spanning_events(3)
    fail_half_way(store, "d-1", events, stored=events[:2])
    assert not store.known_delivery("d-1", "standard")  # the retry is parsed and appended
    assert received(store) == {}  # neither the failed attempt nor the retry counted yet
    assert store.append_delivery("d-1", events, "standard") > 0
    assert logged(store) == sorted(event.id for event in events)
    assert received(store) == {"standard|accepted": 1}
    assert store.known_delivery("d-1", "standard")
    assert store.append_delivery("d-1", events, "standard") == -1
    assert logged(store) == sorted(event.id for event in events)
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 2}


def test_a_retry_that_does_not_ask_first_completes_a_half_stored_delivery_as_accepted(store):
    # The receiver asks nothing before the append of a body that parses: the append finds the mark.
    events = spanning_events(2)
    fail_half_way(store, "d-1", events, stored=events[:1])
    outcome = store.append_delivery("d-1", events, "standard")
    assert log.kicked_shards(outcome) == sorted(log.shard_of(event) for event in events)
    assert logged(store) == sorted(event.id for event in events)
    assert received(store) == {"standard|accepted": 1}  # counted by the attempt that marked it, once
    assert store.append_delivery("d-1", events, "standard") == -1
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}


def test_a_mark_written_after_its_portions_by_an_earlier_version_is_a_duplicate_as_it_is(store):
    home = keys.bucket_of("d-old")
    assert store.script("log_mark_delivery")(keys=[keys.seen(home, "d-old"), keys.received(home)],
                                             args=[log.DEDUPE_TTL, "standard", "1"]) == 1
    assert store.known_delivery("d-old", "standard")
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}


def test_an_old_mark_makes_a_repeat_a_duplicate_even_when_its_body_goes_to_new_shards(store):
    home = keys.bucket_of("d-old")
    store.script("log_mark_delivery")(keys=[keys.seen(home, "d-old"), keys.received(home)],
                                      args=[log.DEDUPE_TTL, "standard", "1"])
    assert store.append_delivery("d-old", spanning_events(2), "standard") < 0
    assert logged(store) == []


def two_bodies() -> tuple[list[Event], list[Event]]:
    """Two bodies that would share a delivery id: one event each, in two different shards."""
    first, other = spanning_events(2)
    return [first], [other]


def test_a_repeat_whose_body_goes_to_another_shard_is_a_duplicate_and_its_portion_withdrawn(store):
    first, other = two_bodies()
    assert store.append_delivery("d-1", first, "standard") > 0
    outcome = store.append_delivery("d-1", other, "standard")  # the same id, another customer's event
    assert outcome < 0
    # The kick its portion set is still sent: an append that found it set sent no task of its own.
    assert log.kicked_shards(outcome) == [log.shard_of(other[0])]
    assert logged(store) == [first[0].id]
    shard = log.shard_of(other[0])
    assert not store.redis.exists(keys.log_part(shard, "d-1"))
    assert store.lag() == (1, 0, 1)  # held, waiting, unread: the withdrawn entry is none of them
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}


def test_a_withdrawn_portion_is_kept_when_an_applier_may_have_read_it(store):
    first, other = two_bodies()
    shard = log.shard_of(other[0])
    assert store.append_delivery("d-1", first, "standard") > 0
    store.redis.set(keys.log_lease(shard), "another applier", px=60_000)  # it may read the shard meanwhile
    outcome = store.append_delivery("d-1", other, "standard")
    assert log.kicked_shards(outcome) == [shard]  # kept: stored, and to be applied as it was acknowledged
    assert logged(store) == sorted([first[0].id, other[0].id])
    assert received(store) == {"standard|accepted": 1}
    store.redis.delete(keys.log_lease(shard))
    assert store.append_delivery("d-1", other, "standard") == -1  # its portion is in now


def test_a_withdrawn_portion_is_kept_when_the_cursor_has_passed_it(store):
    first, other = two_bodies()
    shard = log.shard_of(other[0])
    assert store.append_delivery("d-1", first, "standard") > 0
    # A stream id far ahead of any entry appended now: as if an applier had passed the portion already.
    store.redis.hset(keys.log_cursor(shard), "id", "99999999999999-0")
    assert store.append_delivery("d-1", other, "standard") >= 0
    assert logged(store) == sorted([first[0].id, other[0].id])


def test_a_portion_that_fails_while_the_mark_goes_in_is_stored_by_the_senders_retry(client, store, post_event):
    body = solved_event()
    shard = log.shard_of(parse_event(body, "standard"))
    store.redis.set(keys.stream(shard), "not a stream")  # every XADD to the shard fails; the mark still goes in
    first = post_event("standard", body, headers={"webhook-id": WEBHOOK_ID})
    assert first.status_code == 500, first.json
    assert store.redis.get(keys.seen(keys.bucket_of(DELIVERY), DELIVERY)) == f"{log.MARK}{shard}"
    assert not store.redis.exists(keys.log_part(shard, DELIVERY))
    store.redis.delete(keys.stream(shard))
    again = post_event("standard", body, headers={"webhook-id": WEBHOOK_ID})
    assert (again.status_code, again.json) == (202, {"status": "accepted", "events": 1})
    assert logged(store) == [body["id"]]
    third = post_event("standard", body, headers={"webhook-id": WEBHOOK_ID})
    assert (third.status_code, third.json) == (200, {"status": "duplicate"})
    assert logged(store) == [body["id"]]
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}


@pytest.fixture
def round_trips() -> Any:
    """Count the round trips this process makes to Redis (one per command sent or pipeline sent)."""
    from contextlib import contextmanager

    @contextmanager
    def counting() -> Iterator[Any]:
        sent = [0]
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(self: Any, command: Any, check_health: bool = True) -> None:
            sent[0] += 1
            original(self, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            yield lambda: sent[0]
        finally:
            redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]

    return counting


def test_a_new_delivery_costs_the_receiver_one_round_trip_and_so_does_its_repeat(client, store, post_event,
                                                                                 round_trips):
    body = solved_event()
    shard = log.shard_of(parse_event(body, "standard"))
    store.redis.set(keys.log_kick(shard), "1", px=60_000)  # its drain is already due: no kick to send
    assert post_event("standard", solved_event(ticket="T-warm"), headers={"webhook-id": "warm"}).status_code == 202
    with round_trips() as count:
        first = post_event("standard", body, headers={"webhook-id": WEBHOOK_ID})
    assert (first.status_code, count()) == (202, 1)  # asked nothing before the append: the append finds repeats
    with round_trips() as count:
        again = post_event("standard", body, headers={"webhook-id": WEBHOOK_ID})
    assert (again.status_code, again.json, count()) == (200, {"status": "duplicate"}, 1)
    assert received(store) == {"standard|accepted": 2, "standard|duplicate": 1}


def test_a_repeated_delivery_id_with_another_customers_body_is_a_duplicate_and_stores_nothing(client, store,
                                                                                           post_event):
    bodies = []
    for number in range(1, 1000):
        body = solved_event(ticket=f"T-{number}", email_address=f"p{number}@example.no") | {
            "id": f"evt-{number}", "customer": {"id": f"c-{number}", "email": f"p{number}@example.no"}}
        if not bodies or log.shard_of(parse_event(body, "standard")) != log.shard_of(parse_event(bodies[0],
                                                                                                  "standard")):
            bodies.append(body)
        if len(bodies) == 2:
            break
    first = post_event("standard", bodies[0], headers={"webhook-id": WEBHOOK_ID})
    again = post_event("standard", bodies[1], headers={"webhook-id": WEBHOOK_ID})
    assert first.status_code == 202, first.json
    assert (again.status_code, again.json) == (200, {"status": "duplicate"})
    assert logged(store) == [bodies[0]["id"]]
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}
