"""The recovery cases' numbers under one filter, from the counters of its label (tracker.cases.labels), against the
same numbers counted from every case kept; and the labelling of cases opened before labels."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from tests.test_cases import answer_data, deliver
from tracker.cases.labels import keep_case_labels
from tracker.cases.stats import case_numbers
from tracker.cases.work import update_case
from tracker.model import Case
from tracker.privacy.erase import erase_customer
from tracker.scores.summary import Facets, case_facets
from tracker.store import keys
from tracker.store.cases import _entries as case_entries
from tracker.store.cases import case_to_hash, counts_of
from workers.celery_app import create_celery

HOUR_MS = 3_600_000
# Filters the summary takes, each alone; the last one an agent with the source its id names.
ONE_FILTER = [{"team": "billing"}, {"team": "tech"}, {"tag": "vip"}, {"tag": "refund"}, {"channel": "chat"},
              {"brand": "acme"}, {"agent": "standard:a-7"}, {"source": "standard"}, {"scale": "csat5"},
              {"organisation": "example.no"}, {"source": "standard", "agent": "standard:a-9"}]
NUMBERS = ("cases_open", "cases_overdue", "recovered_rate", "first_contact_hours")


def now_ms() -> int:
    return int(time.time() * 1000)


def open_case(world: Any, store: Any, settings: Any, ticket: str, email: str, hours_ago: int = 1,
              **ticket_fields: Any) -> str:
    """Solve a ticket, mail and answer its survey unsatisfied, and open its case as the dispatcher does."""
    sid = world.solved_and_answered(ticket, email, 1, "Slow", **ticket_fields)
    deliver(store, settings, answer_data(sid, email, 1, False, ticket=ticket, at_ms=now_ms() - hours_ago * HOUR_MS))
    return keys.case_id(sid, email)


def walked(store: Any, filters: dict[str, str]) -> dict[str, Any]:
    """The case numbers counted from every case kept, as before labels."""
    wanted = Facets(**filters)
    return case_numbers(store, now_ms(), lambda case, survey: case_facets(case, survey).passes(wanted))


def summary_numbers(client: Any, auth: dict[str, str], filters: dict[str, str]) -> dict[str, Any]:
    body = client.get("/api/v1/summary", query_string=filters, headers=auth).json
    return {name: body[name] for name in NUMBERS}


@pytest.fixture
def auth(store: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('lead')}"}


@pytest.fixture
def cases(world: Any, store: Any, settings: Any) -> list[str]:
    """Four cases of different teams, tags, channels and agents: one contacted, one recovered, one lost."""
    opened = [open_case(world, store, settings, "T-1", "kari@example.no", hours_ago=60),
              open_case(world, store, settings, "T-2", "per@example.no", team="tech", tags=["refund"], channel="chat",
                        agent={"id": "a-9", "name": "Siv"}),
              open_case(world, store, settings, "T-3", "ola@example.no", hours_ago=30, tags=["vip", "refund"]),
              open_case(world, store, settings, "T-4", "eva@example.no", team="tech", tags=[])]
    case = store.case(opened[0])
    update_case(store, settings, opened[0], case.opened_at_ms + 5 * HOUR_MS, "lead", note="Called")
    update_case(store, settings, opened[1], now_ms(), "lead", status="recovered")
    update_case(store, settings, opened[2], now_ms(), "lead", status="not_recovered")
    return opened


def test_a_new_case_counts_under_each_filter_value_of_its_survey_and_one_filters_numbers_read_its_counters(
        cases, store, client, auth, round_trips):
    assert store.case(cases[1]).labels == ("agent=standard%3Aa-9", "brand=acme", "channel=chat",
                                           "organisation=example.no", "scale=csat5", "source=standard", "tag=refund",
                                           "team=tech")
    assert not store.cases_labelled()  # beat has not said so yet: a filter counts the cases kept
    assert keep_case_labels(store) == 0 and store.cases_labelled()  # every case was labelled when it opened
    assert keep_case_labels(store) is None  # complete: one read
    for filters in ONE_FILTER:
        before = round_trips[0]
        got = summary_numbers(client, auth, filters)
        if "scale" not in filters:  # a scale's summary reads the answers (no rollup splits by scale)
            assert round_trips[0] - before <= 10, filters  # the summary's reads, and two for the cases' numbers
        assert got == walked(store, filters), filters  # which count each case as the walk over them does
    assert summary_numbers(client, auth, {"team": "billing"}) == {
        "cases_open": 1, "cases_overdue": 1, "recovered_rate": 0.0, "first_contact_hours": 5.0}
    assert summary_numbers(client, auth, {"tag": "refund"}) == {
        "cases_open": 0, "cases_overdue": 0, "recovered_rate": 50.0, "first_contact_hours": None}


def test_cases_from_before_labels_are_counted_from_the_cases_until_beat_labels_them_then_from_the_counters(
        cases, store, settings, client, auth):
    for case_id in cases:  # as a version before labels wrote them
        case = store.case(case_id)
        store.write_case(replace(case, labels=None), case)
        store.redis.hdel(keys.case(case_id), "labels")
    store.redis.delete(keys.CASES_LABELLED)
    assert all(store.case(case_id).labels is None for case_id in cases)
    assert store.case_counts(now_ms(), "team=tech").opened == 0  # no label counted yet ...
    expected = {str(filters): walked(store, filters) for filters in ONE_FILTER}
    for filters in ONE_FILTER:  # ... so the summary counts the cases kept
        assert summary_numbers(client, auth, filters) == expected[str(filters)], filters

    app = create_celery(settings)
    assert app.conf.beat_schedule["label-cases"] == {"task": "tracker.label_cases", "schedule": 30.0}
    app.tasks["tracker.label_cases"].apply()  # what beat runs, here in this process
    assert store.cases_labelled() and all(store.case(case_id).labels for case_id in cases)
    for filters in ONE_FILTER:
        assert summary_numbers(client, auth, filters) == expected[str(filters)], filters


def test_label_counts_follow_every_change_and_an_erasure(world, cases, store, settings, client, auth):
    keep_case_labels(store)
    update_case(store, settings, cases[3], now_ms(), "lead", status="contacted")
    update_case(store, settings, cases[2], now_ms(), "lead", status="open")  # reopened
    update_case(store, settings, cases[3], now_ms(), "lead", owner="siv@acme.test", note="Sent a voucher")
    erase_customer(store, settings, "kari@example.no")
    late = open_case(world, store, settings, "T-5", "nora@example.no", hours_ago=90, team="tech")
    assert store.case(late).overdue(now_ms())
    for filters in ONE_FILTER:
        assert summary_numbers(client, auth, filters) == walked(store, filters), filters
    assert summary_numbers(client, auth, {"team": "tech"})["cases_overdue"] == 1


def test_a_case_carried_in_without_labels_undoes_the_labelled_mark_even_under_a_labelling_walk(cases, store):
    keep_case_labels(store)
    assert store.cases_labelled()
    read = store.labelled_mark()
    carried = Case(id=keys.case_id("zyxwvutsrqponmlkjihg", "old@example.no"), customer="old@example.no",
                   ticket="standard:T-9", owner=None, status="open", opened_at_ms=now_ms(), due_at_ms=now_ms(),
                   survey="zyxwvutsrqponmlkjihg", scale="csat5", source="standard", team="tech", rev=1)
    assert store.restore_case(carried)
    assert not store.cases_labelled()
    assert not store.mark_cases_labelled(read)  # a walk begun before the carried case leaves the mark alone
    assert keep_case_labels(store) == 1 and store.cases_labelled()
    assert store.case(carried.id).labels == ("scale=csat5", "source=standard", "team=tech")


def unlabel(store: Any, *case_ids: str) -> None:
    """Make cases as a version before labels wrote them, and the labelling not begun."""
    for case_id in case_ids:
        case = store.case(case_id)
        store.write_case(replace(case, labels=None), case)
        store.redis.hdel(keys.case(case_id), "labels")
    store.redis.delete(keys.CASES_LABELLED)


def test_a_closed_case_a_lead_reopens_behind_the_labelling_walk_is_labelled_before_the_labelling_is_complete(
        world, store, settings, client, auth, monkeypatch):
    # ada and ina share a case bucket; ada's case is due first, so reopened it lists before ina's.
    early = open_case(world, store, settings, "T-1", "ada@example.no", hours_ago=60, team="tech")
    later = open_case(world, store, settings, "T-2", "ina@example.no", hours_ago=1, team="tech")
    update_case(store, settings, early, now_ms(), "lead", status="recovered")
    unlabel(store, early, later)
    walk = store.cases_with_surveys

    def one_at_a_time(batch: int = 500) -> Any:
        for number, found in enumerate(walk(batch=1)):
            yield found
            if number == 0:  # the walk passed ina's open case: a lead reopens ada's, which moves before it
                update_case(store, settings, early, now_ms(), "lead", status="open")

    monkeypatch.setattr(store, "cases_with_surveys", one_at_a_time)
    keep_case_labels(store)
    monkeypatch.undo()
    assert store.case(early).status == "open"
    assert store.case(early).labels is not None or not store.cases_labelled()
    assert summary_numbers(client, auth, {"team": "tech"}) == walked(store, {"team": "tech"})
    assert summary_numbers(client, auth, {"team": "tech"})["cases_open"] == 2


def test_an_erasure_racing_the_labelling_walk_leaves_nothing_counted_or_listed_under_the_cases_labels(
        world, store, settings, monkeypatch):
    case_id = open_case(world, store, settings, "T-1", "kari@example.no", hours_ago=60, team="tech")
    unlabel(store, case_id)
    read = store.cases_of

    def labelled_meanwhile(email: str) -> Any:
        found = read(email)
        assert keep_case_labels(store) == 1  # beat labels the case between the erasure's read and its delete
        return found

    monkeypatch.setattr(store, "cases_of", labelled_meanwhile)
    erase_customer(store, settings, "kari@example.no")
    monkeypatch.undo()
    assert store.case(case_id) is None
    counted = {name: value for bucket in range(keys.BUCKETS)
               for name, value in store.redis.hgetall(keys.case_counts(bucket)).items() if int(value)}
    assert counted == {}  # under no label either
    assert list(store.redis.scan_iter(keys.case_label_index(keys.bucket_of("kari@example.no"), "*"))) == []


def test_a_case_a_version_before_labels_opens_after_the_labelling_undoes_it_until_beat_labels_that_case(
        world, cases, store, settings, client, auth):
    # A rolling upgrade: the store is labelled, and a worker still on the version before labels opens a case. It
    # writes the case and the bucket's own counters alone (as case_write did then), no label, no labelled count.
    keep_case_labels(store)
    assert store.cases_labelled()
    sid = world.solved_and_answered("T-9", "old@example.no", 1, "Slow", team="tech")
    case = Case(id=keys.case_id(sid, "old@example.no"), customer="old@example.no", ticket="standard:T-9", owner=None,
                status="open", opened_at_ms=now_ms(), due_at_ms=now_ms() - HOUR_MS, survey=sid, scale="csat5",
                source="standard", team="tech")
    old_fields = {name: value for name, value in counts_of(case).items() if value}
    store._case_write(case.id, "new", case_to_hash(case), list(old_fields.items()),
                      [(key, "+", member) for key, member in case_entries(case).items()])
    assert store.case(case.id).labels is None
    assert not store.cases_labelled()  # opened and labelled counts parted: the cases kept are counted again
    tech = {"team": "tech"}
    assert summary_numbers(client, auth, tech) == walked(store, tech) and walked(store, tech)["cases_overdue"] == 1
    assert keep_case_labels(store) == 1 and store.cases_labelled()
    assert summary_numbers(client, auth, tech) == walked(store, tech)
