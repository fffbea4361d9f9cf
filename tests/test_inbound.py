"""Replies by email through the real app: a survey mailed by the real loop, answered through each provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import drain, send_all, solved_event, survey_link
from tracker.answers.by_email import InboundReply, handle_reply
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.store import Store
from tracker.web.app import create_app

INBOUND_TOKEN = "inbound-token-0123456789abcdef"
SIGNING_KEY = "mailgun-signing-key-0123456789abcdef"
SUPPORT = "Acme Support <support@acme.test>"
GMAIL_QUOTE = ("\n\nman. 23. nov. 2026 kl. 10:02 skrev Acme Support <support@acme.test>:\n\n"
               "> Hei Kari,\n>\n> Hvor fornøyd er du?\n> 1 2 3 4 5\n")


@pytest.fixture
def reply_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TRACKER_REPLY_DOMAIN": "replies.example.com", "TRACKER_INBOUND_TOKEN": INBOUND_TOKEN,
            "TRACKER_MAILGUN_SIGNING_KEY": SIGNING_KEY}


@pytest.fixture
def reply_settings(reply_env: dict[str, str]) -> Any:
    return load_settings(reply_env)


@pytest.fixture
def inbound(reply_settings: Any, store: Store, enqueued: list[str]) -> Any:
    app = create_app(reply_settings, store, enqueue=lambda task, *args: enqueued.append(task))
    return app.test_client()


@pytest.fixture
def mail(post_event: Any, store: Store, reply_settings: Any, smtp: Any) -> Any:
    """Send Kari (locale nb) a csat5 survey through the real loop; return the mail she got."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    assert post_event("standard", solved_event(at=at)).status_code == 202
    drain(store, reply_settings)
    assert [o.status for o in send_all(store, reply_settings)] == ["sent"]
    (message,) = smtp.wait_for(1)
    return message


def reply_to(mail: Any) -> str:
    address = mail["Reply-To"].addresses[0].addr_spec
    assert address.startswith("reply+") and address.endswith("@replies.example.com")
    return address


def sid_of(mail: Any) -> str:
    return mail["Message-ID"].strip("<>").split("@")[0]


def card(inbound: Any, store: Store) -> dict[str, Any]:
    key = store.create_key(f"lead-{secrets.token_hex(4)}")
    return inbound.get("/api/v1/customers/kari@example.no", headers={"Authorization": f"Bearer {key}"}).json


def mailgun_form(to: str, text: str, headers: list[list[str]] | None = None, key: str = SIGNING_KEY,
                 timestamp: float | None = None, **extra: str) -> dict[str, str]:
    """A Mailgun route forward() POST, signed as Mailgun signs it."""
    stamp, token = str(int(timestamp or time.time())), secrets.token_hex(25)
    listed = [["Received", "by mxa.mailgun.org"], ["From", "Kari Nordmann <kari@example.no>"], ["To", to],
              ["Subject", "Re: Hvordan gikk det med «Card declined»?"], *(headers or [])]
    return {"recipient": to, "sender": "kari@example.no", "from": "Kari Nordmann <kari@example.no>",
            "subject": "Re: Hvordan gikk det med «Card declined»?", "body-plain": text, "stripped-text": "",
            "stripped-signature": "", "message-headers": json.dumps(listed), "Message-Id": "<CAF1@mail.gmail.com>",
            "timestamp": stamp, "token": token,
            "signature": hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest(), **extra}


def postmark_json(to: str, text: str, html: str = "", headers: list[dict[str, str]] | None = None,
                  sender: str = "kari@example.no") -> dict[str, Any]:
    """Postmark's inbound webhook body, as its documentation shows it."""
    return {"FromName": "Kari Nordmann", "MessageStream": "inbound", "From": sender,
            "FromFull": {"Email": sender, "Name": "Kari Nordmann", "MailboxHash": ""},
            "To": f'"Acme" <{to}>', "ToFull": [{"Email": to, "Name": "Acme", "MailboxHash": ""}], "Cc": "",
            "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": to, "ReplyTo": "",
            "Subject": "Re: Hvordan gikk det?", "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
            "Date": "Mon, 23 Nov 2026 10:05:00 +0100", "MailboxHash": "", "TextBody": text, "HtmlBody": html,
            "StrippedTextReply": "", "Tag": "", "Attachments": [],
            "Headers": [{"Name": "X-Spam-Status", "Value": "No"}, *(headers or [])]}


def test_a_mailgun_reply_scores_the_answer_and_the_card_changes(mail, inbound, store):
    assert card(inbound, store)["responses"] == 0
    response = inbound.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "4\n\nRask og hyggelig hjelp"
                                                                  + GMAIL_QUOTE))
    assert response.status_code == 200 and response.json == {"status": "answered"}
    after = card(inbound, store)
    assert after["responses"] == 1 and after["last_response"]["rating"] == 4
    survey = store.survey(sid_of(mail))
    assert survey.status == "answered" and survey.answered_via == "email"
    assert store.response(sid_of(mail)).comment == "Rask og hyggelig hjelp"


def test_a_postmark_reply_with_basic_auth_scores_the_answer(mail, inbound, store):
    auth = base64.b64encode(f"postmark:{INBOUND_TOKEN}".encode()).decode()
    body = postmark_json(reply_to(mail), "Kjempebra!" + GMAIL_QUOTE, html="<p>Kjempebra!</p>")
    response = inbound.post("/inbound/postmark", json=body, headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 200 and response.json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 5


def test_a_sendgrid_reply_in_latin_1_is_read_in_its_charset(mail, inbound, store):
    boundary = "xYzZY"
    fields = {"to": reply_to(mail), "from": "Kari Nordmann <kari@example.no>", "subject": "Re: Hvordan gikk det?",
              "text": "Dårlig, ingen svarte på to dager." + GMAIL_QUOTE,
              "headers": "Received: by mx.sendgrid.net\r\nFrom: kari@example.no\r\nIn-Reply-To: <x@y>\r\n",
              "envelope": json.dumps({"to": [reply_to(mail)], "from": "kari@example.no"}),
              "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": "iso-8859-1"}),
              "spam_score": "0.1"}
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
             + value.encode("iso-8859-1" if name == "text" else "utf-8") + b"\r\n" for name, value in fields.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=body,
                            content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200 and response.json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 2
    assert store.response(sid_of(mail)).comment == "Dårlig, ingen svarte på to dager."


def test_a_postmark_reply_with_a_lone_surrogate_is_recorded(mail, inbound, store) -> None:
    auth = base64.b64encode(f"postmark:{INBOUND_TOKEN}".encode()).decode()
    body = postmark_json(reply_to(mail), "4\n\nFint \ud800 nok")
    response = inbound.post("/inbound/postmark", json=body, headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 200 and response.json == {"status": "answered"}, response.json
    assert card(inbound, store)["last_response"]["rating"] == 4
    assert store.response(sid_of(mail)).comment == "Fint \ufffd nok"


@pytest.mark.parametrize(("charset", "text"), [("utf-7", b"4 +2AA- fint"), ("unicode_escape", b"4 \\ud800 fint")])
def test_a_sendgrid_reply_whose_charset_decodes_to_a_lone_surrogate_is_recorded(
        mail, inbound, store, charset: str, text: bytes) -> None:
    boundary = "xYzZY"
    fields: dict[str, bytes] = {
        "to": reply_to(mail).encode(), "from": b"Kari Nordmann <kari@example.no>", "subject": b"Re: Hvordan gikk det?",
        "text": text, "headers": b"From: kari@example.no\r\n",
        "envelope": json.dumps({"to": [reply_to(mail)], "from": "kari@example.no"}).encode(),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": charset}).encode()}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value
                    + b"\r\n" for name, value in fields.items()) + f"--{boundary}--\r\n".encode()
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=body,
                            content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200 and response.json == {"status": "answered"}, response.json
    assert card(inbound, store)["last_response"]["rating"] == 4
    assert store.response(sid_of(mail)).comment == "\ufffd fint"


def test_a_reply_that_lost_its_reply_address_is_found_by_in_reply_to(mail, inbound, store):
    body = postmark_json("support@acme.test", "5", headers=[{"Name": "In-Reply-To", "Value": mail["Message-ID"]}])
    response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=body)
    assert response.json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 5


def test_in_reply_to_from_someone_else_than_the_customer_is_ignored(mail, inbound, store):
    body = postmark_json("support@acme.test", "1", headers=[{"Name": "In-Reply-To", "Value": mail["Message-ID"]}],
                         sender="mallory@example.com")
    response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=body)
    assert response.status_code == 200 and response.json == {"status": "ignored"}
    assert card(inbound, store)["responses"] == 0


def test_an_auto_reply_is_recorded_and_not_scored(mail, inbound, store):
    form = mailgun_form(reply_to(mail), "Jeg er på ferie til 5. desember.",
                        headers=[["Auto-Submitted", "auto-replied"]], subject="Automatisk svar: Hvordan gikk det?")
    response = inbound.post("/inbound/mailgun", data=form)
    assert response.status_code == 200 and response.json == {"status": "auto_reply"}
    assert store.survey(sid_of(mail)).reply_status == "auto_reply"
    assert card(inbound, store)["responses"] == 0


def test_an_ambiguous_reply_is_kept_with_its_comment_and_not_scored(mail, inbound, store):
    response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}",
                            json=postmark_json(reply_to(mail), "3 eller 4, vanskelig å si" + GMAIL_QUOTE))
    assert response.json == {"status": "ambiguous"}
    survey = store.survey(sid_of(mail))
    assert survey.reply_status == "ambiguous" and survey.reply_comment == "3 eller 4, vanskelig å si"
    assert survey.status == "sent" and card(inbound, store)["responses"] == 0


def test_a_reply_without_a_rating_is_kept_and_not_scored(mail, inbound, store):
    response = inbound.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "Kan dere ringe meg?"))
    assert response.json == {"status": "no_rating"}
    assert store.survey(sid_of(mail)).reply_comment == "Kan dere ringe meg?"
    assert card(inbound, store)["responses"] == 0


def test_a_provider_retry_counts_the_answer_once(mail, inbound, store):
    form = mailgun_form(reply_to(mail), "2")
    for _ in range(3):
        assert inbound.post("/inbound/mailgun", data=form).json == {"status": "answered"}
    assert card(inbound, store)["responses"] == 1


def test_an_emailed_rating_changes_an_answer_from_the_page_and_keeps_its_comment(mail, inbound, store, client):
    assert client.post(survey_link(mail, 2), data={"rating": "2", "comment": "Treg"}).status_code in (200, 303)
    assert inbound.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "4")).json == {"status": "answered"}
    after = card(inbound, store)
    assert after["responses"] == 1 and after["last_response"]["rating"] == 4
    assert store.response(sid_of(mail)).comment == "Treg"


def test_an_unhappy_emailed_answer_queues_an_alert(mail, reply_env, store, enqueued):
    app = create_app(load_settings({**reply_env, "TRACKER_ALERT_URLS": "https://alerts.example.com/hook"}), store,
                     enqueue=lambda task, *args: enqueued.append(task))
    response = app.test_client().post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "1 - elendig"))
    assert response.json == {"status": "answered"}
    assert "tracker.send_alert" in enqueued


def test_unknown_tampered_and_expired_surveys_are_ignored_with_200(mail, inbound, store, reply_settings):
    token = reply_to(mail).split("+")[1].split("@")[0]
    tampered = f"reply+{token[:-1]}{'a' if token[-1] != 'a' else 'b'}@replies.example.com"
    for to in ("support@acme.test", tampered, "reply+nonsense@replies.example.com"):
        response = inbound.post("/inbound/mailgun", data=mailgun_form(to, "5"))
        assert response.status_code == 200 and response.json == {"status": "ignored"}
    expires = store.survey(sid_of(mail)).expires_at_ms
    late = InboundReply(recipients=(reply_to(mail),), sender="kari@example.no", text="5")
    assert handle_reply(store, reply_settings, late, expires + 1) == "ignored"
    assert card(inbound, store)["responses"] == 0


def test_a_reply_to_a_survey_mailed_before_the_secret_key_changed_counts_while_the_old_key_is_kept(
        mail, reply_env, store):
    # TRACKER_SECRET_KEY_PREVIOUS (tests/test_secret_rotation.py): the reply address was signed with the old key.
    rotated = {**reply_env, "TRACKER_SECRET_KEY": secrets.token_urlsafe(32)}
    forgotten = create_app(load_settings(rotated), store, enqueue=lambda task, *args: None).test_client()
    assert forgotten.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "4")).json == {"status": "ignored"}
    kept = create_app(load_settings({**rotated, "TRACKER_SECRET_KEY_PREVIOUS": reply_env["TRACKER_SECRET_KEY"]}),
                      store, enqueue=lambda task, *args: None).test_client()
    assert kept.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "4")).json == {"status": "answered"}
    assert store.survey(sid_of(mail)).answered_via == "email"


def test_a_tampered_or_missing_mailgun_signature_gets_401(mail, inbound, store):
    form = mailgun_form(reply_to(mail), "5")
    for broken in ({"signature": "0" * 64}, {"token": form["token"] + "x"}, {"signature": ""}):
        assert inbound.post("/inbound/mailgun", data={**form, **broken}).status_code == 401
    wrong_key = mailgun_form(reply_to(mail), "5", key="another-key")
    response = inbound.post("/inbound/mailgun", data=wrong_key)
    assert response.status_code == 401 and response.json["code"] == 401
    assert card(inbound, store)["responses"] == 0


def test_a_stale_mailgun_timestamp_gets_401(mail, inbound):
    for skew in (-600, 600):
        form = mailgun_form(reply_to(mail), "5", timestamp=time.time() + skew)
        assert inbound.post("/inbound/mailgun", data=form).status_code == 401
    assert inbound.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "5", timestamp=time.time() - 120)
                        ).status_code == 200


def test_a_missing_or_wrong_shared_token_gets_401(mail, inbound):
    body = postmark_json(reply_to(mail), "5")
    for provider in ("postmark", "sendgrid"):
        assert inbound.post(f"/inbound/{provider}", json=body).status_code == 401
        assert inbound.post(f"/inbound/{provider}?token=wrong", json=body).status_code == 401
    bad = base64.b64encode(b"postmark:wrong").decode()
    response = inbound.post("/inbound/postmark", json=body, headers={"Authorization": f"Basic {bad}"})
    assert response.status_code == 401 and response.json["status"] == "Unauthorized"


def test_an_unconfigured_or_unknown_provider_gets_404(client, inbound):
    for provider in ("mailgun", "postmark", "sendgrid"):
        response = client.post(f"/inbound/{provider}?token={INBOUND_TOKEN}", data={"x": "y"})
        assert response.status_code == 404 and response.json["code"] == 404
    assert inbound.post(f"/inbound/mandrill?token={INBOUND_TOKEN}", json={}).status_code == 404


def test_wrong_media_type_bad_json_and_bad_shape_get_clear_errors(inbound):
    url = f"/inbound/postmark?token={INBOUND_TOKEN}"
    assert inbound.post(url, data={"TextBody": "5"}).status_code == 415
    assert inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", json={"text": "5"}).status_code == 415
    assert inbound.post(url, data=b"{not json", content_type="application/json").status_code == 400
    response = inbound.post(url, json={"Headers": "not a list", "Subject": 5})
    assert response.status_code == 422 and set(response.json["errors"]) == {"Headers", "Subject", "FromFull"}
    assert inbound.post(url, json=["a list"]).status_code == 422


def test_a_mail_over_ten_mebibytes_gets_413(inbound):
    body = json.dumps({"TextBody": "x" * (10 * 1024 * 1024)})
    response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", data=body, content_type="application/json")
    assert response.status_code == 413 and response.json["code"] == 413


def test_storage_being_down_gets_503_so_the_provider_retries(reply_settings, mail):
    down = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(reply_settings, down, enqueue=lambda *a: None).test_client()
    response = client.post("/inbound/mailgun", data=mailgun_form(reply_to(mail), "5"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


TEXT = st.text(max_size=300) | st.sampled_from(["5", "👍", "3 eller 4", "Bra" + GMAIL_QUOTE, "<p>4</p>", ""])
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                   max_size=3), max_leaves=8)
PROPERTY = hypothesis_settings(max_examples=40, deadline=None,
                               suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(text=TEXT, html=TEXT, subject=TEXT, to=st.sampled_from(["reply", "other", ""]) | st.text(max_size=40),
       headers=st.text(max_size=200))
def test_no_mailgun_reply_text_produces_a_500(mail, inbound, text, html, subject, to, headers):
    address = {"reply": reply_to(mail), "other": "support@acme.test"}.get(to, to)
    form = mailgun_form(address, text, **{"body-html": html, "subject": subject, "message-headers": headers})
    assert inbound.post("/inbound/mailgun", data=form).status_code == 200


@PROPERTY
@given(text=TEXT, extra=st.dictionaries(st.sampled_from(["TextBody", "HtmlBody", "Subject", "Headers", "ToFull",
                                                         "FromFull", "To", "StrippedTextReply"]), JSONISH))
def test_no_postmark_body_produces_a_500(mail, inbound, text, extra):
    body = {**postmark_json(reply_to(mail), text), **extra}
    assert inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=body).status_code in (200, 422)


@PROPERTY
@given(text=TEXT, html=TEXT, headers=st.text(max_size=200), envelope=st.text(max_size=60),
       charsets=st.text(max_size=60) | st.just('{"text": "no-such-charset"}'), raw=st.text(max_size=300))
def test_no_sendgrid_post_produces_a_500(mail, inbound, text, html, headers, envelope, charsets, raw):
    data = {"to": reply_to(mail), "from": "kari@example.no", "text": text, "html": html, "headers": headers,
            "envelope": envelope, "charsets": charsets, "email": raw}
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=data, content_type="multipart/form-data")
    assert response.status_code == 200


def test_a_sendgrid_reply_in_raw_mode_is_read_from_the_whole_mime_mail(mail, inbound, store):
    raw = (f"From: Kari Nordmann <kari@example.no>\r\nTo: {reply_to(mail)}\r\nSubject: Re: Hvordan gikk det?\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           "<div>Sv=E6rt forn=F8yd</div><blockquote>1 2 3 4 5</blockquote>\r\n")
    data = {"to": reply_to(mail), "from": "kari@example.no", "email": raw,
            "envelope": json.dumps({"to": [reply_to(mail)], "from": "kari@example.no"})}
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=data, content_type="multipart/form-data")
    assert response.json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 5


# --- the providers' published payloads, and no body of any shape gives a 500 ------------------------------

PUBLISHED = Path(__file__).parent / "inbound_fixtures"
SENDGRID_TYPE = "multipart/form-data; boundary=xYzZY"


def published_postmark() -> dict[str, Any]:
    return json.loads((PUBLISHED / "postmark_inbound.json").read_text("utf-8"))


def published_mailgun(**changes: str) -> dict[str, str]:
    """Mailgun's route-tester sample, signed afresh with the test key."""
    form = {**json.loads((PUBLISHED / "mailgun_route_sample.json").read_text("utf-8")), **changes}
    form["timestamp"], form["token"] = str(int(time.time())), secrets.token_hex(25)
    form["signature"] = hmac.new(SIGNING_KEY.encode(), (form["timestamp"] + form["token"]).encode(),
                                 hashlib.sha256).hexdigest()
    return form


def published_sendgrid(name: str, replace: dict[bytes, bytes] | None = None) -> bytes:
    body = (PUBLISHED / f"sendgrid_{name}.multipart").read_bytes()
    for old, new in (replace or {}).items():
        body = body.replace(old, new)
    return body


def assert_envelope(response: Any, sent: set[str] | None = None) -> None:
    """A refused body gets the error envelope; the fields it names are fields that were sent."""
    assert response.status_code in (400, 422), (response.status_code, response.data[:300])
    assert response.json["code"] == response.status_code and response.json["message"]
    if sent is not None and "errors" in response.json:
        assert set(response.json["errors"]) <= sent | {"_schema"}, response.json


def test_the_providers_published_examples_are_read_and_ignored_as_not_a_survey_reply(inbound):
    postmark = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=published_postmark())
    mailgun = inbound.post("/inbound/mailgun", data=published_mailgun())
    sendgrid = [inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=published_sendgrid(name),
                             content_type=SENDGRID_TYPE) for name in ("default", "raw")]
    for response in (postmark, mailgun, *sendgrid):
        assert response.status_code == 200 and response.json == {"status": "ignored"}, response.data


def test_the_published_examples_sent_to_a_survey_address_score_the_answer(mail, inbound, store):
    to = reply_to(mail)
    body = {**published_postmark(), "OriginalRecipient": to, "StrippedTextReply": "4", "FromFull":
            {"Email": "kari@example.no", "Name": "Kari", "MailboxHash": ""}}
    assert inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=body).json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 4
    form = published_mailgun(recipient=to, **{"stripped-text": "2"})
    assert inbound.post("/inbound/mailgun", data=form).json == {"status": "answered"}
    assert card(inbound, store)["last_response"]["rating"] == 2
    for name, text in (("default", b"Hello Twilio SendGrid!"), ("raw", b"Hello Twilio SendGrid!")):
        raw = published_sendgrid(name, {b"inbound@inbound.example.com": to.encode(),
                                        b"inbound@inbound.inbound.com": to.encode(), text: b"5"})
        response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=raw, content_type=SENDGRID_TYPE)
        assert response.json == {"status": "answered"}, name
        assert card(inbound, store)["last_response"]["rating"] == 5
        # Back to 1, so the next variant is seen to change the answer itself.
        assert inbound.post("/inbound/mailgun", data=published_mailgun(recipient=to, **{"stripped-text": "1"})
                            ).json == {"status": "answered"}


def test_a_postmark_body_without_from_full_gets_422_naming_the_field(inbound):
    for broken in ({k: v for k, v in published_postmark().items() if k != "FromFull"},
                   {**published_postmark(), "FromFull": None}):
        response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=broken)
        assert_envelope(response)
        assert response.status_code == 422 and set(response.json["errors"]) == {"FromFull"}, response.json


@pytest.mark.parametrize("charset", ["base64", "rot13", "hex", "zlib", "uu"])
def test_a_sendgrid_field_in_a_codec_that_is_not_a_text_encoding_gets_the_envelope_naming_charsets(
        mail, inbound, store, charset):
    body = published_sendgrid("default", {b"inbound@inbound.example.com": reply_to(mail).encode(),
                                          b'"text":"UTF-8"': f'"text":"{charset}"'.encode()})
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=body, content_type=SENDGRID_TYPE)
    assert_envelope(response)
    assert response.status_code == 422 and set(response.json["errors"]) == {"charsets"}, response.json
    assert charset in response.json["errors"]["charsets"][0]
    assert store.response(sid_of(mail)) is None


def _nested_multipart(depth: int, newline: str = "\r\n") -> str:
    """A MIME body whose multiparts nest depth deep (the email package reads them by recursion)."""
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"{newline}{newline}--b{n}{newline}'
                      for n in range(depth))
    closing = "".join(f"--b{n}--{newline}" for n in reversed(range(depth)))
    return f"{opening}Content-Type: text/plain{newline}{newline}5{newline}{closing}"


def test_mime_nested_too_deeply_gets_the_envelope_not_a_500(mail, inbound, store):
    raw = f"From: kari@example.no\r\nTo: {reply_to(mail)}\r\nMIME-Version: 1.0\r\n" + _nested_multipart(3000)
    data = {"to": reply_to(mail), "from": "kari@example.no", "email": raw}
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=data, content_type="multipart/form-data")
    assert_envelope(response)
    assert response.status_code == 422 and set(response.json["errors"]) == {"email"}, response.json
    form = (b"--xYzZY\r\nContent-Disposition: form-data; name=\"text\"\r\n"
            + _nested_multipart(3000).encode() + b"\r\n--xYzZY--\r\n")
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=form, content_type=SENDGRID_TYPE)
    assert_envelope(response)
    assert response.status_code == 400 and "nested too deeply" in response.json["message"], response.json
    assert store.response(sid_of(mail)) is None


@pytest.mark.parametrize("charset", ["undefined", "idna", "no-such-charset"])
def test_a_sendgrid_field_in_an_unknown_or_undecodable_charset_is_read_as_utf_8(mail, inbound, store, charset):
    body = published_sendgrid("default", {b"inbound@inbound.example.com": reply_to(mail).encode(),
                                          b"Hello Twilio SendGrid!": "4 – takk".encode(),
                                          b'"text":"UTF-8"': f'"text":"{charset}"'.encode()})
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=body, content_type=SENDGRID_TYPE)
    assert response.status_code == 200 and response.json == {"status": "answered"}, response.data
    assert store.response(sid_of(mail)).comment == "takk"


CODECS = st.sampled_from(["base64", "rot13", "hex", "zlib", "bz2", "uu", "quopri", "undefined", "idna", "punycode",
                          "utf-7", "utf-16", "unicode_escape", "iso-8859-1", "UTF-8", ""]) | st.text(max_size=12)
POSTMARK_KEYS = sorted(published_postmark())
SENDGRID_FIELDS = ["to", "cc", "from", "subject", "text", "html", "headers", "envelope", "charsets", "email",
                   "attachments", "attachment-info", "spam_score", "SPF", "dkim"]


@PROPERTY
@given(body=st.dictionaries(st.sampled_from(POSTMARK_KEYS) | st.text(max_size=8), JSONISH, max_size=6),
       drop=st.sets(st.sampled_from(POSTMARK_KEYS), max_size=4), whole=st.none() | JSONISH)
def test_no_postmark_json_of_any_shape_produces_a_500(inbound, body, drop, whole):
    sent = {k: v for k, v in {**published_postmark(), **body}.items() if k not in drop}
    response = inbound.post(f"/inbound/postmark?token={INBOUND_TOKEN}", json=sent if whole is None else whole)
    if response.status_code != 200:
        assert_envelope(response, set(sent) | {"FromFull"} if whole is None else None)  # sent, or required


@PROPERTY
@given(fields=st.dictionaries(st.sampled_from(SENDGRID_FIELDS) | st.text(max_size=8),
                              st.binary(max_size=120) | TEXT.map(str.encode), max_size=8),
       charsets=st.dictionaries(st.sampled_from(SENDGRID_FIELDS), CODECS, max_size=5),
       encoding=st.sampled_from(["7bit", "base64", "quoted-printable", "x-nonsense"]))
def test_no_sendgrid_multipart_of_any_shape_produces_a_500(mail, inbound, fields, charsets, encoding):
    fields = {"to": reply_to(mail).encode(), **fields, "charsets": json.dumps(charsets).encode()}
    parts = [f'--xYzZY\r\nContent-Disposition: form-data; name="{name.replace(chr(34), "")}"\r\n'
             f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode() + value + b"\r\n"
             for name, value in fields.items()]
    body = b"".join(parts) + b"--xYzZY--\r\n"
    response = inbound.post(f"/inbound/sendgrid?token={INBOUND_TOKEN}", data=body, content_type=SENDGRID_TYPE)
    if response.status_code != 200:
        assert_envelope(response)


@PROPERTY
@given(fields=st.dictionaries(st.sampled_from(sorted(published_mailgun())) | st.text(max_size=8),
                              TEXT, max_size=6))
def test_no_signed_mailgun_form_of_any_shape_produces_a_500(inbound, fields):
    form = published_mailgun(**{k: v for k, v in fields.items() if k not in ("timestamp", "token", "signature")})
    response = inbound.post("/inbound/mailgun", data=form)
    if response.status_code != 200:
        assert_envelope(response)
