"""Helpdesk write-back against a real local HTTP server standing in for each vendor's API (SPEC.md §11).

Each helpdesk gets the calls its documentation names (method, path, auth, body shape, checked against the
vendor's documented examples in tests/fixtures/writeback), and a write-back never loses or doubles a note:
a helpdesk down, rate-limited or refusing is a retry or a refusal, and a retry after the note was written
writes the tags only.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request

from tracker.backoff import retry_after_s as parse_retry_after
from tracker.config import HelpdeskApi, Settings
from tracker.notify.events import Notice, emit
from tracker.notify.targets import DispatchContext
from tracker.store import Store
from tracker.writeback import CLIENTS, writeback_target, writeback_targets
from tracker.writeback.base import WritebackTarget, note_for
from tracker.writeback.helpscout import HelpScout

FIXTURES = Path(__file__).parent / "fixtures" / "writeback"
CUSTOMER = "kari@example.no"
HELPSCOUT_TOKEN = "469e6c4dd73b4fd4a0d3a4ba0e4d5b8f"  # the documented token response's


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Vendor:
    """One helpdesk as its documentation describes it: where notes and tags go, how calls authenticate."""

    source: str
    user: str
    token: str
    ticket: str
    note: tuple[str, str]  # method, path
    note_reply: tuple[int, Any]  # status, documented body (None: empty)
    tag_reads: list[tuple[str, str, Any]]  # method, path, documented body: what the tag call reads first
    tag_write: tuple[str, str, int]  # method, path, status
    tag_reply: Any  # the tag write's documented answer (None: empty)
    tag_remove: tuple[str, str] | None  # method, path of removing stale tags; None: the write replaces them
    auth: str  # Authorization of every API call
    check_note: Callable[[Any], None]
    tags_sent: Callable[[Any], list[str]]  # the tags a tag write's body names
    rate_limit_header: str = "Retry-After"
    refused_text: str = ""
    refused_body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _zendesk_note(body: Any) -> None:
    documented = fixture("zendesk_update_ticket_comment.request.json")
    assert body.keys() == documented.keys() and body["ticket"].keys() == documented["ticket"].keys()
    comment = body["ticket"]["comment"]
    # HTML goes as html_body instead of body (Create Ticket: "HTML data is stripped out of the request if you use
    # body"), never both.
    assert comment["public"] is False and comment["html_body"].startswith("<p>")
    assert set(comment) == {"html_body", "public"}


def _freshdesk_note(body: Any) -> None:
    assert set(body) <= set(fixture("freshdesk_create_note.request.json"))
    assert body["private"] is True and body["body"].startswith("<p>")


def _helpscout_note(body: Any) -> None:
    assert set(body) <= set(fixture("helpscout_create_note.request.json")) and body["text"].startswith("<p>")


def _gorgias_note(body: Any) -> None:
    documented = fixture("gorgias_create_message_internal_note.request.json")
    assert set(body) == set(documented)
    assert {k: body[k] for k in ("channel", "via", "from_agent", "sender")} == \
        {"channel": "internal-note", "via": "api", "from_agent": True, "sender": {"email": "agent@acme.test"}}
    assert body["body_text"] and body["body_html"].startswith("<p>")


VENDORS = {
    "zendesk": Vendor(
        source="zendesk", user="agent@acme.test", token="zd-token", ticket="35436",
        note=("PUT", "/api/v2/tickets/35436.json"), note_reply=(200, fixture("zendesk_update_ticket.response.json")),
        tag_reads=[], tag_write=("PUT", "/api/v2/tickets/35436/tags.json", 200),
        tag_reply=fixture("zendesk_add_tags.response.json"),
        tag_remove=("DELETE", "/api/v2/tickets/35436/tags.json"),
        auth=basic("agent@acme.test/token", "zd-token"), check_note=_zendesk_note,
        tags_sent=lambda body: body["tags"], refused_body=fixture("zendesk_401.response.json"),
        refused_text="Couldn't authenticate you"),
    "freshdesk": Vendor(
        source="freshdesk", user="", token="fd-key", ticket="20",
        note=("POST", "/api/v2/tickets/20/notes"), note_reply=(201, fixture("freshdesk_create_note.response.json")),
        tag_reads=[("GET", "/api/v2/tickets/20", fixture("freshdesk_view_ticket.response.json"))],
        tag_write=("PUT", "/api/v2/tickets/20", 200), tag_remove=None,
        tag_reply=fixture("freshdesk_view_ticket.response.json"),
        auth=basic("fd-key", "X"), check_note=_freshdesk_note, tags_sent=lambda body: body["tags"],
        refused_body=fixture("freshdesk_401.response.json"),
        refused_text="You have to be logged in to perform this action."),
    "helpscout": Vendor(
        source="helpscout", user="app-id", token="app-secret", ticket="123",
        note=("POST", "/v2/conversations/123/notes"), note_reply=(201, None),
        tag_reads=[("GET", "/v2/conversations/123", fixture("helpscout_get_conversation.response.json"))],
        tag_write=("PUT", "/v2/conversations/123/tags", 204), tag_remove=None, tag_reply=None,
        auth=f"Bearer {HELPSCOUT_TOKEN}", check_note=_helpscout_note, tags_sent=lambda body: body["tags"],
        rate_limit_header="X-RateLimit-Retry-After", refused_body={"message": "Unauthorized"},
        refused_text="Unauthorized"),
    "gorgias": Vendor(
        source="gorgias", user="agent@acme.test", token="gg-key", ticket="123",
        note=("POST", "/api/tickets/123/messages"), note_reply=(201, fixture("gorgias_create_message.response.json")),
        tag_reads=[], tag_write=("POST", "/api/tickets/123/tags", 201), tag_reply=None,
        tag_remove=("DELETE", "/api/tickets/123/tags"),
        auth=basic("agent@acme.test", "gg-key"), check_note=_gorgias_note, tags_sent=lambda body: body["names"],
        refused_body={"error": {"msg": "Authentication failed"}}, refused_text="Authentication failed"),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture(autouse=True)
def _no_cached_helpscout_token() -> Iterator[None]:
    # The access token is cached per process by API URL; every test's local server is a new Help Scout.
    HelpScout._tokens.clear()
    yield
    HelpScout._tokens.clear()


def serve(httpserver: HTTPServer, v: Vendor) -> None:
    """Answer the vendor's documented calls as its documentation shows."""
    if v.source == "helpscout":
        httpserver.expect_request("/v2/oauth2/token", method="POST").respond_with_json(
            fixture("helpscout_token.response.json"))
    status, body = v.note_reply
    handler = httpserver.expect_request(v.note[1], method=v.note[0])
    if body is None:
        handler.respond_with_data("", status=status, headers={"Resource-ID": "567"})
    else:
        handler.respond_with_json(body, status=status)
    for method, path, read in v.tag_reads:
        httpserver.expect_request(path, method=method).respond_with_json(read)
    method, path, status = v.tag_write
    if v.tag_reply is None:
        httpserver.expect_request(path, method=method).respond_with_data("", status=status)
    else:
        httpserver.expect_request(path, method=method).respond_with_json(v.tag_reply, status=status)
    if v.tag_remove:
        httpserver.expect_request(v.tag_remove[1], method=v.tag_remove[0]).respond_with_data("", status=200)


def target(httpserver: HTTPServer, v: Vendor) -> WritebackTarget:
    return writeback_target(v.source, HelpdeskApi(httpserver.url_for("").rstrip("/"), v.user, v.token))


def context(store: Store, settings: Settings) -> DispatchContext:
    return DispatchContext(store, settings, int(time.time() * 1000), requests.Session())


def answer_notice(v: Vendor, rating: int, satisfied: bool, seq: int = 1, previous: int | None = None) -> Notice:
    kind = "survey.changed" if previous is not None else "survey.answered"
    answer: dict[str, Any] = {"rating": rating, "scale": "csat5", "label": None, "satisfied": satisfied,
                              "comment": "Took three emails <b>to</b> get an answer", "reason": "slow",
                              "answered_at": "2026-11-30T12:00:00.000Z"}
    if previous is not None:
        answer["previous_rating"] = previous
    survey = {"id": "s-1", "scale": "csat5", "ticket": v.ticket, "source": v.source, "ticket_key": f"{v.source}:1",
              "agent": None, "team": None, "brand": None, "subject": "Broken", "sent_at": "2026-11-29T12:00:00.000Z"}
    return Notice(id=f"{kind}:3:{seq}", type=kind, customer=CUSTOMER, at_ms=1_764_504_000_000,
                  data={"survey": survey, "answer": answer, "customer": {"email": CUSTOMER, "name": "Kari"}})


def calls(httpserver: HTTPServer, method: str, path: str) -> list[Request]:
    return [req for req, _ in httpserver.log if req.method == method and req.path == path]


def ok_calls(httpserver: HTTPServer, method: str, path: str) -> list[Request]:
    return [req for req, resp in httpserver.log if req.method == method and req.path == path and resp.status_code < 300]


def test_every_vendor_of_this_part_is_registered() -> None:
    assert {"zendesk", "freshdesk", "helpscout", "gorgias"} <= set(CLIENTS)


def test_an_answer_writes_one_internal_note_and_its_tags_with_the_documented_calls(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    serve(httpserver, vendor)
    outcome = target(httpserver, vendor).deliver(answer_notice(vendor, 2, False), context(store, settings))

    assert outcome.status == "delivered", outcome
    [note] = calls(httpserver, *vendor.note)
    vendor.check_note(note.get_json())
    assert note.headers["Authorization"] == vendor.auth
    shown = json.dumps(note.get_json())
    assert "2 (Dissatisfied)" in shown and "&lt;b&gt;to&lt;/b&gt;" in shown and "slow" in shown
    [tags] = calls(httpserver, *vendor.tag_write[:2])
    assert tags.headers["Authorization"] == vendor.auth
    kept = [t["tag"] for t in vendor.tag_reads[0][2]["tags"]] if vendor.source == "helpscout" else \
        vendor.tag_reads[0][2]["tags"] if vendor.tag_reads else []
    assert vendor.tags_sent(tags.get_json()) == [*kept, "csat-2", "csat-unsatisfied"]
    if vendor.source == "freshdesk":
        assert set(tags.get_json()) <= set(fixture("freshdesk_update_ticket.request.json"))
    for req, _ in httpserver.log:
        if req.path != "/v2/oauth2/token":
            assert req.headers["Authorization"] == vendor.auth, req.path
    assert not calls(httpserver, *vendor.tag_remove) if vendor.tag_remove else True
    if vendor.source == "helpscout":  # one token for both calls, asked for as a form, as documented
        [token] = calls(httpserver, "POST", "/v2/oauth2/token")
        assert token.mimetype == "application/x-www-form-urlencoded"
        assert token.form.to_dict() == {"grant_type": "client_credentials", "client_id": "app-id",
                                        "client_secret": "app-secret"}
        assert token.form.keys() == fixture("helpscout_token.request.json").keys()


def test_a_helpdesk_down_then_back_gets_exactly_one_note(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    httpserver.expect_oneshot_request(vendor.note[1], method=vendor.note[0]).respond_with_data("down", status=503)
    serve(httpserver, vendor)
    writer, notice = target(httpserver, vendor), answer_notice(vendor, 4, True)

    first = writer.deliver(notice, context(store, settings))
    assert (first.status, first.code) == ("retry", 503)
    assert writer.deliver(notice, context(store, settings)).status == "delivered"
    assert len(ok_calls(httpserver, *vendor.note)) == 1
    assert len(calls(httpserver, *vendor.note)) == 2


def test_a_rate_limited_helpdesk_asks_for_a_retry_after_its_delay(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    httpserver.expect_oneshot_request(vendor.note[1], method=vendor.note[0]).respond_with_data(
        "slow down", status=429, headers={vendor.rate_limit_header: "17"})
    serve(httpserver, vendor)

    outcome = target(httpserver, vendor).deliver(answer_notice(vendor, 4, True), context(store, settings))
    assert (outcome.status, outcome.code, outcome.retry_after_s) == ("retry", 429, 17.0)
    assert not calls(httpserver, *vendor.tag_write[:2])


def test_a_refused_credential_is_recorded_as_refused_with_the_vendors_words_and_not_retried(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    httpserver.expect_request(vendor.note[1], method=vendor.note[0]).respond_with_json(vendor.refused_body,
                                                                                       status=401)
    serve(httpserver, vendor)

    outcome = target(httpserver, vendor).deliver(answer_notice(vendor, 4, True), context(store, settings))
    assert (outcome.status, outcome.code) == ("refused", 401)
    assert vendor.refused_text in outcome.detail
    # Help Scout's access token may have been revoked: one new token and one more try, never a storm.
    assert len(calls(httpserver, *vendor.note)) == (2 if vendor.source == "helpscout" else 1)
    if vendor.source == "helpscout":
        assert len(calls(httpserver, "POST", "/v2/oauth2/token")) == 2


def test_a_zendesk_update_that_collides_with_another_is_tried_again_later(
        httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    v = VENDORS["zendesk"]
    httpserver.expect_oneshot_request(v.note[1], method=v.note[0]).respond_with_json(
        {"error": "Conflict", "description": "Ticket was updated by another request"}, status=409)
    serve(httpserver, v)
    writer, notice = target(httpserver, v), answer_notice(v, 4, True)

    first = writer.deliver(notice, context(store, settings))
    assert (first.status, first.code) == ("retry", 409)
    assert writer.deliver(notice, context(store, settings)).status == "delivered"
    assert len(ok_calls(httpserver, *v.note)) == 1


def test_a_changed_answer_writes_one_more_note_and_drops_the_tags_it_made_untrue(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    serve(httpserver, vendor)
    writer = target(httpserver, vendor)
    assert writer.deliver(answer_notice(vendor, 2, False), context(store, settings)).status == "delivered"
    changed = answer_notice(vendor, 5, True, seq=2, previous=2)
    assert writer.deliver(changed, context(store, settings)).status == "delivered"

    notes = calls(httpserver, *vendor.note)
    assert len(notes) == 2
    assert "changed from 2 (Dissatisfied)" in json.dumps(notes[1].get_json())
    last_tags = vendor.tags_sent(calls(httpserver, *vendor.tag_write[:2])[-1].get_json())
    assert "csat-5" in last_tags
    if vendor.tag_remove:
        [removed] = calls(httpserver, *vendor.tag_remove)
        assert sorted(vendor.tags_sent(removed.get_json())) == ["csat-2", "csat-unsatisfied"]
        assert removed.headers["Authorization"] == vendor.auth
    else:  # the write replaces the list: the stale tags are left out of it
        assert "csat-2" not in last_tags and "csat-unsatisfied" not in last_tags


def test_tags_failing_after_the_note_are_retried_without_writing_the_note_again(
        vendor: Vendor, httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    method, path, _ = vendor.tag_write
    httpserver.expect_oneshot_request(path, method=method).respond_with_data("down", status=503)
    serve(httpserver, vendor)
    writer, notice = target(httpserver, vendor), answer_notice(vendor, 1, False)

    first = writer.deliver(notice, context(store, settings))
    assert (first.status, first.code) == ("retry", 503) and first.detail.startswith("note written")
    assert writer.deliver(notice, context(store, settings)).status == "delivered"
    assert len(calls(httpserver, *vendor.note)) == 1
    # Sent again later (an operator's redelivery), a notice written whole writes nothing.
    assert writer.deliver(notice, context(store, settings)).status == "skipped"
    assert len(calls(httpserver, *vendor.note)) == 1


@pytest.mark.parametrize("source", ["freshdesk", "helpscout"])
@pytest.mark.parametrize("tags", [5, "vip", {"tag": "vip"}, [1, None, {"no": "tag"}], ["vip", 7], [{"tag": ""}]])
def test_a_tag_read_of_an_unexpected_shape_writes_no_tags_and_is_tried_again_keeping_the_tickets_own(
        httpserver: HTTPServer, store: Store, settings: Settings, source: str, tags: Any) -> None:
    # The tag write replaces the whole list: written from a read it could not understand, it would drop every tag.
    v = VENDORS[source]
    method, path, documented = v.tag_reads[0]
    httpserver.expect_oneshot_request(path, method=method).respond_with_json({**documented, "tags": tags})
    serve(httpserver, v)
    writer, notice = target(httpserver, v), answer_notice(v, 4, True)

    outcome = writer.deliver(notice, context(store, settings))
    assert outcome.status == "retry" and "the tags are left as they are" in outcome.detail, outcome
    assert calls(httpserver, *v.tag_write[:2]) == []
    assert writer.deliver(notice, context(store, settings)).status == "delivered"
    [written] = calls(httpserver, *v.tag_write[:2])
    kept = [t["tag"] for t in documented["tags"]] if source == "helpscout" else documented["tags"]
    assert v.tags_sent(written.get_json()) == [*kept, "csat-4"]
    assert len(calls(httpserver, *v.note)) == 1


@pytest.mark.parametrize("source", ["freshdesk", "helpscout"])
@pytest.mark.parametrize("tags", [None, "absent", []])
def test_a_ticket_without_tags_gets_ours(
        httpserver: HTTPServer, store: Store, settings: Settings, source: str, tags: Any) -> None:
    v = VENDORS[source]
    method, path, documented = v.tag_reads[0]
    read = {**documented, "tags": tags}
    if tags == "absent":
        del read["tags"]
    httpserver.expect_oneshot_request(path, method=method).respond_with_json(read)
    serve(httpserver, v)

    assert target(httpserver, v).deliver(answer_notice(v, 4, True), context(store, settings)).status == "delivered"
    [written] = calls(httpserver, *v.tag_write[:2])
    assert v.tags_sent(written.get_json()) == ["csat-4"]


def _merged_helpscout(httpserver: HTTPServer, location: str, note_status: int = 404) -> None:
    """Help Scout after conversation 123 was merged: a write to it answers 404 (or 301), its read 301 to location,
    as the Mailbox API documents (Get Conversation; Delete Conversation's "Moved or merged conversations")."""
    httpserver.expect_request("/v2/oauth2/token", method="POST").respond_with_json(
        fixture("helpscout_token.response.json"))
    httpserver.expect_request("/v2/conversations/123/notes", method="POST").respond_with_json(
        {"message": "Not Found"}, status=note_status)
    httpserver.expect_request("/v2/conversations/123", method="GET").respond_with_data(
        "", status=301, headers={"Location": location})
    httpserver.expect_request("/v2/conversations/123/tags", method="PUT").respond_with_data("", status=404)


@pytest.mark.parametrize("note_status", [404, 301])
def test_a_merged_help_scout_conversation_gets_the_note_and_tags_where_it_went(
        httpserver: HTTPServer, store: Store, settings: Settings, note_status: int) -> None:
    v = VENDORS["helpscout"]
    _merged_helpscout(httpserver, httpserver.url_for("/v2/conversations/456"), note_status)
    httpserver.expect_request("/v2/conversations/456/notes", method="POST").respond_with_data(
        "", status=201, headers={"Resource-ID": "568"})
    httpserver.expect_request("/v2/conversations/456", method="GET").respond_with_json(
        fixture("helpscout_get_conversation.response.json"))
    httpserver.expect_request("/v2/conversations/456/tags", method="PUT").respond_with_data("", status=204)

    outcome = target(httpserver, v).deliver(answer_notice(v, 2, False), context(store, settings))
    assert outcome.status == "delivered", outcome
    [note] = ok_calls(httpserver, "POST", "/v2/conversations/456/notes")
    v.check_note(note.get_json())
    [tags] = ok_calls(httpserver, "PUT", "/v2/conversations/456/tags")
    kept = [t["tag"] for t in fixture("helpscout_get_conversation.response.json")["tags"]]
    assert tags.get_json()["tags"] == [*kept, "csat-2", "csat-unsatisfied"]
    assert not calls(httpserver, "PUT", "/v2/conversations/123/tags")
    assert len(calls(httpserver, "POST", "/v2/conversations/123/notes")) == 1


@pytest.mark.parametrize("location", ["https://elsewhere.example/v2/conversations/456", "/v2/mailboxes/9"])
def test_a_help_scout_move_off_its_own_api_or_conversations_is_not_followed(
        httpserver: HTTPServer, store: Store, settings: Settings, location: str) -> None:
    v = VENDORS["helpscout"]
    _merged_helpscout(httpserver, location)

    outcome = target(httpserver, v).deliver(answer_notice(v, 2, False), context(store, settings))
    assert (outcome.status, outcome.code) == ("refused", 301), outcome
    assert f"redirected (HTTP 301) to {location}" in outcome.detail
    assert [(r.method, r.path) for r, _ in httpserver.log if "oauth2" not in r.path] == [
        ("POST", "/v2/conversations/123/notes"), ("GET", "/v2/conversations/123")]


def test_a_help_scout_conversation_merged_over_and_over_is_followed_only_so_far(
        httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    v = VENDORS["helpscout"]
    _merged_helpscout(httpserver, httpserver.url_for("/v2/conversations/1000"))
    for n in range(1000, 1010):  # each merged into the next
        httpserver.expect_request(f"/v2/conversations/{n}", method="GET").respond_with_data(
            "", status=301, headers={"Location": httpserver.url_for(f"/v2/conversations/{n + 1}")})

    outcome = target(httpserver, v).deliver(answer_notice(v, 2, False), context(store, settings))
    assert (outcome.status, outcome.code) == ("refused", 301) and "merged more than 3 times" in outcome.detail
    assert len([r for r, _ in httpserver.log if r.method == "GET"]) == 4
    assert not [r for r, _ in httpserver.log if r.method == "POST" and r.path != "/v2/conversations/123/notes"
                and "oauth2" not in r.path]


def test_a_help_scout_note_refused_404_on_a_conversation_that_is_gone_stays_refused(
        httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    v = VENDORS["helpscout"]
    httpserver.expect_request("/v2/oauth2/token", method="POST").respond_with_json(
        fixture("helpscout_token.response.json"))
    httpserver.expect_request("/v2/conversations/123/notes", method="POST").respond_with_json(
        {"message": "Not Found"}, status=404)
    httpserver.expect_request("/v2/conversations/123", method="GET").respond_with_json(
        {"message": "Not Found"}, status=404)

    outcome = target(httpserver, v).deliver(answer_notice(v, 2, False), context(store, settings))
    assert (outcome.status, outcome.code) == ("refused", 404), outcome
    assert "Not Found" in outcome.detail


def test_a_new_ticket_of_a_customer_at_risk_gets_a_note_and_no_tags(
        httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    v = VENDORS["zendesk"]
    serve(httpserver, v)
    notice = Notice(id="ticket.at_risk:zendesk:35436", type="ticket.at_risk", customer=CUSTOMER, at_ms=1,
                    data={"ticket": {"id": "35436", "source": "zendesk", "key": "zendesk:35436", "subject": "Again"},
                          "customer": {"email": CUSTOMER, "name": "Kari", "score": 20.0}})
    writer = target(httpserver, v)
    assert writer.wants(notice)
    assert writer.deliver(notice, context(store, settings)).status == "delivered"
    [note] = calls(httpserver, *v.note)
    assert "Customer at risk" in note.get_json()["ticket"]["comment"]["html_body"]
    assert not calls(httpserver, *v.tag_write[:2])


def test_a_target_wants_only_its_own_helpdesks_answers_and_tickets(httpserver: HTTPServer) -> None:
    zendesk, freshdesk = (target(httpserver, VENDORS[s]) for s in ("zendesk", "freshdesk"))
    notice = answer_notice(VENDORS["zendesk"], 3, False)
    assert zendesk.name == "writeback:zendesk" and zendesk.wants(notice) and not freshdesk.wants(notice)
    sent = Notice(id="survey.sent:3:1", type="survey.sent", customer=CUSTOMER, at_ms=1, data=notice.data)
    assert not zendesk.wants(sent)


def test_writeback_targets_follow_the_settings_order(settings: Settings) -> None:
    from dataclasses import replace

    configured = replace(settings, writeback={"gorgias": HelpdeskApi("https://x.gorgias.com", "a@b.c", "k"),
                                              "zendesk": HelpdeskApi("https://x.zendesk.com", "a@b.c", "t")})
    assert [t.name for t in writeback_targets(configured)] == ["writeback:gorgias", "writeback:zendesk"]


def test_the_note_tells_the_customers_running_score_and_risk_and_links_the_dashboard(
        scored: None, store: Store, settings: Settings) -> None:
    v = VENDORS["zendesk"]
    notice = answer_notice(v, 1, False)
    notice = Notice(id=notice.id, type=notice.type, customer="bjorn@example.no", at_ms=notice.at_ms,
                    data={**notice.data, "customer": {"email": "bjorn@example.no", "name": "Bjørn"}})
    note = note_for(notice, context(store, settings))

    assert note is not None and note.ticket == v.ticket
    assert "Rating: 1 (Very dissatisfied) on csat5" in note.text
    assert "Running score: 0 (at risk: below 50)" in note.text
    assert f"Dashboard: {settings.public_url}/dashboard/customers/bjorn@example.no" in note.text
    assert note.tags == ("csat-1", "csat-unsatisfied")


def test_retry_after_may_be_an_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after(" 5 ") == 5.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_retry_after_no_clock_reaches_is_unreadable_and_a_long_one_is_a_day() -> None:
    assert [parse_retry_after(v) for v in ("inf", "-inf", "nan", "1e400", "Infinity")] == [None] * 5
    assert parse_retry_after("99999999999") == parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == 86400.0
    assert parse_retry_after("-30") == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 -0000", now_s=40) == 60.0  # a zone left unsaid is UTC


@pytest.mark.parametrize("asked", ["inf", "1e400", "nan", "99999999999"])
def test_a_helpdesk_asking_for_a_wait_no_clock_reaches_is_retried_within_a_day_through_dispatch(
        httpserver: HTTPServer, store: Store, settings: Settings, asked: str) -> None:
    from tracker.notify.dispatch import dispatch

    v = VENDORS["zendesk"]
    httpserver.expect_oneshot_request(v.note[1], method=v.note[0]).respond_with_data(
        "slow down", status=429, headers={"Retry-After": asked})
    serve(httpserver, v)
    notice = answer_notice(v, 2, False)
    assert emit(store, notice.type, notice.customer, notice.data, notice.id, notice.at_ms)
    writer = target(httpserver, v)
    now_ms = int(time.time() * 1000)

    assert dispatch(store, settings, "test", now_ms, targets=[writer]).retry == 1
    next_at = store.list_deliveries(1, lambda r: True)[0]["next_at"]
    assert now_ms < next_at <= now_ms + 86_400_000
    assert dispatch(store, settings, "test", next_at, targets=[writer]).delivered == 1
    assert len(ok_calls(httpserver, *v.note)) == 1


def test_through_dispatch_an_emitted_answer_becomes_one_note(
        httpserver: HTTPServer, store: Store, settings: Settings) -> None:
    from tracker.notify.dispatch import dispatch

    v = VENDORS["zendesk"]
    serve(httpserver, v)
    notice = answer_notice(v, 2, False)
    assert emit(store, notice.type, notice.customer, notice.data, notice.id, notice.at_ms)
    writer = target(httpserver, v)
    now_ms = int(time.time() * 1000)

    report = dispatch(store, settings, "test", now_ms, targets=[writer])
    assert report.delivered == 1, report
    again = dispatch(store, settings, "test", now_ms + 1000, targets=[writer])
    assert again.delivered == 0
    assert len(calls(httpserver, *v.note)) == 1

