"""Draining the event log: any arrival order, any number of repeats, the same state; nothing lost."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import inject_log_entry, solved_event, wait_until
from tracker.config import load_settings
from tracker.events import event_from_record, parse_event, to_epoch_ms
from tracker.ingest import apply as ingest
from tracker.model import Customer, Event, Ticket
from tracker.store import keys, log
from tracker.surveys import due as surveys
from tracker.surveys.tokens import survey_id

DELAY_S = 3600
TKEY = "standard:T-1001"
KARI = "kari@example.no"
# Yesterday (UTC): a survey these tickets fall due for can still be answered on whatever day the suite runs
# (one solved on a fixed date is skipped as too old once the survey expiry has passed, and has no due time).
DAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def at(hour: int) -> str:
    return f"{DAY}T{hour:02d}:00:00Z"


def ms(iso: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def ticket_history(ticket: str = "T-1001") -> list[dict[str, Any]]:
    """Created 09:00, solved 10:00, reopened 11:00, solved again 12:00, closed 13:00."""
    return [
        solved_event(ticket, kind="ticket.created", at=at(9), status="new"),
        solved_event(ticket, kind="ticket.solved", at=at(10)),
        solved_event(ticket, kind="ticket.reopened", at=at(11)),
        solved_event(ticket, kind="ticket.solved", at=at(12)),
        solved_event(ticket, kind="ticket.closed", at=at(13)),
    ]


TICKET_HISTORY = ticket_history()


def order_event(kind: str, at: str, total: str, event_id: str | None = None,
                order_id: str = "O-77", email: str = KARI) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"{event_id}-{order_id}" if event_id else f"evt-{order_id}-{kind}-{at}",
        "occurred_at": at,
        "order": {"id": order_id, "total": total, "currency": "NOK"},
        "customer": {"id": f"c-{email}", "email": email, "name": "Kari", "locale": "nb"},
    }


def paid_and_partly_refunded(order_id: str = "O-77", email: str = KARI) -> list[dict[str, Any]]:
    return [
        order_event("order.created", "2026-11-01T09:00:00Z", "149.00", order_id=order_id, email=email),
        order_event("order.fulfilled", "2026-11-02T09:00:00Z", "149.00", order_id=order_id, email=email),
        order_event("order.refunded", "2026-11-03T09:00:00Z", "20.00", "refund-1", order_id, email),
        order_event("order.refunded", "2026-11-04T09:00:00Z", "30.00", "refund-2", order_id, email),
    ]


def cancelled_in_the_end(order_id: str = "O-77", email: str = KARI) -> list[dict[str, Any]]:
    return [*paid_and_partly_refunded(order_id, email),
            order_event("order.cancelled", "2026-11-05T09:00:00Z", "149.00", order_id=order_id, email=email)]


ORDER_PAID_AND_PARTLY_REFUNDED = paid_and_partly_refunded()
ORDER_CANCELLED_IN_THE_END = cancelled_in_the_end()
FAR_FUTURE_MS = ms("2100-01-01T00:00:00Z")


@pytest.fixture
def delayed(env: dict[str, str]) -> Any:
    """Settings with a survey delay, so the due time tells solved_at + delay apart from solved_at."""
    return load_settings({**env, "TRACKER_SURVEY_DELAY": str(DELAY_S)})


@pytest.fixture
def deliver(post_event: Any) -> Any:
    """Deliver one event through the receiver as its own delivery."""
    counter = itertools.count()

    def send(event: dict[str, Any], delivery: str | None = None) -> None:
        response = post_event("standard", event,
                              headers={"webhook-id": delivery or f"msg-{event['id']}-{next(counter)}"})
        assert response.status_code == 202, response.json

    return send


def drain(store: Any, settings: Any, holder: str = "test") -> int:
    applied, left = ingest.drain(store, settings, holder)
    assert not left
    return applied


def due(store: Any, tkey: str = TKEY, delay_s: int = DELAY_S) -> int | str | None:
    """When the sweep hands the ticket out: solved_at + the delay, "early", "late", or None when never.

    Read through the sweep, which leases what it hands out: read it once, at the end of what a test does.
    """
    solved_at = store.ticket(tkey).get("solved_at")
    if solved_at:
        expected = int(solved_at) + delay_s * 1000
        if tkey in surveys.sweep(store, expected - 1)[1]:
            return "early"
        if tkey in surveys.sweep(store, expected)[1]:
            return expected
    return "late" if tkey in surveys.sweep(store, FAR_FUTURE_MS)[1] else None


def ticket_state(store: Any, tkey: str = TKEY) -> dict[str, Any]:
    ticket = store.ticket(tkey)
    return {"status": ticket.get("status"), "solved_at": ticket.get("solved_at"), "due": due(store, tkey)}


def dead_letters(store: Any) -> list[dict[str, str]]:
    return [fields for _id, fields in store.redis.xrange(keys.DEAD)]


def pending(store: Any) -> int:
    return int(store.lag().pending)


# Order of arrival


def test_the_ticket_history_in_order_ends_closed_with_the_last_solve_due(store, delayed, deliver):
    for event in TICKET_HISTORY:
        deliver(event)
        drain(store, delayed)
    solved = ms(at(12))
    expected = {"status": "closed", "solved_at": str(solved), "due": solved + DELAY_S * 1000}
    assert ticket_state(store) == expected


def test_every_arrival_order_of_a_ticket_history_leaves_the_in_order_state(store, delayed, deliver):
    for event in TICKET_HISTORY:
        deliver(event)
        drain(store, delayed)
    expected = ticket_state(store)
    differing = []
    for n, order in enumerate(itertools.permutations(range(len(TICKET_HISTORY)))):
        history = ticket_history(f"P-{n}")  # a ticket of its own for each order of arrival
        for index in order:
            deliver(history[index])
            drain(store, delayed)
        state = ticket_state(store, f"standard:P-{n}")
        if state != expected:
            differing.append((" ".join(TICKET_HISTORY[i]["type"].split(".")[1] for i in order), state))
    assert not differing, f"{len(differing)} of 120 orders differ from {expected}, e.g. {differing[:3]}"


def test_a_solve_arriving_after_a_later_close_still_sets_when_the_ticket_was_solved(store, delayed, deliver):
    solved, closed = TICKET_HISTORY[1], TICKET_HISTORY[4]
    deliver(closed)
    drain(store, delayed)
    deliver(solved)
    drain(store, delayed)
    at = ms(solved["occurred_at"])
    assert ticket_state(store) == {"status": "closed", "solved_at": str(at), "due": at + DELAY_S * 1000}


def test_events_arriving_in_one_batch_in_any_order_give_the_in_order_state(store, delayed, deliver):
    for event in TICKET_HISTORY:
        deliver(event)
    drain(store, delayed)
    expected = ticket_state(store)
    for event in reversed(ticket_history("T-2")):
        deliver(event)
    drain(store, delayed)
    assert ticket_state(store, "standard:T-2") == expected


def test_a_stale_reopen_does_not_cancel_a_newer_solve(store, delayed, deliver):
    deliver(TICKET_HISTORY[3])  # solved 12:00
    drain(store, delayed)
    deliver(TICKET_HISTORY[2])  # reopened 11:00, delivered late
    drain(store, delayed)
    at = ms(TICKET_HISTORY[3]["occurred_at"])
    assert ticket_state(store) == {"status": "solved", "solved_at": str(at), "due": at + DELAY_S * 1000}


def test_the_same_event_delivered_many_times_changes_nothing_more(store, delayed, deliver):
    for event in TICKET_HISTORY:
        deliver(event)
    drain(store, delayed)
    before = (store.ticket(TKEY), store.profile(KARI), store.customer_ticket_keys(KARI))
    for _ in range(5):
        for event in reversed(TICKET_HISTORY):
            deliver(event)  # a new delivery id each time: the receiver cannot tell it is a repeat
    assert drain(store, delayed) == 5 * len(TICKET_HISTORY)
    after = (store.ticket(TKEY), store.profile(KARI), store.customer_ticket_keys(KARI))
    assert after == before
    assert due(store) == ms(TICKET_HISTORY[3]["occurred_at"]) + DELAY_S * 1000


def test_an_older_event_fills_gaps_in_the_details_but_does_not_overwrite_newer_ones(store, delayed, deliver):
    newer = solved_event(at=at(12), subject="New subject", team="")
    newer["ticket"].pop("team")
    older = solved_event(kind="ticket.created", at=at(9), status="new",
                         subject="Old subject", team="payments")
    deliver(newer)
    deliver(older)
    drain(store, delayed)
    ticket = store.ticket(TKEY)
    assert ticket["subject"] == "New subject"
    assert ticket["team"] == "payments"


@pytest.mark.parametrize("history", [ORDER_PAID_AND_PARTLY_REFUNDED, ORDER_CANCELLED_IN_THE_END],
                         ids=["refunded twice", "cancelled in the end"])
def test_every_arrival_order_of_an_order_history_gives_the_same_orders_summary(
        store, settings, deliver, history):
    for event in history:
        deliver(event)
        drain(store, settings)
    expected = store.orders_summary(KARI)
    if history is ORDER_PAID_AND_PARTLY_REFUNDED:
        assert (expected.count, expected.total, expected.currency) == (1, "99.00", "NOK")
    else:
        assert (expected.count, expected.total) == (0, "0.00")
    differing = []
    for n, order in enumerate(itertools.permutations(range(len(history)))):
        # A customer and an order of their own for each order of arrival.
        email = f"kari-{n}@example.no"
        events = (paid_and_partly_refunded if history is ORDER_PAID_AND_PARTLY_REFUNDED
                  else cancelled_in_the_end)(f"O-{n}", email)
        for index in order:
            deliver(events[index])
            drain(store, settings)
        summary = store.orders_summary(email)
        if summary != expected:
            differing.append(([events[i]["type"] for i in order], summary))
    assert not differing, differing[:3]


def test_a_refund_delivered_twice_is_taken_off_once(store, settings, deliver):
    for event in ORDER_PAID_AND_PARTLY_REFUNDED:
        deliver(event)
    deliver(ORDER_PAID_AND_PARTLY_REFUNDED[2])
    deliver(ORDER_PAID_AND_PARTLY_REFUNDED[3])
    drain(store, settings)
    assert store.orders_summary(KARI).total == "99.00"


# Customers known only by their alias


def alias_only(event: dict[str, Any], customer_id: str = "c-42") -> dict[str, Any]:
    return {**event, "customer": {"id": customer_id}}


def test_an_alias_only_event_after_the_one_that_introduced_the_alias_lands_on_that_customer(
        store, settings, deliver):
    deliver(solved_event(ticket="T-1"))
    drain(store, settings)
    deliver(alias_only(solved_event(ticket="T-2")))
    assert drain(store, settings) == 1
    assert store.ticket("standard:T-2")["customer"] == KARI
    assert store.customer_ticket_keys(KARI) == ["standard:T-1", "standard:T-2"]
    assert dead_letters(store) == []


def test_an_alias_introduced_earlier_in_the_same_batch_is_used(store, settings, deliver):
    deliver(solved_event(ticket="T-1"))
    deliver(alias_only(solved_event(ticket="T-2")))
    assert drain(store, settings) == 2
    assert store.ticket("standard:T-2")["customer"] == KARI


def test_an_alias_only_event_waits_for_the_event_that_introduces_the_alias(store, settings, deliver):
    deliver(alias_only(solved_event(ticket="T-2")))  # the shuffled stream brings the id before its email
    assert drain(store, settings) == 0
    assert store.ticket("standard:T-2") == {}
    assert (pending(store), dead_letters(store)) == (1, [])
    deliver(solved_event(ticket="T-1"))
    assert drain(store, settings) == 2  # the waiting one goes at once, not on its backoff
    assert store.ticket("standard:T-2")["customer"] == KARI
    assert (pending(store), dead_letters(store)) == (0, [])


def test_an_event_with_an_unknown_alias_waits_and_is_parked_only_after_its_last_try(
        store, settings, deliver, monkeypatch):
    monkeypatch.setattr(ingest, "RETRY_FIRST_MS", 0)  # every drain is a try
    deliver(solved_event(ticket="T-1"))
    deliver(alias_only(solved_event(ticket="T-9"), customer_id="c-999"))
    assert drain(store, settings) == 1
    for _ in range(ingest.RETRY_LIMIT - 1):
        assert (pending(store), dead_letters(store)) == (1, [])
        assert drain(store, settings) == 0
    assert store.ticket("standard:T-9") == {}
    (dead,) = dead_letters(store)
    assert json.loads(dead["e"])["ticket"]["id"] == "T-9"
    assert dead["reason"] == f"unknown customer: no email and no known alias after {ingest.RETRY_LIMIT} tries"
    assert pending(store) == 0


# Malformed entries


MALFORMED = {
    "not json": "{not json",
    "empty entry": "",
    "json but not an object": "[1, 2, 3]",
    "no type": json.dumps({"id": "x", "source": "standard", "at": 1}),
    "ticket event without a ticket": json.dumps(
        {"type": "ticket.solved", "id": "x1", "source": "standard", "at": 1,
         "customer": {"email": "z@example.no"}}),
    "order event without a total": json.dumps(
        {"type": "order.created", "id": "x2", "source": "standard", "at": 1, "order": {"id": "O-1"},
         "customer": {"email": "z@example.no"}}),
    "customer that is not an object": json.dumps(
        {"type": "ticket.solved", "id": "x3", "source": "standard", "at": 1, "customer": "z@example.no",
         "ticket": {"id": "T-5", "status": "solved"}}),
    "time that is not a number": json.dumps(
        {"type": "ticket.solved", "id": "x4", "source": "standard", "at": "yesterday",
         "customer": {"email": "z@example.no"}, "ticket": {"id": "T-6", "status": "solved"}}),
}


@pytest.mark.parametrize("payload", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_entry_is_dead_lettered_and_the_rest_of_the_batch_applied(
        store, settings, deliver, payload):
    deliver(solved_event(ticket="T-1"))
    inject_log_entry(store, payload or None)
    deliver(solved_event(ticket="T-2"))
    assert drain(store, settings) == 2
    assert store.ticket("standard:T-1")["status"] == "solved"
    assert store.ticket("standard:T-2")["status"] == "solved"
    (dead,) = dead_letters(store)
    assert dead["e"] == payload and dead["reason"]
    assert pending(store) == 0


# An applier that crashed


def shard_of(events: list[dict[str, Any]]) -> int:
    """Return the one log shard the receiver routes these standard events to."""
    (shard,) = {log.shard_of(parse_event(event, "standard")) for event in events}
    return shard


def crashed_mid_batch(store: Any, events: list[dict[str, Any]], lease_ms: int) -> int:
    """Leave a shard as an applier killed mid-batch does: its events applied, its cursor not moved, its lease held."""
    shard = shard_of(events)
    opened = store.open_log_shards([shard], "killed-applier", lease_ms, 200)[shard]  # the lease taken, entries read
    assert opened.after == log.START
    taken = opened.entries
    assert len(taken) == len(events)
    assert store.apply([(event_from_record(json.loads(payload)), KARI) for _id, payload in taken], 0) == [
        None] * len(taken)
    return shard


def test_a_shard_held_by_a_live_applier_is_left_to_it(store, settings, deliver):
    deliver(TICKET_HISTORY[1])
    shard = shard_of([TICKET_HISTORY[1]])
    assert store.take_log_lease(shard, "alive", 60_000)
    assert drain(store, settings, "other") == 0
    assert store.ticket(TKEY) == {} and store.lag().lag == 1
    store.release_log_leases([shard], "alive")
    assert drain(store, settings, "other") == 1
    assert store.ticket(TKEY)["status"] == "solved" and store.lag().lag == 0


def test_a_crashed_appliers_shard_is_applied_again_from_its_cursor_once_its_lease_runs_out(store, settings, deliver):
    for event in ORDER_PAID_AND_PARTLY_REFUNDED:
        deliver(event)
    crashed_mid_batch(store, ORDER_PAID_AND_PARTLY_REFUNDED, lease_ms=300)
    before = (store.orders_summary(KARI), store.redis.hgetall(keys.order("standard:O-77")))
    assert drain(store, settings) == 0  # the lease still stands
    applied = wait_until(lambda: drain(store, settings), timeout=10, interval=0.05, what="the lease to run out")
    assert applied == len(ORDER_PAID_AND_PARTLY_REFUNDED)
    after = (store.orders_summary(KARI), store.redis.hgetall(keys.order("standard:O-77")))
    assert after == before  # applied twice, counted once
    assert after[0].total == "99.00"
    assert store.lag() == (len(ORDER_PAID_AND_PARTLY_REFUNDED), 0, 0)


def test_a_solved_ticket_applied_again_after_a_crash_is_due_once(store, settings, deliver):
    deliver(TICKET_HISTORY[1])
    crashed_mid_batch(store, [TICKET_HISTORY[1]], lease_ms=300)
    wait_until(lambda: drain(store, settings), timeout=10, interval=0.05, what="the lease to run out")
    assert surveys.sweep(store, FAR_FUTURE_MS)[1] == [TKEY]
    sid = survey_id(TKEY, store.ticket(TKEY)["solved_at"])
    assert store.survey(sid) is None


def test_an_applier_whose_lease_ran_out_moves_no_cursor(store, settings, deliver):
    deliver(TICKET_HISTORY[1])
    shard = shard_of([TICKET_HISTORY[1]])
    assert store.take_log_lease(shard, "slow", 60_000)
    store.redis.delete(keys.log_lease(shard))  # ran out ...
    assert store.take_log_lease(shard, "new", 60_000)  # ... and another applier took the shard
    (entry_id, _payload), = store.read_log(shard, log.START, 10)
    assert store.advance_log(shard, "slow", 60_000, [entry_id]) is False
    assert store.log_position(shard) == log.START
    assert store.advance_log(shard, "new", 60_000, [entry_id]) is True
    assert store.log_position(shard) == entry_id


# Kicks


def test_drain_releases_its_kick_so_a_later_append_kicks_again(store, settings, monkeypatch):
    monkeypatch.setattr(log, "KICK_TTL_MS", 600_000)  # a kick that outlives the test: only the drain may clear it
    event = Event("ticket.solved", "e1", "standard", ms(at(10)), Customer(email=KARI),
                  ticket=Ticket("T-1", status="solved"))
    shard = log.shard_of(event)
    assert log.kicked_shards(store.append_delivery("d1", [event])) == [shard]
    assert store.append_delivery("d2", [replace(event, id="e2")]) == 0
    assert drain(store, settings) == 2
    assert log.kicked_shards(store.append_delivery("d3", [replace(event, id="e3")])) == [shard]
