"""Tickets, orders and due sets in buckets: one slot per command, leases across buckets, bounded state."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from tests.support import solved_event
from tracker.events import iso_from_ms, parse_event
from tracker.model import Event, Survey
from tracker.store import Store, keys
from tracker.store.due import STATE_IDLE_MS
from tracker.store.state import TIMELINE_MAX
from tracker.surveys import due as surveys
from tracker.surveys.tokens import survey_id

KARI = "kari@example.no"
DAY_MS = 86_400_000
DELAY_MS = 3_600_000
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def now_ms() -> int:
    return int(time.time() * 1000)


def event(raw: dict[str, Any]) -> tuple[Event, str]:
    parsed = parse_event(raw, "standard")
    return parsed, parsed.customer.email or ""


def ticket_event(ticket: str = "T-1", kind: str = "ticket.solved", at_ms: int | None = None,
                 email: str = KARI, **fields: Any) -> tuple[Event, str]:
    raw = solved_event(ticket=ticket, email_address=email, at=iso_from_ms(at_ms or now_ms() - 60_000), kind=kind,
                       **fields)
    raw["customer"]["id"] = f"c-{email}"
    return event(raw)


def order_event(kind: str, at_ms: int, total: str = "149.00", order: str = "O-1", email: str = KARI,
                event_id: str | None = None, currency: str = "NOK") -> tuple[Event, str]:
    return event({"type": kind, "id": event_id or f"evt-{order}-{kind}-{at_ms}", "occurred_at": iso_from_ms(at_ms),
                  "order": {"id": order, "total": total, "currency": currency},
                  "customer": {"id": f"c-{email}", "email": email, "name": "Kari", "locale": "nb"}})


def apply(store: Store, *events: tuple[Event, str], stale_before: int | None = None,
          order_delay_ms: int = -1) -> list[str | int]:
    results = store.apply_events(list(events), DELAY_MS, order_delay_ms, stale_before)
    assert all(isinstance(r, int) for r in results), results
    return results


# Every command one slot


def _unquote(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1] == "x":
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


@contextmanager
def monitored(url: str) -> Iterator[list[list[str]]]:
    """Record every command Redis runs meanwhile (script bodies' commands included) as argument lists."""
    commands: list[list[str]] = []
    client = redis.Redis.from_url(url, decode_responses=True)
    connection = client.connection_pool.get_connection()
    connection.send_command("MONITOR")
    assert connection.read_response() in ("OK", b"OK")
    stop = f"end-of-monitor-{time.monotonic_ns()}"

    def read() -> None:
        while True:
            line = connection.read_response()
            args = [_unquote(arg) for arg in QUOTED.findall(str(line).split("]", 1)[1])]
            if args == ["ECHO", stop] or args == ["echo", stop]:
                return
            commands.append(args)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        yield commands
    finally:
        client.echo(stop)
        reader.join(timeout=30)
        connection.disconnect()
        client.close()


def touched(client: redis.Redis, commands: list[list[str]]) -> list[list[str]]:
    """Return the keys of each command (per Redis's own COMMAND GETKEYS), leaving out commands without keys."""
    found = []
    for args in commands:
        if args[0].upper() in ("MULTI", "EXEC", "PING", "ECHO", "SCRIPT", "EVALSHA_RO", "INFO", "CLIENT", "HELLO"):
            continue
        try:
            named = client.command_getkeys(*args)
        except redis.ResponseError:
            continue  # a command without key arguments
        found.append([k.decode() if isinstance(k, bytes) else k for k in named])
    return found


def tag_of(key: str) -> str | None:
    match = re.search(r"\{([^}]*)\}", key)
    return match.group(1) if match and match.group(1) else None


def test_every_command_an_apply_sends_touches_one_slot_and_each_key_is_in_its_bucket_or_customer(store, redis_url):
    tkey, okey = "standard:T-1", "standard:O-1"
    with monitored(redis_url) as commands:
        apply(store, ticket_event("T-1", "ticket.created", now_ms() - 120_000, status="new"),
              ticket_event("T-1"), order_event("order.created", now_ms() - 60_000),
              order_event("order.refunded", now_ms() - 30_000, "20.00"), order_delay_ms=0)
    keysets = touched(store.redis, commands)
    assert keysets, "no command was seen"
    crossing = [ks for ks in keysets if len({key_slot(k.encode()) for k in ks}) > 1]
    assert crossing == []
    # names: the search index; rank: the ranked sets of customers (the order value, the at-risk ranking from it)
    allowed = {f"k{keys.bucket_of(tkey)}", f"k{keys.bucket_of(okey)}", KARI, "names", "rank"}
    untagged = {keys.CUSTOMERS, keys.NAMES, keys.alias("standard", f"c-{KARI}"), keys.alias("standard", "order:O-1")}
    seen = {k for ks in keysets for k in ks}
    assert {tag_of(k) for k in seen} - {None} <= allowed
    assert {k for k in seen if tag_of(k) is None} <= untagged
    assert all(len(ks) == 1 for ks in keysets if any(tag_of(k) is None for k in ks))  # single keys alone
    assert {keys.ticket(tkey), keys.ticket_history(tkey), keys.order(okey), keys.customer(KARI, "profile"),
            keys.customer(KARI, "timeline"), keys.customer(KARI, "tickets"), keys.CUSTOMERS,
            keys.RANK_VALUE, keys.NAMES} <= seen


def test_claiming_sending_and_finishing_touch_one_slot_per_command(store, redis_url):
    apply(store, ticket_event("T-1"), ticket_event("T-2"), order_event("order.fulfilled", now_ms() - 60_000),
          order_delay_ms=0)
    survey = Survey(sid=survey_id("standard:T-2", 1), tkey="standard:T-2", kind="ticket", scale="csat5",
                    customer=KARI, source="standard", status="sending")
    with monitored(redis_url) as commands:
        claimed, members = surveys.sweep(store, FAR_FUTURE_MS)
        store.renew_claims(members, claimed, claimed + 1000)
        store.settle_sent("standard:T-1", claimed + 1000, "sid-1", now_ms() + DAY_MS)
        store.finish_due(claimed + 1000, survey, "skipped", "throttled", now_ms())
        store.reschedule("o|standard:O-1", claimed + 1000, FAR_FUTURE_MS)
        store.metric_counts()
    keysets = touched(store.redis, commands)
    assert [ks for ks in keysets if len({key_slot(k.encode()) for k in ks}) > 1] == []
    assert sorted(members) == ["o|standard:O-1", "standard:T-1", "standard:T-2"]


# The due sets


def _spread(count: int) -> list[str]:
    """Return ticket keys that fall in count different buckets."""
    found: dict[int, str] = {}
    for n in itertools.count():
        tkey = f"standard:T-{n}"
        found.setdefault(keys.bucket_of(tkey), tkey)
        if len(found) == count:
            return [found[b] for b in sorted(found)]
    raise AssertionError("unreachable")


def test_one_claim_leases_from_every_bucket_oldest_first_under_one_score(store):
    tkeys = _spread(keys.BUCKETS)
    base = now_ms() - 10 * 60_000
    events = [ticket_event(tkey.partition(":")[2], at_ms=base + 1000 * i) for i, tkey in enumerate(reversed(tkeys))]
    apply(store, *events)
    reminder = "r|some-survey"
    store.redis.zadd(keys.due_of(reminder), {reminder: base})  # as the send path schedules a reminder
    assert keys.due_of(reminder) == keys.survey_due(keys.bucket_of("some-survey"))
    claim = store.claim_all_due(FAR_FUTURE_MS, surveys.LEASE_MS, 10)
    assert claim.members == [reminder, *reversed(tkeys)]  # by due time, across sets
    assert not claim.more
    leases = {store.redis.zscore(keys.due_of(m), m) for m in claim.members}
    assert leases == {float(claim.claimed)}
    assert store.claim_all_due(FAR_FUTURE_MS, surveys.LEASE_MS, 10).members == []  # all leased


def test_a_full_due_set_says_more_is_due_and_the_next_round_takes_it(store):
    same_bucket = [t for t in (f"T-{n}" for n in range(400)) if keys.bucket_of(f"standard:{t}") == 3][:5]
    apply(store, *(ticket_event(t) for t in same_bucket))
    first = surveys.sweep_round(store, FAR_FUTURE_MS, limit=2)
    assert (len(first.members), first.more) == (2, True)
    second = surveys.sweep_round(store, FAR_FUTURE_MS, limit=2)
    third = surveys.sweep_round(store, FAR_FUTURE_MS, limit=2)
    assert (len(second.members), len(third.members), third.more) == (2, 1, False)
    assert sorted(first.members + second.members + third.members) == sorted(f"standard:{t}" for t in same_bucket)


def test_renew_reschedule_and_drop_act_on_the_member_own_set_and_only_for_the_claim_that_holds_it(store):
    a, b = _spread(2)
    apply(store, ticket_event(a.partition(":")[2]), ticket_event(b.partition(":")[2]))
    claimed, _ = surveys.sweep(store, FAR_FUTURE_MS)
    assert store.renew_claims([b, a, "standard:nowhere"], claimed, claimed + 5) == [b, a]
    assert store.renew_claims([a], claimed, claimed + 9) == []  # that claim no longer holds it
    assert store.reschedule(a, claimed + 5, FAR_FUTURE_MS + 1)
    assert store.redis.zscore(keys.due_of(a), a) == FAR_FUTURE_MS + 1
    store.drop_due(b, claimed)  # an old claim drops nothing
    assert store.redis.zscore(keys.due_of(b), b) == claimed + 5
    store.drop_due(b, claimed + 5)
    assert store.redis.zscore(keys.due_of(b), b) is None
    assert store.oldest_due() == FAR_FUTURE_MS + 1
    assert store.metric_counts().oldest_due_ms == FAR_FUTURE_MS + 1


def test_finishing_a_survey_records_and_counts_it_once_and_drops_its_due_entry(store):
    apply(store, ticket_event("T-1"))
    claimed, _ = surveys.sweep(store, FAR_FUTURE_MS)
    survey = Survey(sid="sid-finished", tkey="standard:T-1", kind="ticket", scale="csat5", customer=KARI,
                    source="standard", status="sending")
    for _ in range(3):
        store.finish_due(claimed, survey, "skipped", "throttled", 1234)
    assert store.stats() == {"skipped:throttled": 1}
    assert store.redis.zrange(keys.customer(KARI, "surveys"), 0, -1, withscores=True) == [("sid-finished", 1234)]
    assert store.survey("sid-finished").status == "skipped"
    assert store.redis.zscore(keys.due_of("standard:T-1"), "standard:T-1") is None
    assert 0 < store.redis.pttl(keys.ticket("standard:T-1")) <= STATE_IDLE_MS  # no survey kept it: idle time


# Settling a sent survey and the ticket's lifetime


def test_settle_sent_notes_the_survey_drops_the_entry_and_keeps_the_ticket_until_the_survey_expires(store):
    apply(store, ticket_event("T-1", "ticket.created", now_ms() - 120_000, status="new"), ticket_event("T-1"))
    tkey = "standard:T-1"
    assert store.redis.pttl(keys.ticket(tkey)) == -1 and store.redis.pttl(keys.ticket_history(tkey)) == -1
    claimed, _ = surveys.sweep(store, FAR_FUTURE_MS)
    keep = now_ms() + 14 * DAY_MS
    store.settle_sent(tkey, claimed, "sid-1", keep)
    store.settle_sent(tkey, claimed, "sid-1", keep)  # repeating it changes nothing
    assert store.ticket(tkey)["survey_sid"] == "sid-1"
    assert store.redis.zscore(keys.due_of(tkey), tkey) is None
    for key in (keys.ticket(tkey), keys.ticket_history(tkey)):
        assert keep - 60_000 < now_ms() + store.redis.pttl(key) <= keep
    # A close later changes nothing about when it goes; a reopen keeps it while open; a new solve while due.
    apply(store, ticket_event("T-1", "ticket.closed", now_ms() - 30_000))
    assert keep - 60_000 < now_ms() + store.redis.pttl(keys.ticket(tkey)) <= keep
    apply(store, ticket_event("T-1", "ticket.reopened", now_ms() - 20_000))
    assert store.redis.pttl(keys.ticket(tkey)) > 30 * DAY_MS
    apply(store, ticket_event("T-1", at_ms=now_ms() - 10_000))
    assert store.redis.pttl(keys.ticket(tkey)) == -1 and store.redis.pttl(keys.ticket_history(tkey)) == -1
    assert store.ticket(tkey)["survey_sid"] == "sid-1"  # the earlier survey stays known while the ticket is


def test_settle_sent_after_a_new_solve_leaves_the_new_due_entry_and_the_ticket_alone(store):
    tkey = "standard:T-1"
    apply(store, ticket_event("T-1", at_ms=now_ms() - 120_000))
    claimed, _ = surveys.sweep(store, FAR_FUTURE_MS)
    apply(store, ticket_event("T-1", "ticket.reopened", now_ms() - 60_000),
          ticket_event("T-1", at_ms=now_ms() - 30_000))  # solved again while the first survey was being sent
    store.settle_sent(tkey, claimed, "sid-1", now_ms() - 1)
    assert store.redis.zscore(keys.due_of(tkey), tkey) is not None
    assert store.redis.pttl(keys.ticket(tkey)) == -1
    assert store.ticket(tkey)["survey_sid"] == "sid-1"


def test_a_survey_event_about_the_ticket_s_current_solve_takes_its_due_entry_and_gives_the_ticket_its_lifetime(store):
    tkey, solved = "standard:T-1", now_ms() - 120_000
    apply(store, ticket_event("T-1", at_ms=solved))
    keep = now_ms() + 14 * DAY_MS
    # No claim (-1), about an earlier solve: the entry is due for the current one, and the ticket stays.
    store.settle_sent(tkey, -1, "sid-earlier", keep, solved_at_ms=solved - DAY_MS)
    store.settle_sent(tkey, -1, "sid-unknown", keep)
    assert store.redis.zscore(keys.due_of(tkey), tkey) is not None and store.redis.pttl(keys.ticket(tkey)) == -1
    # About the current solve: the sweep would only find that survey done, so the entry goes now.
    store.settle_sent(tkey, -1, "sid-1", keep, solved_at_ms=solved)
    assert store.redis.zscore(keys.due_of(tkey), tkey) is None and store.ticket(tkey)["survey_sid"] == "sid-1"
    for key in (keys.ticket(tkey), keys.ticket_history(tkey)):
        assert keep - 60_000 < now_ms() + store.redis.pttl(key) <= keep
    assert surveys.sweep(store, FAR_FUTURE_MS)[1] == []


def test_a_ticket_whose_survey_can_no_longer_be_answered_is_gone_and_settling_it_again_does_not_bring_it_back(store):
    tkey = "standard:T-1"
    apply(store, ticket_event("T-1"))
    claimed, _ = surveys.sweep(store, FAR_FUTURE_MS)
    store.settle_sent(tkey, claimed, "sid-1", now_ms() - 1)  # expired already (a send recorded late)
    assert store.redis.exists(keys.ticket(tkey), keys.ticket_history(tkey)) == 0
    store.settle_sent(tkey, claimed, "sid-1", now_ms() + DAY_MS)
    assert store.redis.exists(keys.ticket(tkey)) == 0
    assert store.customer_tickets(KARI) == []  # the index may still name it; readers skip it


def test_an_open_ticket_is_kept_the_idle_time_after_its_last_event(store):
    apply(store, ticket_event("T-1", "ticket.created", now_ms() - 60_000, status="new"))
    ttl = store.redis.pttl(keys.ticket("standard:T-1"))
    assert STATE_IDLE_MS - 60_000 < ttl <= STATE_IDLE_MS
    assert store.redis.pttl(keys.customer(KARI, "tickets")) > ttl  # the index outlives what it names


def test_a_solve_too_old_to_survey_is_not_due_and_its_ticket_is_kept_only_the_idle_time(store):
    at = now_ms() - 20 * DAY_MS
    assert apply(store, ticket_event("T-1", at_ms=at), stale_before=now_ms() - 14 * DAY_MS) == [2]
    assert surveys.sweep(store, FAR_FUTURE_MS)[1] == []
    assert 0 < store.redis.pttl(keys.ticket("standard:T-1")) <= STATE_IDLE_MS


# Ranks, names and the customer's keys


def test_rank_value_follows_the_live_order_value_in_the_main_currency(store):
    t = now_ms() - 10 * 60_000
    apply(store, order_event("order.created", t, "149.00", "O-1"))
    assert store.redis.zscore(keys.RANK_VALUE, KARI) == 14900
    apply(store, order_event("order.created", t + 1, "20.00", "O-2", currency="EUR"),
          order_event("order.refunded", t + 2, "50.00", "O-1", event_id="refund-1"))
    assert store.redis.zscore(keys.RANK_VALUE, KARI) == 9900
    apply(store, order_event("order.refunded", t + 2, "50.00", "O-1", event_id="refund-1"))  # again: once
    assert store.redis.zscore(keys.RANK_VALUE, KARI) == 9900
    apply(store, order_event("order.cancelled", t + 3, "149.00", "O-1"))
    assert store.redis.zscore(keys.RANK_VALUE, KARI) == 2000  # EUR is all that is left
    assert store.orders_summary(KARI).totals == {"EUR": "20.00"}
    apply(store, ticket_event("T-1", email="ola@example.no"))
    assert store.redis.zscore(keys.RANK_VALUE, "ola@example.no") is None  # no orders, no value


def test_an_order_forgotten_and_refunded_later_keeps_its_total_and_earlier_refunds(store):
    t = now_ms() - 10 * 60_000
    apply(store, order_event("order.created", t, "149.00"), order_event("order.refunded", t + 1, "20.00"))
    store.redis.delete(keys.order("standard:O-1"))  # as its expiry would, after 90 quiet days
    apply(store, order_event("order.refunded", t + 2, "30.00"))
    assert store.orders_summary(KARI).total == "99.00"
    apply(store, order_event("order.refunded", t + 2, "30.00"))  # the same refund again: once
    assert store.orders_summary(KARI).total == "99.00"
    assert store.redis.zscore(keys.RANK_VALUE, KARI) == 9900
    (order,) = store.customer_orders(KARI)
    assert (order.order.total, order.refunded, order.order.status) == ("149.00", "50.00", "refunded")


def test_names_holds_the_agent_named_by_the_newest_event_of_a_ticket(store):
    t = now_ms() - 10 * 60_000
    newer = ticket_event("T-1", at_ms=t + 1000, agent={"id": "a-7", "name": "Ola Nordmann"})
    older = ticket_event("T-1", "ticket.created", t, status="new", agent={"id": "a-7", "name": "Ola"})
    apply(store, newer, older)
    assert store.redis.hget(keys.NAMES, "agent|standard:a-7") == "Ola Nordmann"
    apply(store, ticket_event("T-2", at_ms=t, agent={"id": "a-8"}))  # no name: nothing to note
    assert sorted(store.redis.hkeys(keys.NAMES)) == ["agent|standard:a-7", "at|agent|standard:a-7"]


def test_customers_is_a_sorted_set_of_every_customer(store):
    apply(store, ticket_event("T-1", email="b@example.no"), order_event("order.created", now_ms(), email="a@x.no"))
    assert store.redis.zrange(keys.CUSTOMERS, 0, -1, withscores=True) == [("a@x.no", 0), ("b@example.no", 0)]


def test_the_profile_names_every_alias_key_of_the_customer_including_each_order_own(store):
    apply(store, ticket_event("T-1"), order_event("order.created", now_ms() - 1000, order="O-9"))
    assert store.profile(KARI).aliases == (("standard", f"c-{KARI}"), ("standard", "order:O-9"))
    assert store.resolve_alias("standard", "order:O-9") == KARI
    assert 364 * DAY_MS < store.redis.pttl(keys.alias("standard", "order:O-9")) <= 365 * DAY_MS
    assert store.redis.pttl(keys.alias("standard", f"c-{KARI}")) == -1


def test_the_timeline_keeps_the_retention_window_and_a_bounded_number_of_entries(store):
    t = now_ms()
    apply(store, ticket_event("T-old", at_ms=t - 31 * DAY_MS), ticket_event("T-new", at_ms=t - DAY_MS))
    rows = store.timeline_events(KARI, 10)
    assert [(e.kind, e.ticket, e.status, e.subject) for e in rows] == [
        ("ticket.solved", "standard:T-new", "solved", "Card declined")]
    ttl = store.redis.pttl(keys.customer(KARI, "timeline"))
    assert 29 * DAY_MS - 60_000 < ttl <= 29 * DAY_MS  # it goes when its newest entry is 30 days old
    apply(store, *(ticket_event(f"T-{n}", "ticket.updated", t - 100_000 + n, status="open")
                   for n in range(TIMELINE_MAX + 20)))
    assert store.redis.zcard(keys.customer(KARI, "timeline")) == TIMELINE_MAX


def test_an_order_timeline_entry_reads_back_what_the_event_said(store):
    apply(store, order_event("order.refunded", now_ms() - 1000, "20.00", event_id="refund-9"))
    (entry,) = store.timeline_events(KARI, 10)
    assert (entry.kind, entry.source, entry.event, entry.order, entry.status, entry.total, entry.currency) == (
        "order.refunded", "standard", "refund-9", "standard:O-1", "refunded", "20.00", "NOK")


# Any arrival order


def _state(store: Store, email: str, tkeys: list[str], okeys: list[str]) -> dict[str, Any]:
    """Everything an apply keeps about a customer, wall-clock scores left out."""
    r = store.redis
    return {
        "tickets": {t: r.hgetall(keys.ticket(t)) for t in tkeys},
        "histories": {t: r.zrange(keys.ticket_history(t), 0, -1, withscores=True) for t in tkeys},
        "orders": {o: r.hgetall(keys.order(o)) for o in okeys},
        "due": {t: r.zscore(keys.due_of(t), t) for t in [*tkeys, *(f"o|{o}" for o in okeys)]},
        "profile": r.hgetall(keys.customer(email, "profile")),
        "index": store.customer_ticket_keys(email),
        "timeline": r.zrange(keys.customer(email, "timeline"), 0, -1, withscores=True),
        "value": r.zscore(keys.RANK_VALUE, email),
        "names": r.hgetall(keys.NAMES),
        "alias": (r.get(keys.alias("standard", f"c-{email}")), r.get(keys.alias("standard", "order:O-1"))),
    }


def _history(base: int) -> list[Callable[[], tuple[Event, str]]]:
    return [
        lambda: ticket_event("T-1", "ticket.created", base, status="new", agent={"id": "a-1", "name": "Old"}),
        lambda: ticket_event("T-1", at_ms=base + 1000, agent={"id": "a-1", "name": "New"}),
        lambda: ticket_event("T-1", "ticket.reopened", base + 2000),
        lambda: ticket_event("T-1", at_ms=base + 3000),
        lambda: order_event("order.created", base, "149.00"),
        lambda: order_event("order.fulfilled", base + 1000, "149.00"),
        lambda: order_event("order.refunded", base + 2000, "20.00", event_id="r1"),
    ]


def test_any_arrival_order_and_any_repeat_gives_the_same_state(store):
    base = now_ms() - 3_600_000
    history = _history(base)
    apply(store, *(make() for make in history), order_delay_ms=0)
    expected = _state(store, KARI, ["standard:T-1"], ["standard:O-1"])
    assert expected["value"] == 12900 and expected["names"]["agent|standard:a-1"] == "New"
    orders = list(itertools.permutations(range(len(history))))
    for n, order in enumerate(orders[::97][:40]):
        store.redis.flushdb()
        for index in order:  # one at a time, then the whole history again in one batch
            apply(store, history[index](), order_delay_ms=0)
        apply(store, *(history[i]() for i in reversed(order)), order_delay_ms=0)
        got = _state(store, KARI, ["standard:T-1"], ["standard:O-1"])
        assert got == expected, (n, order)


@pytest.fixture
def store(settings: Any) -> Iterator[Store]:
    client = Store.from_url(settings.redis_url)
    yield client
    client.redis.close()
