"""Every field of every source's main published example, replaced by odd values, signed the vendor's way.

A sender's odd value is a 4xx that names it or an event the worker applies: never a 500, and never an accepted
event that the drain parks (accepted is a promise). The hypothesis run in test_receiver.py draws such bodies for
two sources at random; this walks every field of every source, at any depth, deterministically.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.signing import signed
from tests.support import drain, fresh_database
from tests.test_adapters import first_fixture
from tracker.store import keys
from webhooks.adapters import ADAPTERS

DROP = object()  # the field left out
ODD: list[Any] = [DROP, None, True, -1, 2**70, 1e308, "", "x" * 5000, "\x00", [], {}, [None, 1, {"a": []}],
                  "9999-12-31T23:59:59Z"]


def field_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key of every object and the first items of every list, at any depth."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node[:2]) if isinstance(node, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(field_paths(value, (*prefix, key)))
    return found


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> bytes:
    copy = json.loads(json.dumps(body))
    target = copy
    for part in path[:-1]:
        target = target[part]
    if value is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(copy).encode()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_no_field_of_any_source_with_any_odd_value_gets_a_500_or_an_accepted_event_parked(
        client: Any, store: Any, settings: Any, source: str) -> None:
    fixture = first_fixture(source)
    body = json.loads(fixture.body)
    problems: list[str] = []
    seen: dict[int, int] = {}
    for path in field_paths(body):
        for value in ODD:
            fresh_database(store)  # each a first delivery: nothing answered as a duplicate of the last
            raw = replaced(body, path, value)
            headers, query = signed(source, raw, headers=fixture.headers)
            headers.setdefault("content-type", "application/json")
            response = client.post(f"/webhooks/{source}", data=raw, headers=headers, query_string=query)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            where = f"{'.'.join(map(str, path))} = {'(left out)' if value is DROP else repr(value)[:40]}"
            answer = response.get_json(silent=True)
            if response.status_code >= 500 or not isinstance(answer, dict):
                problems.append(f"{where}: {response.status_code} {response.data[:200]!r}")
            elif response.status_code >= 400 and not (answer.get("code") == response.status_code
                                                      and answer.get("message")):
                problems.append(f"{where}: {response.status_code} without the envelope: {answer}")
            elif response.status_code == 202:
                drain(store, settings)
                if store.redis.exists(keys.DEAD):
                    problems.append(f"{where}: accepted, then parked: {store.redis.xrange(keys.DEAD)!r:.300}")
    assert not problems, "\n".join(problems[:40])
    assert seen.get(202) and any(400 <= code < 500 for code in seen), seen  # both kinds of answer were met
