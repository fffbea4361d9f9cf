"""The receiver's fast path (webhooks/fast_path.py): the common delivery answered without Flask's request machinery,
exactly as the blueprint answers it, and every other request left to the blueprint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from tests.signing import signed
from tests.support import solved_event, vendor_fixture
from tracker.config import MAX_BODY
from tracker.store import Store
from tracker.web.app import create_app
from tracker.web.clients import ClientAddresses
from tracker.web.limits import ClientLimits
from webhooks.fast_path import WebhookFastPath


@pytest.fixture
def seen(app: Any) -> list[str]:
    """The paths of the requests Flask itself handled (its before-request hooks ran)."""
    handled: list[str] = []
    app.before_request(lambda: handled.append(app_request_path()))
    return handled


def app_request_path() -> str:
    from flask import request

    return request.path


def _request(source: str, delivery: str, ticket: str, *, content_type: str = "application/json",
             body: bytes | None = None, sign: bool = True) -> dict[str, Any]:
    raw = body if body is not None else json.dumps(solved_event(ticket=ticket, event_id=f"evt-{ticket}")).encode()
    headers, query = signed(source, raw, headers={"webhook-id": delivery}) if sign else ({}, {})
    return {"data": raw, "headers": {"Content-Type": content_type, **headers}, "query_string": query}


def _answer(response: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, sorted(response.headers.to_wsgi_list()), response.get_data()


def _blueprint_only(app: Any) -> Client:
    """A client of the same app without the fast path: ClientLimits straight over Flask."""
    assert isinstance(app.wsgi_app, ClientAddresses)
    limits = app.wsgi_app.app
    assert isinstance(limits, ClientLimits) and isinstance(limits.app, WebhookFastPath)
    return Client(ClientLimits(limits.app.app), use_cookies=False)


def test_a_new_delivery_and_its_repeat_are_answered_without_flask_as_the_blueprint_answers_them(app, client, seen):
    fast = [client.post("/webhooks/standard", **_request("standard", "msg-f1", "F-1")),
            client.post("/webhooks/standard", **_request("standard", "msg-f1", "F-1"))]
    assert seen == []  # Flask never saw them
    assert [r.status_code for r in fast] == [202, 200]
    assert fast[0].json == {"status": "accepted", "events": 1} and fast[1].json == {"status": "duplicate"}

    plain = _blueprint_only(app)
    slow = [plain.post("/webhooks/standard", **_request("standard", "msg-b1", "B-1")),
            plain.post("/webhooks/standard", **_request("standard", "msg-b1", "B-1"))]
    assert seen == ["/webhooks/standard"] * 2
    assert [_answer(r) for r in fast] == [_answer(r) for r in slow]  # status, every header, body
    assert ("X-Content-Type-Options", "nosniff") in fast[0].headers.to_wsgi_list()


ACCEPTED_FIXTURES = ("standard/ticket.solved", "zendesk/solved", "helpscout/convo.status__closed",
                     "intercom/conversation.admin.closed", "chatwoot/conversation_status_changed__resolved",
                     "jira/issue_updated__resolved", "shopify/orders_create", "woocommerce/order.created",
                     "freshdesk/resolved", "gorgias/closed")


def test_every_vendor_takes_the_fast_path_signed_in_headers_or_with_its_shared_token_in_the_query(post_event, seen):
    for name in ACCEPTED_FIXTURES:
        source, fixture_name = name.split("/")
        recorded = vendor_fixture(source, fixture_name)
        response = post_event(source, recorded.json(), headers=recorded.headers)
        assert response.status_code == 202, (name, response.status_code, response.data[:300])
    assert seen == []  # Freshdesk's and Gorgias's `?token=` too


def test_a_delivery_with_a_query_string_is_answered_as_the_blueprint_answers_it_and_a_wrong_token_by_the_blueprint(
        app, client, seen):
    recorded = vendor_fixture("gorgias", "closed")
    raw = recorded.body
    _, query = signed("gorgias", raw)
    assert set(query) == {"token"}, query  # Gorgias signs nothing: its shared token rides in the URL
    sent = {"data": raw, "headers": {"Content-Type": "application/json"}}
    fast = [client.post("/webhooks/gorgias", query_string={**query, "note": "1"}, **sent) for _ in range(2)]
    assert seen == [] and [r.status_code for r in fast] == [202, 200]
    other = json.loads(raw)
    other["ticket"]["id"] = "88214"  # another ticket: a new delivery for the blueprint-only client
    plain = _blueprint_only(app)
    slow = [plain.post("/webhooks/gorgias", query_string={**query, "note": "1"},
                       **{**sent, "data": json.dumps(other).encode()}) for _ in range(2)]
    assert seen == ["/webhooks/gorgias"] * 2
    assert [_answer(r) for r in fast] == [_answer(r) for r in slow]  # status, every header, body

    wrong = client.post("/webhooks/gorgias", query_string={"token": "not-the-secret"}, **sent)
    assert wrong.status_code == 401 and seen[-1] == "/webhooks/gorgias" and len(seen) == 3


@pytest.mark.parametrize(("case", "code"), [
    ("unknown source", 404), ("bad signature", 401), ("unsigned", 401), ("media type", 415), ("not json", 400),
    ("json of another shape", 422), ("ignored", 200), ("trailing slash", 404),
    ("GET", 405), ("too large", 413),
])
def test_whatever_is_in_doubt_is_left_to_the_blueprint_which_answers_as_before(client, seen, case, code):
    path, kwargs = "/webhooks/standard", _request("standard", f"msg-{case}", f"D-{case}")
    if case == "unknown source":
        path = "/webhooks/nobody"
    elif case == "bad signature":
        kwargs["headers"]["webhook-signature"] = "v1,AAAA"
    elif case == "unsigned":
        kwargs = _request("standard", "msg-u", "U-1", sign=False)
    elif case == "media type":
        kwargs["headers"]["Content-Type"] = "text/plain"
    elif case == "not json":
        kwargs = _request("standard", "msg-nj", "N-1", body=b"{not json")
    elif case == "json of another shape":
        kwargs = _request("standard", "msg-shape", "S-1", body=json.dumps({"type": "ticket.solved"}).encode())
    elif case == "ignored":
        kwargs = _request("standard", "msg-ign", "I-1", body=json.dumps(
            {**solved_event(ticket="I-1"), "type": "ticket.merged"}).encode())
    elif case == "trailing slash":
        path += "/"
    elif case == "too large":
        kwargs = _request("standard", "msg-big", "L-1", body=b" " * MAX_BODY + b"{}")
    response = client.get(path) if case == "GET" else client.post(path, **kwargs)
    assert response.status_code == code, (case, response.data[:300])
    assert seen == [path]


def test_a_storage_outage_met_by_the_fast_path_is_answered_by_the_blueprint_without_a_second_append(
        settings, seen):
    down = Store.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    calls: list[str] = []
    append = down.append_delivery

    def counted(*args: Any, **kwargs: Any) -> int:
        calls.append(args[0])
        return append(*args, **kwargs)

    down.append_delivery = counted  # type: ignore[method-assign]
    app = create_app(settings, down, enqueue=lambda task, *args: None)
    handled: list[str] = []
    app.before_request(lambda: handled.append("flask"))
    response = app.test_client().post("/webhooks/standard", **_request("standard", "msg-down", "O-1"))
    assert response.status_code == 503 and response.headers["Retry-After"], response.data[:300]
    assert response.json["message"] == "Storage is unreachable; nothing was stored. Retry later."
    assert len(calls) == 1, calls  # the fast path's; the blueprint raised the outage it handed over
    assert handled == ["flask"]
