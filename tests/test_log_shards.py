"""The sharded event log: routing, once-only appends across shards, any number of workers, leases, retention."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.signing import signed
from tests.support import ROOT, indexed, wait_until
from tracker.config import load_settings
from tracker.events import event_record, parse_event
from tracker.ingest import apply as ingest
from tracker.model import DAY_MS, Event
from tracker.store import Store, keys, log

DELAY_S = 30 * 86400  # no survey falls due while a test runs: the due sets are part of the state compared
due_sets = set(keys.due_sets())


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TRACKER_SURVEY_DELAY": str(DELAY_S)}


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def ticket_event(kind: str, ticket: str, at_ms: int, customer: dict[str, str]) -> dict[str, Any]:
    status = {"ticket.created": "new", "ticket.solved": "solved", "ticket.reopened": "open",
              "ticket.closed": "closed"}[kind]
    return {"type": kind, "id": f"{ticket}-{kind}-{at_ms}", "occurred_at": iso(at_ms), "customer": customer,
            "ticket": {"id": ticket, "status": status, "subject": f"About {ticket}", "channel": "email",
                       "brand": "acme", "team": "billing", "agent": {"id": "a-7", "name": "Ola"}}}


def order_event(kind: str, order: str, at_ms: int, total: str, customer: dict[str, str]) -> dict[str, Any]:
    return {"type": kind, "id": f"{order}-{kind}-{at_ms}", "occurred_at": iso(at_ms), "customer": customer,
            "order": {"id": order, "total": total, "currency": "NOK"}}


def customer_events(n: int, base_ms: int, introduce: Callable[[int], bool]) -> list[dict[str, Any]]:
    """Three ticket histories and an order of customer n, in time order; only some carry the email.

    Every event names the customer by id (c-n); introduce(i) says whether event i also carries the email,
    which makes the id an alias of it. The first event always does, so each customer is known in the end.
    """
    events: list[dict[str, Any]] = []
    at = base_ms + n * 60_000
    for t in range(3):
        for step, kind in enumerate(("ticket.created", "ticket.solved", "ticket.reopened", "ticket.solved",
                                     "ticket.closed")):
            events.append(ticket_event(kind, f"T-{n}-{t}", at + t * 10_000 + step * 1000, {}))
    for step, (kind, total) in enumerate((("order.created", "300.00"), ("order.fulfilled", "300.00"),
                                          ("order.refunded", "45.50"))):
        events.append(order_event(kind, f"O-{n}", at + 40_000 + step * 1000, total, {}))
    for i, event in enumerate(events):
        event["customer"] = {"id": f"c-{n}"}
        if i == 0 or introduce(i):
            event["customer"].update(email=f"p{n}@example.no", name=f"P{n}")
    return events


def standard(event: dict[str, Any]) -> Event:
    return parse_event(event, "standard")


def state(store: Store) -> dict[str, Any]:
    """Everything the product stores outside the event log: tickets, orders, profiles, indexes, due sets.

    Sorted sets are compared by their members, and due sets by their due times too; other scores may be
    when a member was written. The time indexes are compared by their entries: where their chunks split
    depends on the order the entries came in. Left out besides the log and the leases: the store's id, and the mark
    beat's labelling of the cases leaves once it has run (tracker.cases.labels, every 30 s): whether it ran before
    the stream was applied depends on how long the run took, not on what was applied.
    """
    found: dict[str, Any] = {name: sorted(sid for sid, _ in indexed(store, name))
                             for name in (*keys.TIME_INDEXES, keys.COMMENTED)}
    for key in store.redis.scan_iter(match=f"{keys.PREFIX}:*", count=1000):
        if "{log" in key or key.endswith(":lease") or key.startswith(keys.person_cache("", "")[:-2]) \
                or "{ix:" in key or key in (keys.STORE_ID, keys.CASES_LABELLED):
            continue
        kind = store.redis.type(key)
        if kind == "zset":
            found[key] = store.redis.zrange(key, 0, -1, withscores=key in due_sets) if key in due_sets \
                else sorted(store.redis.zrange(key, 0, -1))
            continue
        found[key] = {"hash": store.redis.hgetall, "set": lambda k: sorted(store.redis.smembers(k)),
                      "list": lambda k: store.redis.lrange(k, 0, -1), "string": store.redis.get}[kind](key)
    return found


def received(store: Store) -> Counter[str]:
    return Counter(store.metric_counts().received)


def dead_letters(store: Store) -> list[dict[str, str]]:
    return [fields for _id, fields in store.redis.xrange(keys.DEAD)]


def customers_in_shards(count: int) -> Iterator[int]:
    """Yield customer numbers whose events fall in `count` different shards, one customer per shard."""
    shards: set[int] = set()
    for n in range(1000):
        shard = keys.bucket_of(f"standard:c-{n}")
        if shard not in shards:
            shards.add(shard)
            yield n
            if len(shards) == count:
                return


# Routing


def test_an_event_is_routed_by_customer_id_else_by_order_else_by_email():
    solved = standard(ticket_event("ticket.solved", "T-1", 1_000, {"id": "c-42", "email": "kari@example.no"}))
    assert log.route_of(solved) == "standard:c-42"
    assert log.route_of(standard(ticket_event("ticket.solved", "T-1", 1_000, {"email": "kari@example.no"}))) \
        == "kari@example.no"
    assert log.route_of(standard(order_event("order.created", "O-9", 1_000, "10.00", {"email": "kari@example.no"}))) \
        == "standard:order:O-9"
    assert log.route_of(standard(order_event("order.created", "O-9", 1_000, "10.00", {"id": "c-42"}))) \
        == "standard:c-42"
    assert log.shard_of(solved) == keys.bucket_of("standard:c-42")


def test_one_customers_events_stay_in_one_shard_in_the_order_they_came(store):
    events = customer_events(7, 1_700_000_000_000, introduce=lambda i: i % 3 == 0)
    random.Random(7).shuffle(events)
    for number, event in enumerate(events):
        assert store.append_delivery(f"d-{number}", [standard(event)], "standard") >= 0
    shard = keys.bucket_of("standard:c-7")
    assert {s: int(store.redis.xlen(keys.stream(s))) for s in range(keys.BUCKETS) if store.redis.xlen(keys.stream(s))} \
        == {shard: len(events)}
    logged = [json.loads(fields["e"])["id"] for _id, fields in store.redis.xrange(keys.stream(shard))]
    assert logged == [event["id"] for event in events]


# Appending once


def spanning_delivery() -> list[Event]:
    """A delivery of eight events of four customers, in four shards."""
    base = int(time.time() * 1000) - 3_600_000
    events = []
    for n in customers_in_shards(4):
        customer = {"id": f"c-{n}", "email": f"p{n}@example.no"}
        events += [standard(ticket_event("ticket.created", f"T-{n}", base, customer)),
                   standard(ticket_event("ticket.solved", f"T-{n}", base + 1000, customer))]
    assert len({log.shard_of(event) for event in events}) == 4
    return events


def test_a_delivery_spanning_shards_appended_twice_is_stored_once(store, settings):
    events = spanning_delivery()
    outcome = store.append_delivery("d-1", events, "standard")
    assert log.kicked_shards(outcome) == sorted({log.shard_of(event) for event in events})
    assert store.append_delivery("d-1", events, "standard") == -1
    assert store.known_delivery("d-1", "standard")  # what the receiver asks of a retry whose body it refuses
    assert store.lag() == (len(events), 0, len(events))
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 2}
    assert ingest.drain(store, settings, "test") == (len(events), ())
    assert store.lag() == (len(events), 0, 0)


def test_a_delivery_retried_after_its_process_died_between_portions_is_stored_once(store, settings):
    events = spanning_delivery()
    first = min(log.shard_of(event) for event in events)
    # What an attempt that died after appending its first portion leaves: that portion and its mark, no more.
    payloads = [json.dumps(event_record(e), separators=(",", ":"), sort_keys=True) for e in events
                if log.shard_of(e) == first]
    store.script("append_delivery")(keys=[keys.log_part(first, "d-1"), keys.stream(first), keys.log_kick(first),
                                          keys.log_cursor(first)], args=[log.DEDUPE_TTL, 1000, *payloads])
    assert not store.known_delivery("d-1", "standard")  # not marked yet: the retry is parsed and appended
    outcome = store.append_delivery("d-1", events, "standard")
    # Every shard is kicked, the dead attempt's too: its kick may never have been sent.
    assert log.kicked_shards(outcome) == sorted({log.shard_of(event) for event in events})
    assert store.append_delivery("d-1", events, "standard") == -1
    assert store.lag().length == len(events)
    logged = sorted(json.loads(p)["id"] for p in store.iter_log())
    assert logged == sorted(event.id for event in events)
    assert received(store) == {"standard|accepted": 1, "standard|duplicate": 1}
    assert ingest.drain(store, settings, "test") == (len(events), ())
    assert dead_letters(store) == []


def test_the_receiver_kicks_the_drain_of_each_group_of_shards_its_delivery_went_to(post_event, store, enqueued):
    events = []
    for n in customers_in_shards(3):
        events.append(ticket_event("ticket.solved", f"T-{n}", int(time.time() * 1000),
                                   {"id": f"c-{n}", "email": f"p{n}@example.no"}))
    assert post_event("standard", {"events": events}, headers={"webhook-id": "msg-3"}).status_code == 202
    shards = sorted(keys.bucket_of(f"standard:{event['customer']['id']}") for event in events)
    assert enqueued == [("tracker.drain_kicked", group) for group in sorted({log.kick_group(s) for s in shards})]
    assert post_event("standard", {"events": events}, headers={"webhook-id": "msg-3"}).json == {"status": "duplicate"}
    assert len(enqueued) == len({log.kick_group(s) for s in shards})


def test_export_log_reads_every_shard_in_the_order_the_events_were_received(store):
    shards = list(customers_in_shards(3))
    received_at = int(time.time() * 1000) - 60_000
    for number in range(9):
        n = shards[number % 3]
        event = ticket_event("ticket.created", f"T-{n}-{number}", received_at - number * 1000,  # newest first
                             {"id": f"c-{n}", "email": f"p{n}@example.no"})
        append_at(store, received_at + number, event)
    assert [json.loads(record)["ticket"]["id"] for record in store.iter_log()] == \
        [f"T-{shards[number % 3]}-{number}" for number in range(9)]


# Any number of workers


def post_all(base: str, deliveries: list[list[dict[str, Any]]]) -> None:
    with requests.Session() as session:
        for number, events in enumerate(deliveries):
            body = {"events": events} if len(events) > 1 else events[0]
            raw = json.dumps(body).encode()
            headers, query = signed("standard", raw, headers={"webhook-id": f"msg-{number}"})
            response = session.post(f"{base}/webhooks/standard", data=raw, params=query, timeout=30,
                                    headers={"Content-Type": "application/json", "webhook-id": f"msg-{number}",
                                             **headers})
            assert response.status_code == 202, response.text


def shuffled_stream(customers: int = 110) -> list[list[dict[str, Any]]]:
    """About 2,000 events in deliveries of one to three, shuffled; most name their customer only by id."""
    rng = random.Random(2026)
    base = int(time.time() * 1000) // 60_000 * 60_000 - DAY_MS
    events = [event for n in range(customers)
              for event in customer_events(n, base, introduce=lambda _i: rng.random() < 0.2)]
    rng.shuffle(events)
    deliveries: list[list[dict[str, Any]]] = []
    while events:
        size = rng.choice((1, 1, 1, 2, 3))
        deliveries.append(events[:size])
        events = events[size:]
    return deliveries


def run_workers(store: Store, live_server: str, start_worker: Any, workers: int,
                deliveries: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Post the stream while `workers` worker processes (and beat) apply it; return the state once applied."""
    store.redis.flushdb()
    store.keep_risk_ranking(50.0)  # TRACKER_AT_RISK_SCORE's default, filled as beat does on an empty Redis
    started = [start_worker("--concurrency", "1", beat=n == 0) for n in range(workers)]
    post_all(live_server, deliveries)
    total = sum(len(events) for events in deliveries)
    wait_until(lambda: store.lag() == (total, 0, 0), timeout=240, interval=0.2,
               what=f"{total} events applied by {workers} workers, none waiting")
    for process in started:
        process.stop()
    assert dead_letters(store) == []
    assert received(store) == {"standard|accepted": len(deliveries)}
    return state(store)


@pytest.mark.e2e
def test_two_and_four_workers_apply_a_shuffled_stream_of_id_only_events_as_one_does(
        store, live_server, start_worker):
    deliveries = shuffled_stream()
    assert sum(len(events) for events in deliveries) >= 1_900
    alone = run_workers(store, live_server, start_worker, 1, deliveries)
    assert len([key for key in alone if ":ticket:" in key]) == 330  # every ticket, none parked
    assert run_workers(store, live_server, start_worker, 2, deliveries) == alone
    assert run_workers(store, live_server, start_worker, 4, deliveries) == alone


# Leases


DOOMED = """
import os, signal, sys
from tracker.config import load_settings
from tracker.ingest import apply as ingest
from tracker.store import Store

settings = load_settings(os.environ)
store = Store.from_url(settings.redis_url)
ingest.BATCH, ingest.LEASE_MS = 20, int(sys.argv[2])
step, batches = store.step_log_shards, []

def step_until_killed(*args, **kwargs):
    batches.append(1)
    if len(batches) == 3:  # the third batch is applied, its cursor never moves: killed as by the OOM killer
        print("dying", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return step(*args, **kwargs)

store.step_log_shards = step_until_killed
ingest.drain(store, settings, "doomed", shards=[int(sys.argv[1])])
"""


def test_a_killed_appliers_shard_is_taken_over_when_its_lease_runs_out(store, settings, env, start_worker):
    events = customer_events(5, int(time.time() * 1000) - DAY_MS, introduce=lambda i: i % 2 == 0) * 5
    for i, event in enumerate(events):  # each refund five times: a refund counts once by its event id
        store.append_delivery(f"d-{i}", [standard(event)], "standard")
    shard = keys.bucket_of("standard:c-5")
    assert ingest.drain(store, settings, "reference")[0] == len(events)
    reference = state(store)
    store.redis.flushdb()
    store.keep_risk_ranking(settings.at_risk_score)  # as beat does on an empty Redis
    for i, event in enumerate(events):
        store.append_delivery(f"d-{i}", [standard(event)], "standard")

    lease_ms = 8000  # long enough to find it still held after the process is gone, on a busy machine too
    doomed = subprocess.run([sys.executable, "-c", DOOMED, str(shard), str(lease_ms)], env={**os.environ, **env},
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert doomed.returncode == -signal.SIGKILL and "dying" in doomed.stdout, doomed.stderr
    holder = store.redis.get(keys.log_lease(shard))
    assert holder and holder.startswith("doomed:")  # it died holding the shard
    assert store.lag().lag == len(events) - 2 * 20  # two batches recorded, the third applied but not recorded
    start_worker(beat=True)  # beat's drain finds the shard free once the lease has run out
    wait_until(lambda: store.lag() == (len(events), 0, 0), timeout=60, what="the shard taken over and applied")
    assert state(store) == reference
    assert dead_letters(store) == []


# Retention


def append_at(store: Store, at_ms: int, event: dict[str, Any]) -> tuple[int, str]:
    """Append an event with an entry id of a past time, as if it had been received then; return (shard, id)."""
    shard = log.shard_of(standard(event))
    entry_id = store.redis.xadd(keys.stream(shard), {"e": json.dumps(event_record(standard(event)))},
                                id=f"{at_ms}-0")
    store.redis.hincrby(keys.log_cursor(shard), "appended", 1)
    return shard, str(entry_id)


def test_retention_trims_only_applied_entries_older_than_the_limit(store, env):
    settings = load_settings({**env, "TRACKER_LOG_RETENTION_DAYS": "30"})
    now = int(time.time() * 1000)
    applied, waiting, held = customers_in_shards(3)
    known = {"id": f"c-{applied}", "email": f"p{applied}@example.no"}
    old = [append_at(store, now - 40 * DAY_MS, ticket_event("ticket.created", "T-A1", now - 40 * DAY_MS, known)),
           append_at(store, now - 35 * DAY_MS, ticket_event("ticket.solved", "T-A1", now - 35 * DAY_MS, known))]
    recent = append_at(store, now - 29 * DAY_MS, ticket_event("ticket.closed", "T-A1", now - 29 * DAY_MS, known))
    # A shard keeps everything from its oldest waiting entry on: here an event of a customer never introduced.
    other = {"id": f"c-{waiting}", "email": f"p{waiting}@example.no"}
    stranger = next(f"x-{n}" for n in range(10_000)
                    if keys.bucket_of(f"standard:x-{n}") == keys.bucket_of(f"standard:c-{waiting}"))
    waits = [append_at(store, now - 40 * DAY_MS, ticket_event("ticket.created", "T-W1", now - 40 * DAY_MS, other)),
             append_at(store, now - 39 * DAY_MS, ticket_event("ticket.solved", "T-W2", now - 39 * DAY_MS,
                                                             {"id": stranger})),
             append_at(store, now - 38 * DAY_MS, ticket_event("ticket.solved", "T-W1", now - 38 * DAY_MS, other))]
    # And a shard whose applier holds it (or is down) has its old entries unread: they stay.
    held_shard = keys.bucket_of(f"standard:c-{held}")
    unread = append_at(store, now - 40 * DAY_MS, ticket_event("ticket.created", "T-H1", now - 40 * DAY_MS,
                                                              {"id": f"c-{held}", "email": f"p{held}@example.no"}))
    assert store.take_log_lease(held_shard, "busy", 60_000)
    assert ingest.drain(store, settings, "test") == (5, ())  # a pass over every shard applies, then trims
    left = {(shard, entry_id) for shard in range(keys.BUCKETS)
            for entry_id, _ in store.redis.xrange(keys.stream(shard))}
    assert left == {recent, waits[1], waits[2], unread}
    assert not left & {*old, waits[0]}
    assert store.ticket("standard:T-A1")["status"] == "closed"  # trimmed after it counted
    assert store.ticket("standard:T-W1")["status"] == "solved"
    assert store.lag() == (4, 1, 1)  # four entries left, one waiting, one unread
