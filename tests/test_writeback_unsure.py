"""A note whose answer was lost is looked for on the ticket before it is written again, on every helpdesk.

A helpdesk may write a note and its answer never arrive: a timeout waiting for it, a connection lost after the request
went, a gateway's 504. Tried again blindly, the ticket gets the note twice. So such a try leaves its step `sending`,
and the next reads the ticket's newest notes (each vendor's documented list call, answered here with the vendor's
documented example holding the note as the helpdesk keeps it) for the note's reference, and writes only when it is
not there. A try the helpdesk surely refused (a 503, a 429, a refused connection) is tried again without looking, and
a look the helpdesk cannot answer writes the note rather than hold it back for ever.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import test_writeback as wb
from tests import test_writeback_more as wbm
from tests.support import wait_until
from tracker.config import load_settings
from tracker.notify.events import Notice
from tracker.notify.targets import DispatchContext, Outcome
from tracker.store import Store
from tracker.writeback import base, writeback_targets
from tracker.writeback.base import note_reference
from tracker.writeback.helpscout import HelpScout

FIXTURES = Path(__file__).parent / "fixtures" / "writeback"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Listing:
    """A vendor's documented read of a ticket's notes, and where the note we wrote shows in its answer."""

    path: str  # the list call's path (GET)
    fixture: str  # the vendor's documented example answer
    sent_text: Callable[[Any], str]  # the note's text in the body we sent, as the helpdesk keeps it
    holding: Callable[[Any, str], Any]  # the documented answer with its newest note's text replaced by ours


def _zendesk(body: Any, text: str) -> Any:
    # Sent as html_body: Zendesk keeps it, and its text without the markup as body and plain_body.
    plain = re.sub(r"<[^>]+>", "", text)
    body["comments"][0].update(html_body=text, body=plain, plain_body=plain, public=False)
    return body


def _freshdesk(body: Any, text: str) -> Any:
    body[0].update(body=text, body_text=text, private=True)
    return body


def _gorgias(body: Any, text: str) -> Any:
    body["data"][0].update(body_html=text, stripped_html=text)
    return body


def _jira(body: Any, text: str) -> Any:
    body["comments"][0]["body"] = text
    return body


def _chatwoot(body: Any, text: str) -> Any:
    body["payload"][0].update(content=text, private=True)
    return body


def _helpscout(body: Any, text: str) -> Any:
    body["_embedded"]["threads"][0].update(body=text, type="note")
    return body


def _intercom(body: Any, text: str) -> Any:
    body["conversation_parts"]["conversation_parts"][0]["body"] = text
    return body


LISTINGS: dict[str, Listing] = {
    "zendesk": Listing("/api/v2/tickets/35436/comments", "zendesk_list_comments.response.json",
                       lambda sent: sent["ticket"]["comment"]["html_body"], _zendesk),
    "freshdesk": Listing("/api/v2/tickets/20/conversations", "freshdesk_list_conversations.response.json",
                         lambda sent: sent["body"], _freshdesk),
    "gorgias": Listing("/api/messages", "gorgias_list_messages.response.json", lambda sent: sent["body_html"],
                       _gorgias),
    "jira": Listing(f"/rest/api/2/issue/{wbm.TICKETS['jira']}/comment", "jira_get_comments.response.json",
                    lambda sent: sent["body"], _jira),
    "chatwoot": Listing(f"/api/v1/accounts/{wbm.ACCOUNT_ID}/conversations/{wbm.TICKETS['chatwoot']}/messages",
                        "chatwoot_list_messages.response.json", lambda sent: sent["content"], _chatwoot),
    "helpscout": Listing("/v2/conversations/123/threads", "helpscout_list_threads.response.json",
                         lambda sent: sent["text"], _helpscout),
    "intercom": Listing(f"/conversations/{wbm.TICKETS['intercom']}", "intercom_retrieve_conversation.response.json",
                        lambda sent: sent["body"], _intercom),
}


@pytest.fixture(autouse=True)
def _no_cached_helpscout_token() -> Iterator[None]:
    # Help Scout's access token is cached per process by API URL, and every test's local server is a new Help Scout.
    HelpScout._tokens.clear()
    yield
    HelpScout._tokens.clear()


@dataclass
class Desk:
    """One vendor's stand-in (from the write-back tests) and a deliver through its write-back target."""

    source: str
    server: HTTPServer
    note: tuple[str, str]  # method, path
    deliver: Callable[[Notice], Outcome]
    notice: Notice
    serve: Callable[[], None]

    def calls(self, method: str, path: str) -> list[tuple[Request, Response]]:
        return [(req, resp) for req, resp in self.server.log if req.method == method and req.path == path]


@pytest.fixture(params=sorted(LISTINGS))
def desk(request: pytest.FixtureRequest, httpserver: HTTPServer, store: Store, env: dict[str, str]) -> Desk:
    source = request.param
    now = int(time.time() * 1000)
    if source in wb.VENDORS:
        v = wb.VENDORS[source]
        writer = wb.target(httpserver, v)
        settings = load_settings(env)
        return Desk(source, httpserver, v.note,
                    lambda notice: writer.deliver(notice, DispatchContext(store, settings, now, requests.Session())),
                    wb.answer_notice(v, 2, False), lambda: wb.serve(httpserver, v))
    helpdesk = wbm.Helpdesk(source, httpserver)
    settings = load_settings({**env, **helpdesk.env()})
    [target] = writeback_targets(settings)
    return Desk(source, httpserver, ("POST", helpdesk.note_path),
                lambda notice: target.deliver(notice, DispatchContext(store, settings, now, requests.Session())),
                wbm.answer_notice(source, 2), helpdesk.serve)


def _json(body: Any) -> Response:
    return Response(json.dumps(body), 200, content_type="application/json")


def _written_then(server: HTTPServer, note: tuple[str, str], answer: Callable[[], Response]) -> list[Any]:
    """Make the helpdesk take the first note call whole and answer it with answer(); return the bodies it took."""
    taken: list[Any] = []

    def take(request: Request) -> Response:
        taken.append(request.get_json())
        return answer()

    server.expect_oneshot_request(note[1], method=note[0]).respond_with_handler(take)
    return taken


def test_a_note_written_whose_answer_was_a_504_is_found_on_the_ticket_and_not_written_again(desk: Desk) -> None:
    listing = LISTINGS[desk.source]
    taken = _written_then(desk.server, desk.note, lambda: Response("upstream timed out", 504))
    desk.server.expect_oneshot_request(listing.path, method="GET").respond_with_handler(
        lambda _: _json(listing.holding(fixture(listing.fixture), listing.sent_text(taken[0]))))
    desk.serve()

    first = desk.deliver(desk.notice)
    assert (first.status, first.code, first.unsure) == ("retry", 504, True)
    second = desk.deliver(desk.notice)
    assert second.status == "delivered", second
    assert len(desk.calls(*desk.note)) == 1  # the one the helpdesk took: never a second
    assert len(desk.calls("GET", listing.path)) == 1
    assert desk.deliver(desk.notice).status == "skipped"


def test_a_note_the_helpdesk_did_not_keep_is_looked_for_and_then_written(desk: Desk) -> None:
    listing = LISTINGS[desk.source]
    _written_then(desk.server, desk.note, lambda: Response("upstream timed out", 504))
    desk.server.expect_oneshot_request(listing.path, method="GET").respond_with_json(fixture(listing.fixture))
    desk.serve()

    assert desk.deliver(desk.notice).status == "retry"
    assert desk.deliver(desk.notice).status == "delivered"
    notes = desk.calls(*desk.note)
    assert [resp.status_code < 300 for _, resp in notes] == [False, True]
    assert len(desk.calls("GET", listing.path)) == 1


def test_a_look_the_helpdesk_cannot_answer_writes_the_note_rather_than_hold_it(desk: Desk) -> None:
    listing = LISTINGS[desk.source]
    _written_then(desk.server, desk.note, lambda: Response("upstream timed out", 504))
    desk.server.expect_oneshot_request(listing.path, method="GET").respond_with_data("no such route", status=404)
    desk.serve()

    assert desk.deliver(desk.notice).status == "retry"
    assert desk.deliver(desk.notice).status == "delivered"
    assert [resp.status_code < 300 for _, resp in desk.calls(*desk.note)] == [False, True]


@pytest.mark.parametrize("answer", [{"unexpected": True}, ["a", "list"], "text"], ids=["object", "list", "string"])
def test_a_look_answered_in_another_shape_writes_the_note_and_never_raises(desk: Desk, answer: Any) -> None:
    listing = LISTINGS[desk.source]
    _written_then(desk.server, desk.note, lambda: Response("upstream timed out", 504))
    desk.server.expect_oneshot_request(listing.path, method="GET").respond_with_json(answer)
    desk.serve()

    assert desk.deliver(desk.notice).status == "retry"
    assert desk.deliver(desk.notice).status == "delivered"
    assert [resp.status_code < 300 for _, resp in desk.calls(*desk.note)] == [False, True]


def test_a_note_whose_worker_died_mid_call_is_looked_for_before_it_is_written(desk: Desk, store: Store) -> None:
    listing = LISTINGS[desk.source]
    desk.server.expect_oneshot_request(listing.path, method="GET").respond_with_handler(
        lambda _: _json(listing.holding(fixture(listing.fixture), "note of another notice, Reference: " + "f" * 16)))
    desk.serve()
    # What a worker killed while the note's call was out leaves behind: the step begun, nothing after it.
    target = f"writeback:{desk.source}"
    store.mark_writeback_step(target, desk.notice.customer, desk.notice.id, base.SENDING)

    assert desk.deliver(desk.notice).status == "delivered"
    asked = [(req.method, req.path) for req, _ in desk.server.log]
    assert asked.index(("GET", listing.path)) < asked.index(desk.note)
    assert len(desk.calls(*desk.note)) == 1


def test_a_note_the_helpdesk_surely_refused_is_written_again_without_looking(desk: Desk) -> None:
    listing = LISTINGS[desk.source]
    desk.server.expect_oneshot_request(desk.note[1], method=desk.note[0]).respond_with_data("down", status=503)
    desk.serve()

    first = desk.deliver(desk.notice)
    assert (first.status, first.code, first.unsure) == ("retry", 503, False)
    assert desk.deliver(desk.notice).status == "delivered"
    asked = [(req.method, req.path) for req, _ in desk.server.log]
    second_note = [n for n, call in enumerate(asked) if call == desk.note][1]
    assert ("GET", listing.path) not in asked[:second_note]


def test_an_answer_that_timed_out_after_the_note_was_written_is_found_and_not_written_again(
        httpserver: HTTPServer, store: Store, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A real read timeout: the helpdesk writes the note and answers later than the client waits.
    monkeypatch.setattr(base, "TIMEOUTS", (3.0, 0.3))
    v, listing = wb.VENDORS["zendesk"], LISTINGS["zendesk"]
    desk_notice = wb.answer_notice(v, 2, False)
    taken: list[Any] = []

    def slow(request: Request) -> Response:
        taken.append(request.get_json())
        time.sleep(1.0)  # the fault: an answer later than the read timeout
        return Response(json.dumps(fixture("zendesk_update_ticket.response.json")), 200,
                        content_type="application/json")

    httpserver.expect_oneshot_request(v.note[1], method=v.note[0]).respond_with_handler(slow)
    httpserver.expect_oneshot_request(listing.path, method="GET").respond_with_handler(
        lambda _: _json(listing.holding(fixture(listing.fixture), listing.sent_text(taken[0]))))
    wb.serve(httpserver, v)
    writer, ctx = wb.target(httpserver, v), wb.context(store, load_settings(env))

    first = writer.deliver(desk_notice, ctx)
    assert (first.status, first.code, first.unsure) == ("retry", None, True), first
    wait_until(lambda: httpserver.log, what="the stand-in to finish answering the note call")
    assert writer.deliver(desk_notice, ctx).status == "delivered"
    assert len([req for req, _ in httpserver.log if req.method == v.note[0] and req.path == v.note[1]]) == 1


def test_a_look_that_times_out_writes_nothing_and_is_made_again(
        httpserver: HTTPServer, store: Store, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TIMEOUTS", (3.0, 0.3))
    v, listing = wb.VENDORS["zendesk"], LISTINGS["zendesk"]
    notice = wb.answer_notice(v, 2, False)
    taken = _written_then(httpserver, v.note, lambda: Response("upstream timed out", 504))
    slow_look = Response(json.dumps(fixture(listing.fixture)), 200, content_type="application/json")
    httpserver.expect_oneshot_request(listing.path, method="GET").respond_with_handler(
        lambda _: (time.sleep(1.0), slow_look)[1])  # the fault: a look answered later than the read timeout
    wb.serve(httpserver, v)
    writer, ctx = wb.target(httpserver, v), wb.context(store, load_settings(env))

    assert writer.deliver(notice, ctx).unsure
    looked = writer.deliver(notice, ctx)
    assert (looked.status, looked.code) == ("retry", None) and "cannot be read now" in looked.detail
    assert len(taken) == 1 and len([r for r, _ in httpserver.log if r.path == v.note[1]]) == 1
    # The stand-in ends its slow answer before the next test shares the server (its log would be that test's).
    wait_until(lambda: any(r.path == listing.path for r, _ in httpserver.log), what="the slow look to end")


def test_a_helpdesk_that_cannot_be_reached_is_surely_not_written_to(store: Store, env: dict[str, str]) -> None:
    from tracker.cli.dev import free_port
    from tracker.config import HelpdeskApi
    from tracker.writeback import writeback_target

    v = wb.VENDORS["zendesk"]
    writer = writeback_target("zendesk", HelpdeskApi(f"http://127.0.0.1:{free_port()}", v.user, v.token))
    notice = wb.answer_notice(v, 2, False)
    outcome = writer.deliver(notice, wb.context(store, load_settings(env)))
    assert (outcome.status, outcome.code, outcome.unsure) == ("retry", None, False), outcome
    assert store.writeback_step(writer.name, notice.customer, notice.id) is None  # the next try writes at once


def test_every_note_carries_its_reference_in_each_form_a_helpdesk_keeps() -> None:
    note = base.Note(ticket="1", title="CSAT rating", lines=(("Comment", "_ref_ [x]"), ("Reference", "0" * 16)),
                     link="https://csat.example.com/dashboard/customers/kari@example.no", reference="0" * 16)
    for text in (note.text, note.html, note.wiki, note.markdown):
        assert note.written_in(text)
    assert not note.written_in("Reference: 00000000000000001") and not note.written_in("Reference: 10000000000000000")
    assert note_reference("survey.answered:3:1") != note_reference("survey.answered:3:10")
    assert len(note_reference("survey.answered:3:1")) == 16
