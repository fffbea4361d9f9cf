"""Every vendor fixture through the real HTTP endpoint, signed the vendor's way, then applied."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.signing import signed
from tests.support import VendorFixture, vendor_fixtures
from tracker.config import Settings
from tracker.ingest import apply as ingest
from tracker.model import Event
from tracker.store import ticket_key
from tracker.store.due import DAY_MS
from webhooks.adapters import ADAPTERS
from webhooks.adapters.base import Delivery, IgnoredEvent, Inbound, PayloadError

FIXTURE_LIST = vendor_fixtures()


def _post(base: str, fixture: VendorFixture) -> requests.Response:
    headers, query = signed(fixture.source, fixture.body, headers=fixture.headers)
    return requests.post(f"{base}/webhooks/{fixture.source}", data=fixture.body, params=query, timeout=10,
                         headers={"Content-Type": fixture.content_type, **headers})


def _verdict(fixture: VendorFixture) -> Delivery | IgnoredEvent | PayloadError:
    """Return what the source's adapter makes of the fixture (tests/test_adapters.py pins that to a table)."""
    headers, query = signed(fixture.source, fixture.body, headers=fixture.headers)
    try:
        return ADAPTERS[fixture.source].parse(Inbound(fixture.body, headers, query, 0.0))
    except (IgnoredEvent, PayloadError) as verdict:
        return verdict


def _assert_applied(store: Any, settings: Settings, source: str, event: Event) -> None:
    email = event.customer.email
    if not email:
        return  # ids only: resolved through the alias index or the vendor's API elsewhere
    assert store.profile(email) is not None, event
    if event.answer is not None and event.at_ms + settings.survey_expiry_days * DAY_MS <= time.time() * 1000:
        # A survey event dated before its survey could last (the vendor's example ages) keeps the survey, not the
        # ticket: a ticket's state lasts only while its survey can still be answered.
        surveys = store.customer_surveys(email)
        assert surveys and (event.ticket is None or ticket_key(source, event.ticket.id) in {s.tkey for s in surveys})
    elif event.ticket is not None:
        assert store.ticket(ticket_key(source, event.ticket.id))["customer"] == email
    elif event.order is not None:
        assert store.orders_summary(email).count + int(event.type == "order.cancelled") >= 1


@pytest.mark.parametrize("fixture", FIXTURE_LIST, ids=lambda fixture: fixture.id)
def test_every_fixture_gets_the_answer_the_contract_gives_over_real_http(fixture, live_server, store, settings):
    verdict = _verdict(fixture)
    response = _post(live_server, fixture)
    assert response.headers["Content-Type"].startswith("application/json")
    if isinstance(verdict, IgnoredEvent):
        assert (response.status_code, response.json()) == (200, {"status": "ignored"})
        return
    if isinstance(verdict, PayloadError):
        assert response.status_code == verdict.status, response.text
        assert response.json()["errors"] == verdict.errors
        return
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "events": len(verdict.events)}
    again = _post(live_server, fixture)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    ingest.drain(store, settings, "test")
    for event in verdict.events:
        _assert_applied(store, settings, fixture.source, event)


# No input to any source's endpoint produces a 500, and whatever is accepted applies or is parked.

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12)
JSON_FIXTURES = [fixture for fixture in FIXTURE_LIST if fixture.content_type == "application/json"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:3]):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def mutated_deliveries(draw: Any) -> tuple[str, bytes, dict[str, str]]:
    fixture = draw(st.sampled_from(JSON_FIXTURES))
    body = fixture.json()
    where = draw(st.sampled_from(_paths(body)))
    target = body
    for step in where[:-1]:
        target = target[step]
    if draw(st.booleans()):
        target[where[-1]] = draw(JSON_VALUES)
    elif isinstance(target, dict):
        del target[where[-1]]
    return fixture.source, json.dumps(body).encode(), dict(fixture.headers)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated_deliveries())
def test_any_mutation_of_any_vendor_payload_gets_a_table_answer_and_applies_or_is_parked(client, store, settings,
                                                                                       case):
    source, body, fixture_headers = case
    headers, query = signed(source, body, headers=fixture_headers)
    response = client.post(f"/webhooks/{source}", data=body, query_string=query,
                           headers={"Content-Type": "application/json", **headers})
    assert response.status_code in (200, 202, 400, 401, 422), response.data[:300]
    assert response.mimetype == "application/json"
    if response.status_code == 202:
        ingest.drain(store, settings, "test")  # must not raise: bad records are dead-lettered
        # Every entry was read: applied, parked, or set aside until its customer (named by id only) is known.
        assert not store.lag().lag


def test_every_source_is_covered_by_the_property_test():
    assert {fixture.source for fixture in JSON_FIXTURES} == set(ADAPTERS)
