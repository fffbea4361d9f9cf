"""Kick groups (README, "Kicks"): a webhook that kicks a shard's drain sends a task only when none is pending for the
shard's group, and the task drains every shard of its group holding unread entries, so nothing appended waits for
beat."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from tests.signing import signed
from tests.support import wait_until
from tracker.events import parse_event
from tracker.ingest import apply as ingest
from tracker.model import Event
from tracker.store import keys, log
from tracker.web.app import create_app

on_both = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                  indirect=True)


def solved(n: int, tag: str = "k") -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"type": "ticket.solved", "id": f"evt-{tag}-{n}", "occurred_at": at,
            "ticket": {"id": f"{tag}-T-{n}", "subject": "Card declined", "status": "solved",
                       "agent": {"id": "a-1", "name": "Agent"}},
            "customer": {"id": f"{tag}-c-{n}", "email": f"{tag}-{n}@example.no", "name": f"Person {n}"}}


def number_in(shard: int, tag: str = "k") -> int:
    """Return the first n whose solved(n, tag) is routed to the given shard (by its customer's id)."""
    return next(n for n in range(10_000) if keys.bucket_of(f"standard:{tag}-c-{n}") == shard)


def event_in(shard: int, tag: str = "k") -> Event:
    event = parse_event(solved(number_in(shard, tag), tag), "standard")
    assert log.shard_of(event) == shard
    return event


def same_group_shards() -> tuple[int, int, int]:
    """Two shards of one kick group and one of another."""
    first = 0
    second = next(s for s in log.SHARDS if s != first and log.kick_group(s) == log.kick_group(first))
    other = next(s for s in log.SHARDS if log.kick_group(s) != log.kick_group(first))
    return first, second, other


@on_both
def test_a_group_is_claimed_once_until_its_task_takes_every_kicked_shard_of_it(store):
    first, second, other = same_group_shards()
    group = log.kick_group(first)
    assert log.kicked_shards(store.append_delivery("d-1", [event_in(first)], "standard")) == [first]
    assert store.claim_kick(group)  # this webhook sends the group's task
    assert not store.claim_kick(group)  # pending: the next webhooks of the group send none
    # A shard of the group kicked while the task is pending: its webhook finds the claim taken.
    assert log.kicked_shards(store.append_delivery("d-2", [event_in(second)], "standard")) == [second]
    assert not store.claim_kick(group)
    # The task drains both (kicked_work); done, it takes the claim, then looks again: the second webhook's events are
    # not left to beat.
    assert store.kicked_work(group) == sorted([first, second])
    assert not store.claim_kick(group)  # still held while the task drains
    assert store.take_kicked(group) == sorted([first, second])
    assert store.claim_kick(group)  # a webhook after the task took the claim sends a task of its own
    assert store.take_kicked(log.kick_group(other)) == []  # nothing kicked in another group
    assert store.take_kicked(group) == sorted([first, second])  # what is unread, not what is kicked, is drained
    for shard in (first, second):
        store.redis.delete(keys.log_kick(shard))  # a task that waited for a worker longer than a kick lives
    assert store.take_kicked(group) == sorted([first, second])


@on_both
def test_a_draining_task_holds_its_groups_claim_and_drains_what_came_meanwhile_before_letting_go(store, settings,
                                                                                                monkeypatch):
    first, second, _other = same_group_shards()
    group = log.kick_group(first)
    store.append_delivery("d-1", [event_in(first)], "standard")
    assert store.claim_kick(group)  # the webhook that sends the group's task
    real_drain, calls, claims = ingest.drain, [], []

    def drain(*args: Any, **kwargs: Any) -> Any:
        found = real_drain(*args, **kwargs)
        calls.append(kwargs["shards"])
        if len(calls) == 1:  # a webhook of the group arrives while the task drains: it sends no task
            store.append_delivery("d-2", [event_in(second)], "standard")
            claims.append(store.claim_kick(group))
        return found

    monkeypatch.setattr(ingest, "drain", drain)
    applied, left = ingest.drain_group(store, settings, "test", group)
    assert claims == [False]  # the mark was held while the task drained
    assert calls == [[first], [second]]  # the task looked again when it was done, and drained what came
    assert (applied, left) == (2, ())
    assert not store.kicked_work(group)  # nothing unread is left for beat
    assert store.claim_kick(group)  # let go: the next webhook sends a task


@on_both
def test_a_draining_task_out_of_time_hands_the_groups_unread_shards_on_with_its_claim_let_go(store, settings):
    first, second, _other = same_group_shards()
    group = log.kick_group(first)
    store.append_delivery("d-1", [event_in(first)], "standard")
    store.append_delivery("d-2", [event_in(second)], "standard")
    assert store.claim_kick(group)
    applied, left = ingest.drain_group(store, settings, "test", group, budget_s=0.0)
    assert left == tuple(sorted([first, second]))  # for tracker.drain_events, which the task sends
    assert applied == 0 and store.claim_kick(group)


@on_both
def test_a_lost_tasks_claim_lapses(store):
    group = log.kick_group(0)
    assert store.claim_kick(group)
    ttl = store.redis.pttl(keys.log_kick_group(group))
    assert 0 < ttl <= log.KICK_GROUP_TTL_MS  # a task that never runs holds the group back a second at most


def test_webhooks_send_one_task_per_group_while_it_is_pending(post_event, store, enqueued):
    first, second, other = same_group_shards()
    tags = iter(range(100))

    def post(shard: int) -> None:
        tag = f"t{next(tags)}"
        body = solved(number_in(shard, tag), tag)
        response = post_event("standard", body, headers={"webhook-id": f"msg-{body['id']}"})
        assert response.status_code == 202, response.json

    post(first)
    post(second)  # another shard of the same group, its kick newly set: the group's task is pending
    post(other)
    groups = [log.kick_group(first), log.kick_group(other)]
    assert enqueued == [("tracker.drain_kicked", group) for group in groups]
    store.take_kicked(groups[0])  # the first group's task takes the claim: the next kick of that group sends again
    for shard in (first, second):
        store.redis.delete(keys.log_kick(shard))  # as its drain's last look does
    post(second)
    assert enqueued[2:] == [("tracker.drain_kicked", groups[0])]


def test_a_kick_the_broker_refused_is_sent_by_the_next_webhook(settings, store):
    sent: list[tuple[str, int]] = []
    broker_down = True

    def enqueue(task: str, *args: Any) -> None:
        if broker_down:
            raise ConnectionError("the broker is down")
        sent.append((task, *args))

    client = create_app(settings, store, enqueue=enqueue).test_client()
    first, second, _other = same_group_shards()

    def post(event: dict[str, Any]) -> int:
        raw = json.dumps(event).encode()
        headers, query = signed("standard", raw, headers={"webhook-id": f"msg-{event['id']}"})
        return int(client.post("/webhooks/standard", data=raw, query_string=query,
                               headers={"Content-Type": "application/json", **headers}).status_code)

    assert post(solved(number_in(first))) == 202  # stored; the kick could not be sent
    assert not store.redis.exists(keys.log_kick_group(log.kick_group(first)))  # so the group is not held back
    broker_down = False
    store.redis.delete(keys.log_kick(first))  # as if beat's drain had applied it meanwhile
    assert post(solved(number_in(second))) == 202
    assert sent == [("tracker.drain_kicked", log.kick_group(second))]


@pytest.mark.e2e
def test_a_burst_over_every_shard_is_applied_by_kicks_alone_without_beat(store, live_server, start_worker):
    # No beat: its drain every 5 s would cover a kick lost between a pending group and its task.
    start_worker()
    bodies = [solved(n, "burst") for n in range(240)]

    def post_share(share: list[dict[str, Any]]) -> None:
        with requests.Session() as session:
            for body in share:
                raw = json.dumps(body).encode()
                headers, query = signed("standard", raw, headers={"webhook-id": f"msg-{body['id']}"})
                response = session.post(f"{live_server}/webhooks/standard", data=raw, params=query, timeout=30,
                                        headers={"Content-Type": "application/json", **headers})
                assert response.status_code == 202, response.text

    threads = [threading.Thread(target=post_share, args=(bodies[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {log.shard_of(parse_event(body, "standard")) for body in bodies} == set(log.SHARDS)
    wait_until(lambda: store.lag() == (len(bodies), 0, 0), timeout=60, interval=0.05,
               what="every webhook of the burst applied without beat")
    # At once after: the groups' claims were taken by their tasks, so this webhook's kick is sent and applied.
    late = solved(999, "burst")
    post_share([late])
    wait_until(lambda: store.lag() == (len(bodies) + 1, 0, 0), timeout=30, interval=0.05,
               what="a webhook right after the burst applied without beat")
