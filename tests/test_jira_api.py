"""Jira user look-ups against a real HTTP server standing in for Jira Cloud, cached in the real Redis."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support import vendor_fixture, wait_until
from tracker.config import Settings, load_settings
from tracker.ingest import apply as ingest
from tracker.ingest import jira as jira_api
from tracker.ingest.enrich import enrich as enrich_by_source
from tracker.ingest.jira import JiraUnavailable, enrich
from tracker.model import Customer, Event, Ticket
from tracker.store import Store

PATH = "/rest/api/3/user"
ACCOUNT = "qm:1a2b3c4d-5e6f"
AVATAR = "https://avatar-management--avatars.server-location.prod.public.atl-paas.net/initials/KN-5.png"


def user(account: str = ACCOUNT, email: str | None = "Kari@Example.no", name: str = "Kari Nordmann") -> dict[str, Any]:
    """Answer like Jira's documented `Get user` response (REST API v3), with or without the email."""
    answer: dict[str, Any] = {
        "accountId": account, "accountType": "customer", "active": True,
        "applicationRoles": {"items": [], "size": 1},
        "avatarUrls": {size: f"{AVATAR}?size={size[:2]}&s={size[:2]}" for size in ("16x16", "24x24", "32x32", "48x48")},
        "displayName": name, "groups": {"items": [], "size": 3}, "key": "", "name": "",
        "self": f"https://acme.atlassian.net/rest/api/3/user?accountId={account}", "timeZone": "Europe/Oslo",
    }
    if email is not None:
        answer["emailAddress"] = email
    return answer


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep backoff short so retry tests take milliseconds, not seconds."""
    monkeypatch.setattr(jira_api, "BACKOFF_S", 0.01)


def jira_env(env: dict[str, str], httpserver: HTTPServer) -> dict[str, str]:
    """Return the variables that point the Jira look-ups at httpserver."""
    return {**env, "TRACKER_JIRA_API_URL": httpserver.url_for("").rstrip("/"),
            "TRACKER_JIRA_API_USER": "admin@acme.test", "TRACKER_JIRA_API_TOKEN": "jira-api-token"}


@pytest.fixture
def jira(env: dict[str, str], httpserver: HTTPServer) -> Settings:
    return load_settings(jira_env(env, httpserver))


def event(account: str = ACCOUNT, ticket: str = "SUP-17", email: str | None = None) -> Event:
    """Build an event as the adapter makes it from a webhook whose reporter hides the email."""
    return Event("ticket.solved", f"jira-{ticket}", "jira", 1795341600000,
                 Customer(id=account, email=email, name="Kari Nordmann"), ticket=Ticket(ticket, status="solved"))


def post_hidden_email_delivery(post_event: Any) -> None:
    recorded = vendor_fixture("jira", "issue_updated__resolved_email_hidden")
    assert post_event("jira", recorded.json(), headers=recorded.headers).status_code == 202


def test_a_reporter_whose_email_jira_hides_lands_on_the_customer_jira_names(httpserver, store, env, post_event):
    httpserver.expect_request(PATH, query_string={"accountId": ACCOUNT}).respond_with_json(user())
    post_hidden_email_delivery(post_event)
    assert ingest.drain(store, load_settings(jira_env(env, httpserver)), "test")[0] == 1
    assert store.ticket("jira:SUP-17")["customer"] == "kari@example.no"
    assert store.redis.xlen("t:{log}:dead") == 0


def test_events_that_need_jira_stay_pending_while_its_api_fails_and_apply_once_it_answers(
        httpserver, store, env, post_event):
    configured = load_settings(jira_env(env, httpserver))
    post_hidden_email_delivery(post_event)
    httpserver.expect_ordered_request(PATH).respond_with_data("down", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_data("down", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_data("down", status=503)
    assert ingest.drain(store, configured, "test")[0] == 0
    assert store.ticket("jira:SUP-17") == {}
    assert store.redis.xlen("t:{log}:dead") == 0
    assert store.lag().pending == 1  # waiting for the look-up, tried again after ingest.RETRY_FIRST_MS
    httpserver.expect_ordered_request(PATH).respond_with_json(user())
    wait_until(lambda: ingest.drain(store, configured, "test")[0] == 1, timeout=10, what="the retry to apply it")
    assert store.ticket("jira:SUP-17")["customer"] == "kari@example.no"
    assert store.lag().pending == 0


def test_requests_carry_basic_auth_with_the_account_email_and_api_token(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    expected = "Basic " + base64.b64encode(b"admin@acme.test:jira-api-token").decode()
    httpserver.expect_request(PATH, headers={"Authorization": expected}).respond_with_json(user())
    (enriched,) = enrich([event()], jira, store)
    httpserver.check_assertions()
    assert enriched.customer == Customer(id=ACCOUNT, email="kari@example.no", name="Kari Nordmann")


def test_each_account_is_asked_once_per_call_and_then_served_from_the_cache(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    def answer(request: Request) -> Response:
        account = request.args["accountId"]
        return Response(json.dumps(user(account, f"{account.replace(':', '-')}@example.no")),
                        content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(answer)
    events = [event(ticket="SUP-1"), event(ticket="SUP-2"), event(account="5b10ac8d82e05b22cc7d4ef5", ticket="SUP-3")]
    enriched = enrich(events, jira, store)
    assert [e.customer.email for e in enriched] == ["qm-1a2b3c4d-5e6f@example.no"] * 2 + [
        "5b10ac8d82e05b22cc7d4ef5@example.no"]
    assert sorted(request.args["accountId"] for request, _ in httpserver.log) == sorted(
        [ACCOUNT, "5b10ac8d82e05b22cc7d4ef5"])
    enrich([event(ticket="SUP-4")], jira, store)
    assert len(httpserver.log) == 2


def test_an_email_jira_withholds_from_the_api_too_leaves_the_customer_as_it_was_and_is_not_cached(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(user(email=None))
    assert enrich([event()], jira, store) == [event()]
    assert store.cached_people("jira", [ACCOUNT]) == {}


def test_an_account_jira_does_not_know_is_left_alone_without_an_outage(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {"errorMessages": ["Specified user does not exist or you do not have required permissions"], "errors": {}},
        status=404)
    assert enrich_by_source([event()], jira, store) == ([event()], frozenset())
    assert len(httpserver.log) == 1


def test_a_503_then_a_200_succeeds_within_the_call(jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_request(PATH).respond_with_json(user())
    (enriched,) = enrich([event()], jira, store)
    assert enriched.customer.email == "kari@example.no"
    assert [response.status_code for _, response in httpserver.log] == [503, 200]


def test_a_429_asking_for_more_than_thirty_seconds_gives_up_at_once(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("slow down", status=429, headers={"Retry-After": "93"})
    with pytest.raises(JiraUnavailable, match="429"):
        enrich([event()], jira, store)
    assert len(httpserver.log) == 1


def test_repeated_timeouts_raise_unavailable(
        jira: Settings, store: Store, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jira_api, "READ_TIMEOUT_S", 0.2)
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(5)
        return Response(json.dumps(user()), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(stall)
    try:
        with pytest.raises(JiraUnavailable, match="ReadTimeout after 3 attempts"):
            enrich([event()], jira, store)
    finally:
        release.set()
    wait_until(lambda: len(httpserver.log) == 3, timeout=10, what="the three attempts to be served")


def test_refused_credentials_raise_unavailable_without_leaking_them(
        jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("Unauthorized", status=401)
    with pytest.raises(JiraUnavailable, match="HTTP 401") as raised:
        enrich([event()], jira, store)
    assert "jira-api-token" not in str(raised.value) and "admin@acme.test" not in str(raised.value)
    assert len(httpserver.log) == 1


def test_nothing_is_requested_when_jira_is_not_configured_or_the_email_is_known(
        settings: Settings, env: dict[str, str], jira: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(user())
    without_token = load_settings({**jira_env(env, httpserver), "TRACKER_JIRA_API_TOKEN": ""})
    for partial in (settings, without_token):
        assert enrich([event()], partial, store) == [event()]
    known = event(email="kari@example.no")
    assert enrich([known], jira, store) == [known]
    assert len(httpserver.log) == 0


def test_a_jira_api_url_that_is_not_a_url_is_refused_at_start_up(env: dict[str, str]) -> None:
    from tracker.config import ConfigError

    with pytest.raises(ConfigError, match="TRACKER_JIRA_API_URL"):
        load_settings({**env, "TRACKER_JIRA_API_URL": "acme.atlassian.net"})


def test_the_ingest_package_registers_the_jira_look_up_for_every_process_that_drains() -> None:
    # A fresh interpreter: what the worker imports, not what this test module imported.
    import subprocess
    import sys

    code = "import tracker.ingest.apply; from tracker.ingest.enrich import HOOKS; print(sorted(HOOKS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "'jira'" in out.stdout
