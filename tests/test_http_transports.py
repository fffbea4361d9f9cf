"""Survey mail through Postmark, SendGrid and Mailgun's APIs, against a real local HTTP server."""

from __future__ import annotations

import email
import json
import time
from datetime import UTC, datetime
from email.policy import default as default_policy
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.support import drain, solved_event, wait_until
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.mail.http import MailgunSender, PostmarkSender, SendgridSender, make_sender
from tracker.mail.message import SurveyMail, build_survey_message
from tracker.mail.smtp import SmtpSender
from tracker.surveys import due as surveys

KEY = "api-key-0123456789"
PATHS = {"postmark": "/email", "sendgrid": "/v3/mail/send", "mailgun": "/v3/mg.example.com/messages.mime"}


def survey_message() -> Any:
    return build_survey_message(SurveyMail(
        to_email="kari@example.no", to_name="Kari Nordmann", lang="nb", scale_name="csat5", ticket_ref="#1001",
        ticket_subject="Card declined", mail_from="Acme Support <support@acme.test>",
        message_id="<abcdefghijklmnopqrst@acme.test>",
        rating_url="https://tracker.example/s/tok?rating={value}",
        unsubscribe_url="https://tracker.example/u/tok", reply_to="reply+tok@replies.example.com",
        expires_at=datetime(2026, 12, 7, tzinfo=UTC)))


def sender_for(provider: str, httpserver: Any, **kwargs: Any) -> Any:
    url = httpserver.url_for("").rstrip("/")
    if provider == "mailgun":
        return MailgunSender(KEY, "mg.example.com", url, **kwargs)
    return {"postmark": PostmarkSender, "sendgrid": SendgridSender}[provider](KEY, url, **kwargs)


def only_request(httpserver: Any) -> Request:
    (entry,) = httpserver.log
    return entry[0]


def test_postmark_gets_the_mail_as_json_with_the_server_token_and_our_headers(httpserver):
    httpserver.expect_request("/email", method="POST").respond_with_json(
        {"To": "kari@example.no", "SubmittedAt": "2026-11-23T10:00:00Z", "MessageID": "b7bc2f4a", "ErrorCode": 0,
         "Message": "OK"})
    with sender_for("postmark", httpserver) as sender:
        sender.send(survey_message())
    request = only_request(httpserver)
    assert request.headers["X-Postmark-Server-Token"] == KEY
    body = request.get_json()
    assert body["From"] == "Acme Support <support@acme.test>" and body["To"] == "Kari Nordmann <kari@example.no>"
    assert body["ReplyTo"] == "reply+tok@replies.example.com" and body["MessageStream"] == "outbound"
    assert "https://tracker.example/s/tok?rating=4" in body["TextBody"] and "<html" in body["HtmlBody"].lower()
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers["List-Unsubscribe"] == "<https://tracker.example/u/tok>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Auto-Submitted"] == "auto-generated" and headers["Message-ID"] == "<abcdefghijklmnopqrst@acme.test>"
    assert body["TrackLinks"] == "None" and body["TrackOpens"] is False


def test_sendgrid_gets_v3_json_with_a_bearer_key_text_before_html_and_our_headers(httpserver):
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data("", status=202)
    with sender_for("sendgrid", httpserver) as sender:
        sender.send(survey_message())
    request = only_request(httpserver)
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = request.get_json()
    assert body["personalizations"] == [{"to": [{"email": "kari@example.no", "name": "Kari Nordmann"}]}]
    assert body["from"] == {"email": "support@acme.test", "name": "Acme Support"}
    assert body["reply_to"] == {"email": "reply+tok@replies.example.com"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["Message-ID"] == "<abcdefghijklmnopqrst@acme.test>"
    assert not {"To", "From", "Subject", "Content-Type"} & set(body["headers"])
    assert body["tracking_settings"]["click_tracking"] == {"enable": False}


def test_mailgun_gets_the_finished_mime_message_with_basic_auth(httpserver):
    httpserver.expect_request("/v3/mg.example.com/messages.mime", method="POST").respond_with_json(
        {"id": "<20261123.1@mg.example.com>", "message": "Queued. Thank you."})
    with sender_for("mailgun", httpserver) as sender:
        sender.send(survey_message())
    request = only_request(httpserver)
    assert request.authorization is not None
    assert (request.authorization.username, request.authorization.password) == ("api", KEY)
    assert request.form["to"] == "kari@example.no" and request.form["o:tracking"] == "no"
    sent = email.message_from_bytes(request.files["message"].read(), policy=default_policy)
    assert sent["Message-ID"] == "<abcdefghijklmnopqrst@acme.test>"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.get_body(("html",)) is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", sorted(PATHS))
@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_or_rate_limit_is_transient(httpserver, provider, status):
    httpserver.expect_request(PATHS[provider]).respond_with_json({"message": "try later"}, status=status)
    with sender_for(provider, httpserver) as sender, pytest.raises(TransientMailError) as caught:
        sender.send(survey_message())
    assert f"HTTP {status}" in str(caught.value)


REFUSED_RECIPIENT = {
    "postmark": (422, {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as "
                                                    "inactive. Found inactive addresses: kari@example.no."}),
    "sendgrid": (400, {"errors": [{"message": "Does not contain a valid address.",
                                   "field": "personalizations.0.to.0.email", "help": None}]}),
    "mailgun": (400, {"message": "'to' parameter is not a valid address. please check documentation"}),
}


@pytest.mark.parametrize("provider", sorted(PATHS))
def test_an_invalid_or_inactive_recipient_is_permanent_and_names_the_recipient(httpserver, provider):
    status, body = REFUSED_RECIPIENT[provider]
    httpserver.expect_request(PATHS[provider]).respond_with_json(body, status=status)
    with sender_for(provider, httpserver) as sender, pytest.raises(PermanentMailError) as caught:
        sender.send(survey_message())
    assert caught.value.recipient is True
    assert "kari@example.no" not in str(caught.value)  # provider messages quote addresses; errors are logged


@pytest.mark.parametrize("provider", sorted(PATHS))
def test_a_refused_key_is_permanent_but_says_nothing_about_the_recipient(httpserver, provider):
    httpserver.expect_request(PATHS[provider]).respond_with_json({"ErrorCode": 10, "message": "Forbidden"},
                                                                 status=401)
    with sender_for(provider, httpserver) as sender, pytest.raises(PermanentMailError) as caught:
        sender.send(survey_message())
    assert caught.value.recipient is False


def test_postmark_refusing_a_bad_sender_does_not_blame_the_recipient(httpserver):
    httpserver.expect_request("/email").respond_with_json(
        {"ErrorCode": 400, "Message": "The 'From' address you supplied is not a Sender Signature."}, status=422)
    with sender_for("postmark", httpserver) as sender, pytest.raises(PermanentMailError) as caught:
        sender.send(survey_message())
    assert caught.value.recipient is False and "ErrorCode 400" in str(caught.value)


@pytest.mark.parametrize("provider", sorted(PATHS))
def test_an_unreachable_or_slow_api_is_transient(httpserver, provider):
    down = {"mailgun": MailgunSender(KEY, "mg.example.com", f"http://127.0.0.1:{free_port()}"),
            "postmark": PostmarkSender(KEY, f"http://127.0.0.1:{free_port()}"),
            "sendgrid": SendgridSender(KEY, f"http://127.0.0.1:{free_port()}")}[provider]
    with down, pytest.raises(TransientMailError, match="cannot reach"):
        down.send(survey_message())

    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("{}", status=200)

    httpserver.expect_request(PATHS[provider]).respond_with_handler(slow)
    with sender_for(provider, httpserver, timeout=(1.0, 0.2)) as sender, pytest.raises(TransientMailError,
                                                                                       match="in time"):
        sender.send(survey_message())
    wait_until(lambda: httpserver.log, timeout=5, what="the slow answer to finish")  # keep it out of the next test


def test_one_sender_sends_a_burst_over_one_session(httpserver):
    httpserver.expect_request("/email").respond_with_json({"ErrorCode": 0, "Message": "OK"})
    with sender_for("postmark", httpserver) as sender:
        session = sender.session
        for _ in range(5):
            sender.send(survey_message())
        assert sender.session is session
    assert len(httpserver.log) == 5


def test_the_transport_setting_chooses_the_sender(settings, env):
    assert isinstance(make_sender(settings), SmtpSender)
    api = {**env, "TRACKER_MAIL_API_KEY": KEY, "TRACKER_MAILGUN_DOMAIN": "mg.example.com"}
    assert isinstance(make_sender(load_settings({**api, "TRACKER_MAIL_TRANSPORT": "postmark"})), PostmarkSender)
    assert isinstance(make_sender(load_settings({**api, "TRACKER_MAIL_TRANSPORT": "sendgrid"})), SendgridSender)
    mailgun = make_sender(load_settings({**api, "TRACKER_MAIL_TRANSPORT": "mailgun",
                                         "TRACKER_MAIL_API_URL": "https://api.eu.mailgun.net"}))
    assert isinstance(mailgun, MailgunSender) and mailgun.base_url == "https://api.eu.mailgun.net"
    assert mailgun.domain == "mg.example.com"


def _send_due(store: Any, settings: Any) -> list[surveys.Outcome]:
    now = int(time.time() * 1000)
    claimed, tkeys = surveys.sweep(store, now)
    with make_sender(settings) as sender:
        return [surveys.send_due(store, settings, sender, tkey, claimed, now) for tkey in tkeys]


def postmark(env: dict[str, str], httpserver: Any) -> dict[str, str]:
    """Return the variables that send mail through Postmark's API, served by httpserver."""
    return {**env, "TRACKER_MAIL_TRANSPORT": "postmark", "TRACKER_MAIL_API_KEY": KEY,
            "TRACKER_MAIL_API_URL": httpserver.url_for("").rstrip("/")}


def _solved(post_event: Any, store: Any, settings: Any) -> None:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    assert post_event("standard", solved_event(at=at)).status_code == 202
    drain(store, settings)


def test_a_due_survey_goes_out_through_postmark_end_to_end(httpserver, post_event, store, env):
    settings = load_settings({**postmark(env, httpserver), "TRACKER_REPLY_DOMAIN": "r.example.com"})
    httpserver.expect_request("/email", method="POST", headers={"X-Postmark-Server-Token": KEY}).respond_with_json(
        {"ErrorCode": 0, "Message": "OK", "MessageID": "b7bc2f4a"})
    _solved(post_event, store, settings)
    assert [o.status for o in _send_due(store, settings)] == ["sent"]
    body = only_request(httpserver).get_json()
    assert body["To"] == "Kari <kari@example.no>" and body["ReplyTo"].startswith("reply+")
    (survey,) = store.customer_surveys("kari@example.no")
    assert survey.status == "sent"
    assert {h["Name"]: h["Value"] for h in body["Headers"]}["Message-ID"] == f"<{survey.sid}@acme.test>"


def test_a_hard_failure_through_the_api_is_recorded_on_the_survey_and_suppresses(httpserver, post_event, store,
                                                                                env):
    settings = load_settings(postmark(env, httpserver))
    httpserver.expect_request("/email").respond_with_json(REFUSED_RECIPIENT["postmark"][1], status=422)
    _solved(post_event, store, settings)
    assert [(o.status, o.reason) for o in _send_due(store, settings)] == [("failed", "undeliverable")]
    (survey,) = store.customer_surveys("kari@example.no")
    assert survey.status == "failed" and "ErrorCode 406" in (survey.error or "")
    assert store.is_suppressed("kari@example.no")


def test_a_postmark_outage_reschedules_the_survey(httpserver, post_event, store, env):
    settings = load_settings(postmark(env, httpserver))
    httpserver.expect_request("/email").respond_with_data(json.dumps({"Message": "down"}), status=503)
    _solved(post_event, store, settings)
    assert [(o.status, o.reason) for o in _send_due(store, settings)] == [("retry", "smtp_unavailable")]
    assert len(surveys.sweep(store, int(time.time() * 1000) + 3600_000)[1]) == 1  # due again, later
