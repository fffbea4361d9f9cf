"""Zendesk user look-ups against a real HTTP server standing in for Zendesk, cached in the real Redis."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support import vendor_fixture, wait_until
from tracker.config import Settings, load_settings
from tracker.ingest import zendesk as zendesk_api
from tracker.ingest.enrich import enrich as enrich_by_source
from tracker.ingest.zendesk import ZendeskUnavailable, enrich
from tracker.model import Agent, Customer, Event, Ticket
from tracker.store import Store

PATH = "/api/v2/users/show_many.json"
KARI = {"id": 381203941, "url": "https://acme.zendesk.com/api/v2/users/381203941.json",
        "name": "Kari Nordmann", "email": "Kari@Example.NO", "locale": "nb", "locale_id": 1034,
        "role": "end-user", "active": True, "time_zone": "Copenhagen", "created_at": "2026-01-03T09:00:00Z"}
OLA = {"id": 90817263, "url": "https://acme.zendesk.com/api/v2/users/90817263.json", "name": "Ola Agent",
       "email": "ola@acme.test", "locale": "en-US", "locale_id": 1, "role": "agent", "active": True,
       "time_zone": "Copenhagen", "created_at": "2025-06-01T09:00:00Z"}
PER = {"id": 381203942, "name": "Per Hansen", "email": "per@example.no", "locale": "nn", "active": True}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep backoff short so retry tests take milliseconds, not seconds."""
    monkeypatch.setattr(zendesk_api, "BACKOFF_S", 0.01)


def zendesk_env(env: dict[str, str], httpserver: HTTPServer) -> dict[str, str]:
    """Return the variables that point the Zendesk look-ups at httpserver."""
    return {**env, "TRACKER_ZENDESK_URL": httpserver.url_for("").rstrip("/"),
            "TRACKER_ZENDESK_EMAIL": "admin@acme.test", "TRACKER_ZENDESK_TOKEN": "tok"}


@pytest.fixture
def zendesk(env: dict[str, str], httpserver: HTTPServer) -> Settings:
    return load_settings(zendesk_env(env, httpserver))


def event(customer: str = "381203941", agent: str | None = "90817263", source: str = "zendesk",
          ticket: str = "1001") -> Event:
    """Build an event as the adapter makes it from a ticket.status_changed event."""
    return Event("ticket.solved", f"evt-{ticket}", source, 1795860000123, Customer(id=customer),
                 ticket=Ticket(ticket, status="solved", channel="web_form", tags=("vip",),
                               agent=Agent(agent) if agent else None))


def agent_of(event: Event) -> Agent:
    assert event.ticket is not None and event.ticket.agent is not None
    return event.ticket.agent


def users(*people: dict[str, Any]) -> dict[str, Any]:
    return {"users": list(people), "next_page": None, "previous_page": None, "count": len(people)}


def requested_ids(httpserver: HTTPServer) -> list[set[str]]:
    return [set(request.args["ids"].split(",")) for request, _ in httpserver.log]


def test_ids_are_resolved_to_the_customers_email_name_and_locale_and_the_agents_email_and_name(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA))
    (enriched,) = enrich([event()], zendesk, store)
    assert enriched.customer == Customer(id="381203941", email="kari@example.no", name="Kari Nordmann", locale="nb")
    assert agent_of(enriched) == Agent(id="90817263", email="ola@acme.test", name="Ola Agent")
    assert requested_ids(httpserver) == [{"381203941", "90817263"}]


def test_a_regional_locale_is_kept_as_given_in_lower_case(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users({**KARI, "locale": "en-US"}))
    (enriched,) = enrich([event(agent=None)], zendesk, store)
    assert enriched.customer.locale == "en-us"


def test_requests_carry_zendesks_api_token_basic_auth(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    expected = "Basic " + base64.b64encode(b"admin@acme.test/token:tok").decode()
    httpserver.expect_request(PATH, headers={"Authorization": expected}).respond_with_json(users(KARI, OLA))
    enrich([event()], zendesk, store)
    httpserver.check_assertions()
    assert len(httpserver.log) == 1


def test_many_records_are_resolved_with_one_request(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA, PER))
    events = [event(ticket="1001"), event(ticket="1002"), event(customer="381203942", ticket="1003")]
    enriched = enrich(events, zendesk, store)
    emails = [e.customer.email for e in enriched]
    assert emails == ["kari@example.no", "kari@example.no", "per@example.no"]
    assert all(agent_of(e).name == "Ola Agent" for e in enriched)
    assert requested_ids(httpserver) == [{"381203941", "381203942", "90817263"}]


def test_more_than_a_hundred_people_are_fetched_a_hundred_at_a_time(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    def answer(request: Request) -> Response:
        people = [{"id": int(i), "email": f"c{i}@example.no", "name": f"C {i}", "locale": "nb"}
                  for i in request.args["ids"].split(",")]
        return Response(json.dumps(users(*people)), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(answer)
    events = [event(customer=str(1000 + n), agent=None, ticket=str(n)) for n in range(150)]
    enriched = enrich(events, zendesk, store)
    assert [len(ids) for ids in requested_ids(httpserver)] == [100, 50]
    assert all(e.customer.email == f"c{e.customer.id}@example.no" for e in enriched)


def test_a_second_call_is_served_from_the_cache_without_a_request(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA))
    enrich([event()], zendesk, store)
    (again,) = enrich([event(ticket="1002")], zendesk, store)
    assert len(httpserver.log) == 1
    assert again.customer.email == "kari@example.no"
    assert agent_of(again).email == "ola@acme.test"


def test_a_503_then_a_200_succeeds_within_the_call(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA))
    (enriched,) = enrich([event()], zendesk, store)
    assert enriched.customer.email == "kari@example.no"
    assert [response.status_code for _, response in httpserver.log] == [503, 200]


def test_a_429_is_retried_after_the_seconds_zendesk_asks_for(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    seen: list[float] = []

    def answer(request: Request) -> Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Response("Rate limit exceeded", status=429, headers={"Retry-After": "1"})
        return Response(json.dumps(users(KARI, OLA)), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(answer)
    (enriched,) = enrich([event()], zendesk, store)
    assert enriched.customer.email == "kari@example.no"
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.0


def test_a_429_asking_for_more_than_thirty_seconds_gives_up_at_once(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("slow down", status=429, headers={"Retry-After": "93"})
    with pytest.raises(ZendeskUnavailable, match="429"):
        enrich([event()], zendesk, store)
    assert len(httpserver.log) == 1


def test_repeated_503s_raise_unavailable_after_three_attempts(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("busy", status=503)
    with pytest.raises(ZendeskUnavailable, match="HTTP 503 after 3 attempts"):
        enrich([event()], zendesk, store)
    assert len(httpserver.log) == 3


def test_a_500_raises_unavailable_without_retrying_within_the_call(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("oops", status=500)
    with pytest.raises(ZendeskUnavailable, match="HTTP 500"):
        enrich([event()], zendesk, store)
    assert len(httpserver.log) == 1
    # Through the registry the batch goes on: its events come back as they were, Zendesk marked down.
    assert enrich_by_source([event()], zendesk, store) == ([event()], frozenset({"zendesk"}))


def test_repeated_timeouts_raise_unavailable(
        zendesk: Settings, store: Store, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zendesk_api, "READ_TIMEOUT_S", 0.2)
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(5)
        return Response(json.dumps(users(KARI, OLA)), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(stall)
    try:
        with pytest.raises(ZendeskUnavailable, match="ReadTimeout after 3 attempts"):
            enrich([event()], zendesk, store)
    finally:
        release.set()
    # The server answers each abandoned request in turn; all three reached it.
    wait_until(lambda: len(httpserver.log) == 3, timeout=10, what="the three attempts to be served")


def test_refused_credentials_raise_unavailable_without_leaking_them(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json({"error": "Couldn't authenticate you"}, status=401)
    with pytest.raises(ZendeskUnavailable, match="HTTP 401") as raised:
        enrich([event()], zendesk, store)
    assert "tok" not in str(raised.value).replace("TOKEN", "") and "admin@acme.test" not in str(raised.value)
    assert "381203941" not in str(raised.value)
    assert len(httpserver.log) == 1


def test_a_deleted_user_leaves_the_customer_without_an_email(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(OLA))
    (enriched,) = enrich([event()], zendesk, store)
    assert enriched.customer == Customer(id="381203941")
    assert agent_of(enriched).email == "ola@acme.test"
    assert store.cached_people("zendesk", ["381203941"]) == {}


def test_nothing_is_requested_when_zendesk_is_not_configured(
        settings: Settings, env: dict[str, str], store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA))
    url = httpserver.url_for("").rstrip("/")
    without_token = load_settings({**env, "TRACKER_ZENDESK_URL": url, "TRACKER_ZENDESK_EMAIL": "admin@acme.test"})
    for partial in (settings, without_token):
        assert enrich([event()], partial, store) == [event()]
    assert len(httpserver.log) == 0


def test_records_of_other_sources_and_complete_records_are_left_alone(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(users(KARI, OLA))
    complete = event()
    assert complete.ticket is not None
    complete = replace(complete, customer=replace(complete.customer, email="kari@example.no", name="Kari"),
                       ticket=replace(complete.ticket, agent=Agent("90817263", email="ola@acme.test", name="Ola")))
    events = [event(source="standard"), event(source="freshdesk"), complete]
    assert enrich_by_source(events, zendesk, store) == (events, frozenset())
    assert len(httpserver.log) == 0


def test_an_event_subscription_delivery_with_ids_only_lands_on_the_customer_zendesk_names(
        httpserver, store, env, post_event):
    from tracker.ingest import apply as ingest

    httpserver.expect_request("/api/v2/users/show_many.json").respond_with_json({"users": [
        {"id": 381203941, "email": "Kari@Example.no", "name": "Kari", "locale": "nb"},
        {"id": 90817263, "email": "ola@acme.test", "name": "Ola", "locale": "en-US"}]})
    configured = load_settings(zendesk_env(env, httpserver))
    recorded = vendor_fixture("zendesk", "ticket.status_changed__solved")
    fixture = {"body": recorded.json(), "headers": recorded.headers}
    response = post_event("zendesk", fixture["body"], headers=fixture["headers"])
    assert response.status_code == 202, response.json
    assert ingest.drain(store, configured, "test")[0] == 1
    ticket = store.ticket("zendesk:1001")
    assert ticket["customer"] == "kari@example.no" and ticket["agent_name"] == "Ola"
    assert store.profile("kari@example.no").locale == "nb"


def test_events_that_need_zendesk_stay_pending_while_its_api_fails_and_apply_once_it_answers(
        httpserver, store, env, post_event):
    from tracker.ingest import apply as ingest

    configured = load_settings(zendesk_env(env, httpserver))
    recorded = vendor_fixture("zendesk", "ticket.status_changed__solved")
    fixture = {"body": recorded.json(), "headers": recorded.headers}
    assert post_event("zendesk", fixture["body"], headers=fixture["headers"]).status_code == 202
    httpserver.expect_ordered_request("/api/v2/users/show_many.json").respond_with_data("down", status=401)
    assert ingest.drain(store, configured, "test")[0] == 0
    assert store.ticket("zendesk:1001") == {}
    assert store.redis.xlen("t:{log}:dead") == 0
    assert store.lag().pending == 1  # waiting for the look-up, tried again after ingest.RETRY_FIRST_MS
    httpserver.expect_ordered_request("/api/v2/users/show_many.json").respond_with_json({"users": [
        {"id": 381203941, "email": "kari@example.no", "name": "Kari", "locale": "nb"}]})
    wait_until(lambda: ingest.drain(store, configured, "test")[0] == 1, timeout=10, what="the retry to apply it")
    assert store.ticket("zendesk:1001")["customer"] == "kari@example.no"
