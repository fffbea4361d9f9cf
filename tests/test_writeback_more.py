"""Write-back to Intercom, Chatwoot and Jira Service Management against a real HTTP server standing in for each.

The server answers with the vendors' documented response examples and the tests hold our requests against their
documented request examples (tests/fixtures/writeback/<vendor>_*): Intercom's from its OpenAPI description 2.11
(intercom/Intercom-OpenAPI), Chatwoot's from its swagger definitions (the note's answer is built from the
documented message schema: the swagger gives no example), Jira Service Management's from Atlassian's REST
reference (request comment, and the Edit issue `update.labels` verbs).
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.config import HelpdeskApi, Settings, load_settings
from tracker.notify.dispatch import DispatchReport, dispatch
from tracker.notify.events import Notice, emit
from tracker.notify.targets import DispatchContext, Outcome
from tracker.store import Store
from tracker.store.keys import bucket_of
from tracker.writeback import CLIENTS, writeback_target, writeback_targets
from tracker.writeback.chatwoot import Chatwoot
from tracker.writeback.intercom import Intercom
from tracker.writeback.jira import Jira

FIXTURES = Path(__file__).parent / "fixtures" / "writeback"
EMAIL = "kari@example.no"
TICKETS = {"intercom": "215469875843621", "chatwoot": "18", "jira": "SUP-42"}
ADMIN_ID, ACCOUNT_ID, JIRA_EMAIL, TOKEN = "991267596", "1", "agent@acme.test", "tok-123"
HOUR_MS = 3_600_000


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# --- notices as the product emits them (s10/CONTRACT.md) -------------------------------------------------------

def answer_notice(source: str, rating: int = 5, *, previous: int | None = None, seq: int = 1,
                  comment: str = "Quick & kind <3") -> Notice:
    kind = "survey.answered" if previous is None else "survey.changed"
    answer = {"rating": rating, "scale": "csat5", "label": None, "satisfied": rating >= 4, "comment": comment,
              "reason": None if rating >= 4 else "slow", "answered_at": "2026-12-01T00:00:00Z"}
    if previous is not None:
        answer["previous_rating"] = previous
    survey = {"id": "s-77", "scale": "csat5", "ticket": TICKETS[source], "source": source, "ticket_key": None,
              "agent": {"id": "a-7", "name": "Ola"}, "team": "vip", "brand": None, "subject": "Order late",
              "sent_at": "2026-11-30T20:00:00Z"}
    return Notice(id=f"{kind}:7:{seq}", type=kind, customer=EMAIL, at_ms=int(time.time() * 1000),
                  data={"survey": survey, "answer": answer, "customer": {"email": EMAIL, "name": "Kari"}})


def at_risk_notice(source: str) -> Notice:
    data = {"ticket": {"id": TICKETS[source], "source": source, "key": None, "subject": "Again late"},
            "customer": {"email": EMAIL, "name": "Kari", "score": 20.0}}
    return Notice(id="ticket.at_risk:7:9", type="ticket.at_risk", customer=EMAIL, at_ms=int(time.time() * 1000),
                  data=data)


# --- each vendor's stand-in: the documented answers, and what was asked of it -----------------------------------

@dataclass
class Helpdesk:
    """One vendor's stand-in on the HTTP server: its routes answer as documented; tags live in `tags`."""

    source: str
    server: HTTPServer
    tags: list[str] = field(default_factory=list)

    @property
    def ticket(self) -> str:
        return TICKETS[self.source]

    @property
    def note_path(self) -> str:
        return {"intercom": f"/conversations/{self.ticket}/reply",
                "chatwoot": f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{self.ticket}/messages",
                "jira": f"/rest/servicedeskapi/request/{self.ticket}/comment"}[self.source]

    def env(self) -> dict[str, str]:
        prefix = "TRACKER_JIRA_API_" if self.source == "jira" else f"TRACKER_{self.source.upper()}_API_"
        user = {"intercom": ADMIN_ID, "chatwoot": ACCOUNT_ID, "jira": JIRA_EMAIL}[self.source]
        return {"TRACKER_WRITEBACK": self.source, prefix + "URL": self.server.url_for("").rstrip("/"),
                prefix + "USER": user, prefix + "TOKEN": TOKEN}

    def serve(self) -> None:
        {"intercom": self._intercom, "chatwoot": self._chatwoot, "jira": self._jira}[self.source]()

    def requests(self, method: str | None = None, path: str | None = None) -> list[tuple[Request, Response]]:
        return [(request, response) for request, response in self.server.log
                if (method is None or request.method == method) and (path is None or request.path == path)]

    def notes(self) -> list[Any]:
        """Return the bodies of the notes the helpdesk took (answered 2xx)."""
        return [request.get_json() for request, response in self.requests("POST", self.note_path)
                if response.status_code < 300]

    def _intercom(self) -> None:
        conversation = f"/conversations/{self.ticket}"
        ids: dict[str, str] = {}

        def create_tag(request: Request) -> Response:
            name = request.get_json()["name"]
            tag = {**fixture("intercom_create_tag.response"), "id": ids.setdefault(name, str(118 + len(ids))),
                   "name": name}
            return Response(json.dumps(tag), 200, content_type="application/json")

        def attach(request: Request) -> Response:
            name = next(n for n, i in ids.items() if i == request.get_json()["id"])
            if name not in self.tags:
                self.tags.append(name)
            return Response(json.dumps({**fixture("intercom_attach_tag.response"), "id": ids[name], "name": name}),
                            200, content_type="application/json")

        def read(_: Request) -> Response:
            body = fixture("intercom_reply_note.response")
            body["id"] = self.ticket
            body["tags"] = {"type": "tag.list", "tags": [{"type": "tag", "id": ids[n], "name": n} for n in self.tags]}
            return Response(json.dumps(body), 200, content_type="application/json")

        def detach(request: Request) -> Response:
            tag_id = request.path.rsplit("/", 1)[1]
            name = next(n for n, i in ids.items() if i == tag_id)
            self.tags.remove(name)
            return Response(json.dumps({"type": "tag", "id": tag_id, "name": name}), 200,
                            content_type="application/json")

        self.server.expect_request(self.note_path, method="POST").respond_with_json(
            fixture("intercom_reply_note.response"))
        self.server.expect_request("/tags", method="POST").respond_with_handler(create_tag)
        self.server.expect_request(f"{conversation}/tags", method="POST").respond_with_handler(attach)
        self.server.expect_request(conversation, method="GET").respond_with_handler(read)
        self.server.expect_request(re.compile(rf"^{conversation}/tags/\d+$"), method="DELETE").respond_with_handler(
            detach)

    def _chatwoot(self) -> None:
        labels = f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{self.ticket}/labels"

        def replace(request: Request) -> Response:
            self.tags[:] = request.get_json()["labels"]  # the documented semantics: the list is replaced
            return Response(json.dumps({"payload": self.tags}), 200, content_type="application/json")

        self.server.expect_request(self.note_path, method="POST").respond_with_json(
            fixture("chatwoot_private_note.response"))
        self.server.expect_request(labels, method="GET").respond_with_handler(
            lambda _: Response(json.dumps({"payload": self.tags}), 200, content_type="application/json"))
        self.server.expect_request(labels, method="POST").respond_with_handler(replace)

    def _jira(self) -> None:
        def edit(request: Request) -> Response:
            for change in request.get_json()["update"]["labels"]:
                if "add" in change and change["add"] not in self.tags:
                    self.tags.append(change["add"])
                if "remove" in change and change["remove"] in self.tags:
                    self.tags.remove(change["remove"])
            return Response(status=204)

        self.server.expect_request(self.note_path, method="POST").respond_with_json(
            fixture("jira_request_comment.response"), status=201)
        self.server.expect_request(f"/rest/api/3/issue/{self.ticket}", method="PUT").respond_with_handler(edit)


@pytest.fixture(params=["intercom", "chatwoot", "jira"])
def helpdesk(request: pytest.FixtureRequest, httpserver: HTTPServer) -> Iterator[Helpdesk]:
    yield Helpdesk(request.param, httpserver)


@pytest.fixture
def deliver(helpdesk: Helpdesk, env: dict[str, str], store: Store) -> Callable[[Notice], Outcome]:
    """Deliver a notice through the helpdesk's write-back target, as the dispatcher does."""
    settings: Settings = load_settings({**env, **helpdesk.env()})
    [target] = writeback_targets(settings)
    session = requests.Session()

    def run(notice: Notice) -> Outcome:
        assert target.wants(notice)
        return target.deliver(notice, DispatchContext(store, settings, int(time.time() * 1000), session))
    return run


# --- the tests ------------------------------------------------------------------------------------------------

def test_each_of_the_three_helpdesks_has_its_client_registered() -> None:
    assert (CLIENTS["intercom"], CLIENTS["chatwoot"], CLIENTS["jira"]) == (Intercom, Chatwoot, Jira)


def test_an_answer_writes_one_internal_note_and_its_tags_as_each_vendor_documents(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    helpdesk.serve()
    outcome = deliver(answer_notice(helpdesk.source, 2))
    assert outcome.status == "delivered", outcome
    [note] = helpdesk.notes()
    assert helpdesk.tags == ["csat-2", "csat-unsatisfied"]
    for request, _ in helpdesk.server.log:
        if helpdesk.source == "intercom":
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            assert request.headers["Intercom-Version"] == "2.11"
            assert request.headers["Accept"] == "application/json"
        elif helpdesk.source == "chatwoot":
            # Chatwoot's api_access_token, spelt with hyphens so that proxies (nginx, this server) keep it
            assert request.headers["Api-Access-Token"] == TOKEN
        else:
            auth = request.authorization
            assert auth is not None and (auth.type, auth.username, auth.password) == ("basic", JIRA_EMAIL, TOKEN)
    documented = fixture({"intercom": "intercom_reply_note.request", "chatwoot": "chatwoot_private_note.request",
                          "jira": "jira_request_comment.request"}[helpdesk.source])
    assert set(note) == set(documented)
    if helpdesk.source == "intercom":
        assert (note["message_type"], note["type"], note["admin_id"]) == ("note", "admin", ADMIN_ID)
        assert "<strong>Rating:</strong> 2 (Dissatisfied) on csat5" in note["body"]
        assert "Quick &amp; kind &lt;3" in note["body"]  # the customer's words, escaped in the HTML body
    elif helpdesk.source == "chatwoot":
        assert (note["message_type"], note["private"]) == ("outgoing", True)
        assert "Rating: 2 (Dissatisfied) on csat5" in note["content"]
    else:
        assert note["public"] is False
        assert "Rating: 2 (Dissatisfied) on csat5" in note["body"]
        assert "Follow-up reason: slow" in note["body"]
        assert f"http://127.0.0.1:8000/dashboard/customers/{EMAIL}" in note["body"]


MARKED_UP = ("*Never* again, see [my refund|https://evil.example/x] {color:red}late{color} \\o/\nh1. Worst\n"
             "# 1. <b>slow</b> & -gone- 2026-12-01 `x` ![i](https://e.example)")


def test_the_customers_words_reach_the_agent_as_typed_not_as_the_helpdesks_markup(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    """Jira renders a comment's body as wiki markup and Chatwoot a message's content as Markdown: a customer's
    comment must not turn into a link of their choosing, a macro, a heading or bold text in the agent's note."""
    helpdesk.serve()
    assert deliver(answer_notice(helpdesk.source, 2, comment=MARKED_UP)).status == "delivered"
    [note] = helpdesk.notes()
    if helpdesk.source == "jira":
        assert ("Comment: \\*Never\\* again, see \\[my refund\\|https://evil.example/x\\] "
                "\\{color:red\\}late\\{color\\} &#92;o/\\\\ h1. Worst\\\\ # 1. <b>slow</b> & \\-gone\\- "
                "2026-12-01 `x` \\!\\[i\\](https://e.example)\n") in note["body"]  # one line
        assert "\nh1." not in note["body"] and "\nCustomer: Kari <kari@" in note["body"]
        assert f"Dashboard: http://127.0.0.1:8000/dashboard/customers/{EMAIL}" in note["body"]  # our link, as is
    elif helpdesk.source == "chatwoot":
        assert ("Comment: \\*Never\\* again, see \\[my refund|https://evil.example/x\\] {color:red}late{color} "
                "\\\\o/\nh1. Worst\n\\# 1. <b>slow</b> & -gone- 2026-12-01 \\`x\\` "
                "!\\[i\\](https://e.example)\n") in note["content"]
        assert f"Dashboard: http://127.0.0.1:8000/dashboard/customers/{EMAIL}" in note["content"]
    else:
        assert "&lt;b&gt;slow&lt;/b&gt; &amp; -gone-" in note["body"]  # Intercom takes HTML, escaped as ever


EVERYDAY = "Great service! Why? 5 - 6 stars, follow-up on 2026-12-01. Quick & kind <3 :) kari@example.no"


def test_everyday_words_reach_each_helpdesk_untouched_by_the_escaping(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    """Only what could open or close markup takes a backslash: a comment of everyday punctuation goes as typed."""
    helpdesk.serve()
    assert deliver(answer_notice(helpdesk.source, 2, comment=EVERYDAY)).status == "delivered"
    [note] = helpdesk.notes()
    if helpdesk.source == "intercom":
        assert html.escape(EVERYDAY, quote=False) in note["body"]
    else:
        assert f"Comment: {EVERYDAY}\n" in (note.get("body") or note.get("content")), note


def test_an_extra_answer_is_never_written_as_the_dashboards_link_whatever_its_question_is_called(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    helpdesk.serve()
    notice = answer_notice(helpdesk.source, 2)
    notice.data["answer"]["extra"] = {"Dashboard": "https://evil.example/login"}
    assert deliver(notice).status == "delivered"
    [note] = helpdesk.notes()
    body = note.get("body") or note.get("content") or ""
    assert f"http://127.0.0.1:8000/dashboard/customers/{EMAIL}" in body
    if helpdesk.source == "intercom":
        assert 'href="https://evil.example/login"' not in body
        assert "<strong>Dashboard:</strong> https://evil.example/login</li>" in body
    else:
        assert "Dashboard: https://evil.example/login\n" in body  # shown as typed (nothing in it to escape)


def test_intercom_finds_each_tag_by_name_and_attaches_it_by_id(httpserver: HTTPServer, env: dict[str, str],
                                                                store: Store) -> None:
    desk = Helpdesk("intercom", httpserver)
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    assert target.deliver(answer_notice("intercom", 5), ctx).status == "delivered"
    created = [request.get_json() for request, _ in desk.requests("POST", "/tags")]
    attached = [request.get_json() for request, _ in desk.requests("POST", f"/conversations/{desk.ticket}/tags")]
    assert created == [{"name": "csat-5"}]
    assert set(created[0]) == set(fixture("intercom_create_tag.request"))
    assert attached == [{"id": "118", "admin_id": ADMIN_ID}]
    assert set(attached[0]) == set(fixture("intercom_attach_tag.request"))


def test_chatwoot_keeps_the_conversations_other_labels_when_it_adds_its_own(
        httpserver: HTTPServer, env: dict[str, str], store: Store) -> None:
    desk = Helpdesk("chatwoot", httpserver, tags=list(fixture("chatwoot_list_labels.response")["payload"]))
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    assert target.deliver(answer_notice("chatwoot", 4), ctx).status == "delivered"
    [(written, _)] = desk.requests("POST", f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{desk.ticket}/labels")
    assert written.get_json() == {"labels": ["support", "billing", "csat-4"]}
    assert set(written.get_json()) == set(fixture("chatwoot_add_labels.request"))


def test_chatwoot_labels_the_conversation_did_not_keep_are_refused_by_name(
        httpserver: HTTPServer, env: dict[str, str], store: Store) -> None:
    desk = Helpdesk("chatwoot", httpserver, tags=["support"])
    labels = f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{desk.ticket}/labels"
    # An installation that keeps only the labels its account defines answers the list it kept.
    httpserver.expect_oneshot_request(labels, method="POST").respond_with_json({"payload": ["support", "csat-2"]})
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    outcome = target.deliver(answer_notice("chatwoot", 2), ctx)
    assert (outcome.status, outcome.code) == ("refused", 200), outcome
    assert outcome.detail == ("note written; chatwoot labels: the conversation kept support, csat-2 but not "
                              "csat-unsatisfied: an installation that keeps only the account's own labels needs them "
                              "created (Settings, Labels)")
    assert len(desk.requests("POST", desk.note_path)) == 1


@pytest.mark.parametrize("payload", [7, "support", {"labels": ["support"]}, [1, None], ["support", 3]])
def test_chatwoot_labels_read_in_an_unexpected_shape_write_none_and_are_tried_again_keeping_the_conversations_own(
        httpserver: HTTPServer, env: dict[str, str], store: Store, payload: Any) -> None:
    # Chatwoot's label write replaces the list: written from a read it could not understand, it would drop them all.
    desk = Helpdesk("chatwoot", httpserver, tags=["support"])
    httpserver.expect_oneshot_request(f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{desk.ticket}/labels",
                                      method="GET").respond_with_json({"payload": payload})
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    outcome = target.deliver(answer_notice("chatwoot", 4), ctx)
    assert outcome.status == "retry" and "the tags are left as they are" in outcome.detail, outcome
    assert desk.tags == ["support"]
    assert target.deliver(answer_notice("chatwoot", 4), ctx).status == "delivered"
    assert desk.tags == ["support", "csat-4"]


@pytest.mark.parametrize("tags", [7, "csat-5", [{"type": "tag"}], {"tags": {"name": "csat-5"}}])
def test_intercom_tags_read_in_an_unexpected_shape_are_read_as_none_and_its_own_are_attached(
        httpserver: HTTPServer, env: dict[str, str], store: Store, tags: Any) -> None:
    desk = Helpdesk("intercom", httpserver)
    body = fixture("intercom_reply_note.response")
    httpserver.expect_oneshot_request(f"/conversations/{desk.ticket}", method="GET").respond_with_json(
        {**body, "id": desk.ticket, "tags": tags})
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    assert target.deliver(answer_notice("intercom", 4), ctx).status == "delivered"
    assert desk.tags == ["csat-4"]


def test_jira_adds_labels_with_the_documented_update_verbs(httpserver: HTTPServer, env: dict[str, str],
                                                           store: Store) -> None:
    desk = Helpdesk("jira", httpserver)
    desk.serve()
    settings = load_settings({**env, **desk.env()})
    [target] = writeback_targets(settings)
    ctx = DispatchContext(store, settings, int(time.time() * 1000), requests.Session())
    assert target.deliver(answer_notice("jira", 1), ctx).status == "delivered"
    [(edit, _)] = desk.requests("PUT", f"/rest/api/3/issue/{desk.ticket}")
    assert edit.get_json() == {"update": {"labels": [{"add": "csat-1"}, {"add": "csat-unsatisfied"}]}}
    documented = fixture("jira_edit_issue_labels.request")["update"]["labels"]
    assert {verb for change in documented for verb in change} >= {"add", "remove"}


def test_a_helpdesk_down_once_gets_the_note_once_when_it_is_back(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    helpdesk.server.expect_oneshot_request(helpdesk.note_path, method="POST").respond_with_data(
        "upstream down", status=503)
    helpdesk.serve()
    notice = answer_notice(helpdesk.source, 5)
    first = deliver(notice)
    assert (first.status, first.code) == ("retry", 503)
    assert helpdesk.notes() == [] and helpdesk.tags == []
    assert deliver(notice).status == "delivered"
    assert len(helpdesk.notes()) == 1 and len(helpdesk.requests("POST", helpdesk.note_path)) == 2
    assert helpdesk.tags == ["csat-5"]


def test_tags_that_fail_are_retried_without_writing_the_note_again(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    tag_call = {"intercom": ("/tags", "POST"),
                "chatwoot": (f"/api/v1/accounts/{ACCOUNT_ID}/conversations/{helpdesk.ticket}/labels", "GET"),
                "jira": (f"/rest/api/3/issue/{helpdesk.ticket}", "PUT")}[helpdesk.source]
    helpdesk.server.expect_oneshot_request(tag_call[0], method=tag_call[1]).respond_with_data("busy", status=502)
    helpdesk.serve()
    notice = answer_notice(helpdesk.source, 5)
    assert deliver(notice).status == "retry"
    assert deliver(notice).status == "delivered"
    assert len(helpdesk.notes()) == 1
    assert helpdesk.tags == ["csat-5"]


def test_a_rate_limited_helpdesk_is_retried_after_the_wait_it_asks_for(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    if helpdesk.source == "intercom":  # the Unix time its window resets (documented example), no Retry-After
        headers = {"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": str(int(time.time()) + 8)}
        body: Any = {"type": "error.list", "errors": [{"code": "rate_limit_exceeded",
                                                       "message": "Exceeded rate limit of 167 in 10_seconds"}]}
    elif helpdesk.source == "jira":
        headers, body = {"Retry-After": "8"}, {"errorMessages": ["Rate limit exceeded."]}
    else:  # Chatwoot's Rack::Attack answers a bare 429: the dispatcher's own backoff decides
        headers, body = {}, "Retry later\n"
    handler = helpdesk.server.expect_oneshot_request(helpdesk.note_path, method="POST")
    handler.respond_with_data(json.dumps(body) if isinstance(body, dict) else body, status=429, headers=headers)
    helpdesk.serve()
    notice = answer_notice(helpdesk.source, 5)
    limited = deliver(notice)
    assert (limited.status, limited.code) == ("retry", 429)
    if helpdesk.source == "chatwoot":
        assert limited.retry_after_s is None
    else:
        assert limited.retry_after_s is not None and 6.0 <= limited.retry_after_s <= 8.0
    assert deliver(notice).status == "delivered"
    assert len(helpdesk.notes()) == 1


def test_jira_without_retry_after_waits_until_its_reset_time(httpserver: HTTPServer) -> None:
    reset = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(time.time() + 120))
    httpserver.expect_request("/r").respond_with_data("", status=429, headers={"X-RateLimit-Reset": reset})
    wait = Jira(api(httpserver.url_for(""))).retry_after_s(requests.get(httpserver.url_for("/r"), timeout=5))
    assert wait is not None and 60.0 <= wait <= 120.0


def api(url: str) -> HelpdeskApi:
    return HelpdeskApi(url.rstrip("/"), "a@acme.test", TOKEN)


def test_a_refused_token_is_recorded_once_and_not_retried(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    body, words = {"intercom": (fixture("intercom_reply_401.response"), "Access Token Invalid"),
                   "chatwoot": (fixture("chatwoot_401.response"), "Invalid Access Token"),
                   "jira": ("Client must be authenticated to access this resource.", "must be authenticated")
                   }[helpdesk.source]
    handler = helpdesk.server.expect_request(helpdesk.note_path, method="POST")
    if isinstance(body, dict):
        handler.respond_with_json(body, status=401)
    else:
        handler.respond_with_data(body, status=401)
    refused = deliver(answer_notice(helpdesk.source, 5))
    assert (refused.status, refused.code) == ("refused", 401)
    assert words in refused.detail
    assert len(helpdesk.server.log) == 1


def test_a_changed_answer_writes_one_more_note_and_moves_the_tags_but_a_resubmitted_one_writes_none(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    helpdesk.serve()
    answered = answer_notice(helpdesk.source, 2)
    assert deliver(answered).status == "delivered"
    assert helpdesk.tags == ["csat-2", "csat-unsatisfied"]
    asked = len(helpdesk.server.log)
    again = deliver(answered)
    assert again.status == "skipped" and len(helpdesk.server.log) == asked
    assert deliver(answer_notice(helpdesk.source, 5, previous=2, seq=2)).status == "delivered"
    _, second = helpdesk.notes()
    assert "changed from 2 (Dissatisfied)" in json.dumps(second)
    assert helpdesk.tags == ["csat-5"]


def test_a_new_ticket_from_an_at_risk_customer_gets_a_note_and_no_tags(
        helpdesk: Helpdesk, deliver: Callable[[Notice], Outcome]) -> None:
    helpdesk.serve()
    assert deliver(at_risk_notice(helpdesk.source)).status == "delivered"
    [note] = helpdesk.notes()
    assert "Customer at risk" in json.dumps(note)
    assert [request.path for request, _ in helpdesk.server.log] == [helpdesk.note_path]


def test_a_target_for_another_source_does_not_take_these_notices() -> None:
    target = writeback_target("zendesk", api("https://acme.zendesk.com"))
    assert not any(target.wants(answer_notice(source)) for source in TICKETS)
    assert not target.wants(at_risk_notice("jira"))



# --- through the notice stream and the dispatcher, as the worker runs them -------------------------------------

def dispatch_now(store: Store, settings: Settings, at_ms: int) -> DispatchReport:
    return dispatch(store, settings, "test", at_ms, buckets=[bucket_of(EMAIL)], targets=writeback_targets(settings))


def test_through_the_notice_stream_a_helpdesk_that_is_down_gets_the_note_once_when_it_is_back(
        helpdesk: Helpdesk, env: dict[str, str], store: Store) -> None:
    settings = load_settings({**env, **helpdesk.env()})
    for notice in (answer_notice(helpdesk.source, 2), at_risk_notice(helpdesk.source)):
        assert emit(store, notice.type, EMAIL, notice.data, notice.id, notice.at_ms)
    helpdesk.server.expect_oneshot_request(helpdesk.note_path, method="POST").respond_with_data("down", status=503)
    helpdesk.serve()
    now = int(time.time() * 1000)
    assert dispatch_now(store, settings, now).retry == 1
    assert helpdesk.notes() == []  # the at-risk note waits behind the answer's: in order per customer
    assert dispatch_now(store, settings, now + HOUR_MS).delivered == 2
    assert dispatch_now(store, settings, now + 2 * HOUR_MS).delivered == 0
    answer, at_risk = helpdesk.notes()
    assert "CSAT rating" in json.dumps(answer) and "Customer at risk" in json.dumps(at_risk)
    records = store.list_deliveries(10, lambda record: record["target"] == f"writeback:{helpdesk.source}")
    assert [(r["type"], r["status"], r["code"]) for r in records] == [
        ("ticket.at_risk", "delivered", None), ("survey.answered", "delivered", None),
        ("survey.answered", "retry", 503)]


def test_through_the_notice_stream_a_refusal_is_recorded_with_the_vendors_words_and_not_retried(
        helpdesk: Helpdesk, env: dict[str, str], store: Store) -> None:
    settings = load_settings({**env, **helpdesk.env()})
    notice = answer_notice(helpdesk.source, 5)
    assert emit(store, notice.type, EMAIL, notice.data, notice.id, notice.at_ms)
    helpdesk.server.expect_request(helpdesk.note_path, method="POST").respond_with_data(
        "Not found", status=404)
    now = int(time.time() * 1000)
    assert dispatch_now(store, settings, now).refused == 1
    assert dispatch_now(store, settings, now + HOUR_MS).refused == 0
    assert len(helpdesk.server.log) == 1
    [record] = store.list_deliveries(10, lambda record: record["target"] == f"writeback:{helpdesk.source}")
    assert (record["status"], record["code"]) == ("refused", 404)
    assert "Not found" in record["detail"]


def test_a_line_the_customer_ended_with_a_carriage_return_opens_no_markdown_block_either() -> None:
    """markdown-it ends a line at \\n, \\r\\n or \\r: a reply written on an old client splits lines with \\r alone."""
    from tracker.writeback.markup import markdown

    shown = markdown("T", (("Comment", "slow\r# Worst\r\n1. again\r> quote"),), "https://x.example/")
    assert shown == "T\nComment: slow\r\\# Worst\r\n1\\. again\r\\> quote\nDashboard: https://x.example/"
