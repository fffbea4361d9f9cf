"""`tracker dead-letters`: the events the applier parked, listed by reason, and put back on the event log once their
cause is gone (a look-up back up, a bug fixed), where they apply once like any other."""

from __future__ import annotations

import json
from typing import Any

from tests.support import drain, inject_log_entry, solved_event, tracker
from tracker.events import event_record, parse_event
from tracker.store import keys, log

LONE = "\ud800"


def parked(store: Any) -> list[dict[str, str]]:
    return [fields for _id, fields in store.redis.xrange(keys.DEAD)]


def record(event: dict[str, Any]) -> str:
    return json.dumps(event_record(parse_event(event, "standard")))


def park_two(store: Any, settings: Any) -> str:
    """Park an entry whose apply raises (a record from before the receiver mended lone surrogates), and a valid event
    as a look-up down for longer than its retries parks it; return the valid one's record."""
    poison = json.loads(record(solved_event(ticket="T-0")))
    poison["ticket"]["id"] = f"T-0{LONE}"
    inject_log_entry(store, json.dumps(poison))
    assert drain(store, settings) == 0
    good = solved_event(ticket="T-5", email_address="ola@example.no")
    payload = record(good)
    store.dead_letter(log.shard_of(parse_event(good, "standard")), "1-1", payload,
                      "zendesk look-up unavailable after 12 tries")
    assert len(parked(store)) == 2
    return payload


def test_the_parked_events_are_listed_by_reason_newest_last(env, store, settings):
    park_two(store, settings)
    listed = tracker(env, "dead-letters")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "2 parked events"
    assert lines[1].startswith("       1  apply failed: UnicodeEncodeError: 'utf-8' codec can't encode character")
    assert lines[2] == "       1  zendesk look-up unavailable after 12 tries"
    assert lines[3] == "newest:" and lines[4].endswith("zendesk look-up unavailable after 12 tries")
    only = tracker(env, "dead-letters", "--reason", "LOOK-UP")
    assert only.stdout.splitlines()[:2] == ["1 parked event whose reason holds 'LOOK-UP'",
                                            "       1  zendesk look-up unavailable after 12 tries"]


def test_requeued_events_are_applied_once_and_one_that_still_fails_is_parked_again(env, store, settings):
    park_two(store, settings)
    requeued = tracker(env, "dead-letters", "--requeue", "--reason", "look-up")
    assert requeued.returncode == 0, requeued.stderr
    assert requeued.stdout.startswith("Put 1 parked event back on the event log.")
    (left,) = parked(store)  # the one that raises stays parked
    assert left["reason"].startswith("apply failed: UnicodeEncodeError")
    assert store.lag().lag == 1
    assert drain(store, settings) == 1
    assert store.ticket("standard:T-5")["status"] == "solved"
    # Everything back: the one that still raises is parked again, once; nothing is lost or applied twice.
    assert tracker(env, "dead-letters", "--requeue").stdout.startswith("Put 1 parked event back")
    assert drain(store, settings) == 0
    (again,) = parked(store)
    assert again["reason"].startswith("apply failed: UnicodeEncodeError")
    assert store.lag().lag == 0 and store.lag().pending == 0


def test_nothing_parked_says_so(env, store):
    assert tracker(env, "dead-letters").stdout == "0 parked events\n"
    assert tracker(env, "dead-letters", "--requeue").stdout.startswith("Put 0 parked events back")
    refused = tracker(env, "dead-letters", "--reason", "  ")
    assert refused.returncode != 0 and "--reason" in refused.stderr and "Traceback" not in refused.stderr
