"""A lone UTF-16 surrogate ("\\ud800": valid JSON, not valid Unicode, what a sender's JavaScript leaves when it cuts a
string inside an emoji) is read as U+FFFD wherever text comes in (tracker.text), and an entry of the event log that
raises when applied is parked on its own: neither may hold up the shards behind it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import drain, inject_log_entry, solved_event
from tracker.events import event_record, parse_event
from tracker.store import keys
from tracker.text import loads, mended

LONE = "\ud800"
PAIR = "\U0001f600"  # one character, which JSON escapes as a pair ("\ud83d\ude00")


def dead_letters(store: Any) -> list[dict[str, str]]:
    return [fields for _id, fields in store.redis.xrange(keys.DEAD)]


def test_loads_mends_lone_surrogates_in_keys_and_values_and_keeps_pairs() -> None:
    text = json.dumps({f"k{LONE}": [f"a{LONE}b", {"c": "\udc80"}, PAIR, 1, None], "n": 2.5})
    assert "\\ud800" in text and "\\ud83d\\ude00" in text
    assert loads(text) == {"k\ufffd": ["a\ufffdb", {"c": "\ufffd"}, PAIR, 1, None], "n": 2.5}
    assert loads(json.dumps(PAIR)) == PAIR and mended("plain") == "plain"
    deep = loads("[" * 900 + '"\\udfff"' + "]" * 900)
    for _ in range(900):
        deep = deep[0]
    assert deep == "\ufffd"


@pytest.mark.parametrize("where", ["subject", "ticket id", "customer id", "event id", "name", "agent id"])
def test_a_webhook_with_a_lone_surrogate_is_applied_with_the_replacement_character(
        post_event, store, settings, where: str) -> None:
    event = solved_event(ticket="T-7")
    if where == "subject":
        event["ticket"]["subject"] = f"Card {LONE} declined"
    elif where == "ticket id":
        event["ticket"]["id"] = f"T-7{LONE}"
    elif where == "customer id":
        event["customer"]["id"] = f"c-{LONE}"
    elif where == "event id":
        event["id"] = f"evt-{LONE}"
    elif where == "name":
        event["customer"]["name"] = f"Kari {LONE}"
    else:
        event["ticket"]["agent"]["id"] = f"a-{LONE}"
    assert post_event("standard", event).status_code == 202
    assert post_event("standard", solved_event(ticket="T-8", email_address="ola@example.no")).status_code == 202
    assert drain(store, settings) == 2
    assert not dead_letters(store) and store.lag().pending == 0
    ticket = "standard:T-7\ufffd" if where == "ticket id" else "standard:T-7"
    assert store.ticket(ticket)["status"] == "solved"
    if where == "subject":
        assert store.ticket(ticket)["subject"] == "Card \ufffd declined"
    assert store.ticket("standard:T-8")["status"] == "solved"


def test_an_entry_that_raises_when_applied_is_parked_and_the_rest_of_its_batch_applied(
        post_event, store, settings) -> None:
    # What the receiver wrote before it mended surrogates: a record whose ticket id no key can hold. Applying it
    # raised on every drain of its group, and every entry behind it waited for ever.
    record = event_record(parse_event(solved_event(ticket="T-0"), "standard"))
    record["ticket"]["id"] = f"T-0{LONE}"
    payload = json.dumps(record)
    assert post_event("standard", solved_event(ticket="T-1")).status_code == 202
    inject_log_entry(store, payload)
    assert post_event("standard", solved_event(ticket="T-2", email_address="ola@example.no")).status_code == 202
    assert drain(store, settings) == 2
    assert store.ticket("standard:T-1")["status"] == "solved"
    assert store.ticket("standard:T-2")["status"] == "solved"
    (dead,) = dead_letters(store)
    assert dead["e"] == payload and dead["reason"].startswith("apply failed: UnicodeEncodeError"), dead
    assert store.lag().pending == 0
    assert drain(store, settings) == 0 and len(dead_letters(store)) == 1  # parked once, passed for good
