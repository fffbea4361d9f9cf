"""Closing the loop end to end through real processes: a Zendesk webhook, the survey mail, the answer on the
survey page, the internal note and tags on the Zendesk ticket (a real HTTP server standing in for Zendesk's
API), the signed event stream, the recovery case, the note on the customer's next ticket, and the recovery by
the customer's next satisfied answer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from tests.support import wait_until
from tests.test_e2e import _answer_from_mail, _now_iso, _post
from tracker.config import load_settings
from tracker.notify.urls import event_secret

pytestmark = pytest.mark.e2e
CUSTOMER = "per@example.no"


@pytest.fixture
def env(env: dict[str, str], httpserver: Any) -> dict[str, str]:
    """The test's settings with write-back to Zendesk, an event URL and case owners, all on loopback."""
    return {**env, "TRACKER_WRITEBACK": "zendesk", "TRACKER_ZENDESK_API_URL": httpserver.url_for("").rstrip("/"),
            "TRACKER_ZENDESK_API_USER": "bot@acme.test", "TRACKER_ZENDESK_API_TOKEN": "zd-token",
            "TRACKER_EVENT_URLS": httpserver.url_for("/events"), "TRACKER_ALERT_ALLOW_PRIVATE": "1",
            "TRACKER_CASE_OWNERS": "billing=kim@acme.test", "TRACKER_SURVEY_THROTTLE_DAYS": "0"}


def _zendesk_ticket(ticket: str, status: str) -> dict[str, Any]:
    return {"ticket": {"id": ticket, "status": status, "subject": f"Refund missing ({ticket})",
                       "updated_at": _now_iso(), "via": "Mail", "brand": "Acme", "group": "Billing", "tags": "refund"},
            "requester": {"id": "501", "email": "Per@Example.no", "name": "Per", "locale": "en-US"},
            "assignee": {"id": "77", "email": "ola@acme.test", "name": "Ola"}}


def _calls(httpserver: Any, method: str, pattern: str) -> list[Any]:
    return [request for request, _ in httpserver.log
            if request.method == method and re.fullmatch(pattern, request.path)]


def _events(httpserver: Any, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every event the event URL received, each verified with the official standardwebhooks package."""
    verifier = Webhook(event_secret(load_settings(env)))
    return [verifier.verify(request.get_data(), dict(request.headers))
            for request in _calls(httpserver, "POST", "/events")]


def test_an_unhappy_answer_reaches_the_zendesk_ticket_the_event_stream_and_a_case_and_a_happy_one_recovers_it(
        env, store, live_server, start_worker, smtp, httpserver):
    httpserver.expect_request(re.compile(r"/api/v2/tickets/\d+\.json"), method="PUT").respond_with_json(
        {"ticket": {"id": 1}})
    httpserver.expect_request(re.compile(r"/api/v2/tickets/\d+/tags\.json"), method="PUT").respond_with_json(
        {"tags": []})
    httpserver.expect_request(re.compile(r"/api/v2/tickets/\d+/tags\.json"), method="DELETE").respond_with_json(
        {"tags": []})
    httpserver.expect_request("/events", method="POST").respond_with_data("", status=204)
    start_worker(beat=True)
    key = store.create_key("lead")
    auth = {"Authorization": f"Bearer {key}"}

    assert _post(live_server, "zendesk", _zendesk_ticket("1001", "Solved"),
                 headers={"x-zendesk-webhook-invocation-id": "inv-1"}).status_code == 202
    (mail,) = smtp.wait_for(1, timeout=60)
    _answer_from_mail(live_server, mail, 2, "Nobody called back")

    # The internal note and the tags on ticket 1001, once each, as Zendesk's API takes them.
    (note,) = wait_until(lambda: _calls(httpserver, "PUT", r"/api/v2/tickets/1001\.json"), 60, what="the note")
    comment = json.loads(note.get_data())["ticket"]["comment"]
    assert comment["public"] is False and "Nobody called back" in comment["html_body"]
    assert f"/dashboard/customers/{CUSTOMER}" in comment["html_body"]
    assert note.headers["Authorization"].startswith("Basic ")
    (tags,) = wait_until(lambda: _calls(httpserver, "PUT", r"/api/v2/tickets/1001/tags\.json"), 30, what="tags")
    assert set(json.loads(tags.get_data())["tags"]) == {"csat-2", "csat-unsatisfied"}

    # The recovery case, owned by the billing team's lead.
    cases = wait_until(lambda: requests.get(f"{live_server}/api/v1/cases", headers=auth, timeout=10).json()["cases"],
                       30, what="the case")
    (case,) = cases
    assert (case["customer"], case["status"], case["owner"]) == (CUSTOMER, "open", "kim@acme.test")

    # The event stream: signed, in order for the customer.
    wait_until(lambda: len([e for e in _events(httpserver, env) if e["type"] == "case.opened"]) == 1, 30,
               what="case.opened")
    types = [e["type"] for e in _events(httpserver, env)]
    assert types.index("survey.sent") < types.index("survey.answered") < types.index("case.opened")

    # The customer's next ticket: a note that they are at risk, before an agent replies.
    assert _post(live_server, "zendesk", _zendesk_ticket("1002", "Open"),
                 headers={"x-zendesk-webhook-invocation-id": "inv-2"}).status_code == 202
    (warning,) = wait_until(lambda: _calls(httpserver, "PUT", r"/api/v2/tickets/1002\.json"), 60,
                            what="the at-risk note")
    assert "at risk" in json.loads(warning.get_data())["ticket"]["comment"]["html_body"].lower()

    # Solved and answered satisfied: the case is recovered.
    assert _post(live_server, "zendesk", _zendesk_ticket("1002", "Solved"),
                 headers={"x-zendesk-webhook-invocation-id": "inv-3"}).status_code == 202
    second = smtp.wait_for(2, timeout=60)[1]
    _answer_from_mail(live_server, second, 5, "Sorted, thanks")
    wait_until(lambda: requests.get(f"{live_server}/api/v1/cases/{case['id']}", headers=auth,
                                    timeout=10).json()["status"] == "recovered", 60, what="the recovery")
    wait_until(lambda: len(_calls(httpserver, "PUT", r"/api/v2/tickets/1002\.json")) == 2, 60,
               what="the second answer's note")
    wait_until(lambda: "case.updated" in [e["type"] for e in _events(httpserver, env)], 30, what="case.updated")
    assert len(_calls(httpserver, "PUT", r"/api/v2/tickets/1001\.json")) == 1  # nothing written twice
    ids = [request.headers["webhook-id"] for request in _calls(httpserver, "POST", "/events")]
    assert len(ids) == len(set(ids))
