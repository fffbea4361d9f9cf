"""A custom survey's extra questions and satisfied follow-up on the customer's pages, in the API and on the
dashboard, and `tracker survey test-send`: through the real mail, pages and store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import Page, links, survey_by_mail, tracker
from tests.test_dashboard import sign_in
from tests.test_notices import notices
from tracker.i18n.catalogue import text
from tracker.store import Store
from tracker.surveys.tokens import read_token

SURVEYS = """
[[surveys]]
brand = "acme"
question = "How was your chat with Acme?"
colour = "#0b6e4f"

[[surveys.extra_questions]]
id = "first_contact"
type = "choice"
question = "Was this your first contact?"
choices = ["yes", "no"]

[[surveys.extra_questions]]
id = "improve"
type = "text"
question = "What could we improve?"

[[surveys]]
brand = "praise"
followup_satisfied = true
satisfied_question = "What made your day?"
satisfied_reasons = ["Fast", "Friendly"]

[[surveys.extra_questions]]
id = "channel"
type = "choice"
question = "How did you reach us?"
choices = ["chat", "phone", "email"]

[[surveys]]
brand = "kind"
followup_satisfied = true

[[surveys]]
brand = "shop"
followup_question = "What let you down?"
followup_reasons = ["Late delivery", "Wrong size"]
"""
KARI = "kari@example.no"


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any, tmp_path: Path) -> dict[str, str]:
    """The usual environment with a surveys file: acme asks two extra questions, praise asks what went well."""
    path = tmp_path / "surveys.toml"
    path.write_text(SURVEYS)
    # An alert URL, so that an unhappy answer calls for an alert (the app's enqueue records it, nothing is sent).
    return session_env(redis_url, broker_url, smtp, TRACKER_SURVEYS_FILE=str(path),
                       TRACKER_ALERT_URLS="http://127.0.0.1:9/alerts")


def mailed(post_event: Any, store: Store, env: dict[str, str], smtp: Any, brand: str = "acme",
           locale: str = "en") -> str:
    """Mail Kari a csat5 survey about a ticket of this brand; return the survey page's path."""
    original = post_event

    def with_brand(source: str, body: dict[str, Any], **kwargs: Any) -> Any:
        body["ticket"]["brand"] = brand
        return original(source, body, **kwargs)

    mail = survey_by_mail(with_brand, store, env, smtp, "csat5", locale)
    return links(mail.get_body(("plain",)).get_content())[1].split("?")[0]


def sid_of(path: str) -> str:
    return path.split("/")[2].split("-")[0]


def page_of(response: Any) -> Page:
    return Page(response.get_data(as_text=True))


def textareas(response: Any) -> list[str]:
    html = response.get_data(as_text=True)
    return [part.split('name="', 1)[1].split('"', 1)[0] for part in html.split("<textarea")[1:]]


def test_a_satisfied_answer_is_asked_the_extra_questions_then_thanked(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    asked = client.post(path, data={"rating": "5", "comment": "Quick"})
    assert asked.status_code == 200
    page = page_of(asked)
    assert "Was this your first contact?" in page.text and "What could we improve?" in page.text
    assert page.radios("extra-first_contact") == ["yes", "no"] and textareas(asked) == ["extra-improve"]
    assert text("en", "extra.skip") in page.text and not page.checked("extra-first_contact")
    assert store.response(sid_of(path)).extra is None

    done = client.post(f"{path}/extra", data={"extra-first_contact": "no", "extra-improve": "Opening hours\r\n"})
    assert done.status_code == 200 and text("en", "page.thanks_title") in page_of(done).text
    answer = store.response(sid_of(path))
    assert answer.extra == {"first_contact": "no", "improve": "Opening hours"}
    assert (answer.rating, answer.comment) == (5, "Quick")


def test_an_unhappy_answer_gets_the_follow_up_first_then_the_extra_questions(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    step = client.post(path, data={"rating": "2"})
    assert page_of(step).radios("reason") and not page_of(step).radios("extra-first_contact")
    extra = client.post(f"{path}/reason", data={"reason": "slow", "comment": "Waited"})
    assert extra.status_code == 200 and page_of(extra).radios("extra-first_contact") == ["yes", "no"]
    assert client.post(f"{path}/extra", data={"extra-first_contact": "yes"}).status_code == 200
    answer = store.response(sid_of(path))
    assert (answer.rating, answer.reason, answer.comment) == (2, "slow", "Waited")
    assert answer.extra == {"first_contact": "yes"}


def test_a_choice_not_offered_or_a_text_too_long_shows_the_page_again_and_keeps_everything(
        post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    client.post(path, data={"rating": "4"})
    client.post(f"{path}/extra", data={"extra-first_contact": "yes"})
    before = store.response(sid_of(path))

    wrong = client.post(f"{path}/extra", data={"extra-first_contact": "maybe", "extra-improve": "Kept text"})
    assert wrong.status_code == 422
    page = page_of(wrong)
    assert text("en", "extra.error") in page.text and text("en", "extra.error_choice") in page.text
    assert "Kept text" in page.text and page.radios("extra-first_contact") == ["yes", "no"]

    long = client.post(f"{path}/extra", data={"extra-first_contact": "no", "extra-improve": "x" * 1001})
    assert long.status_code == 422
    page = page_of(long)
    assert text("en", "extra.error_length", max=1000) in page.text and page.checked("extra-first_contact") == ["no"]
    assert store.response(sid_of(path)) == before

    # 1000 characters, line breaks sent as CRLF counted as one each, is within the limit.
    fits = "line\r\n" * 199 + "abcde"
    assert client.post(f"{path}/extra", data={"extra-improve": fits}).status_code == 200
    assert len(store.response(sid_of(path)).extra["improve"]) == 1000


def test_extra_answers_can_be_changed_cleared_and_skipped_until_expiry(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    sid = sid_of(path)
    client.post(path, data={"rating": "5"})
    client.post(f"{path}/extra", data={"extra-first_contact": "yes", "extra-improve": "Nothing"})
    counted = store.aggregate("customer", KARI)

    client.post(f"{path}/extra", data={"extra-first_contact": "no"})
    assert store.response(sid).extra == {"first_contact": "no"}  # the latest post counts, whole
    again = client.get(f"{path}/extra")
    assert again.status_code == 200 and page_of(again).checked("extra-first_contact") == ["no"]

    skipped = client.post(f"{path}/extra", data={"skip": "1", "extra-first_contact": "yes"})
    assert text("en", "page.thanks_title") in page_of(skipped).text
    assert store.response(sid).extra == {"first_contact": "no"}  # skipping keeps what was answered

    client.post(path, data={"rating": "4"})  # a new rating keeps the extra answers
    assert store.response(sid).extra == {"first_contact": "no"}

    client.post(f"{path}/extra", data={"extra-first_contact": "", "extra-improve": "  "})
    assert store.response(sid).extra is None  # every answer taken back
    assert store.aggregate("customer", KARI).n == counted.n == 1  # the rating still counts once
    changed = notices(store, KARI, "survey.changed")
    assert changed, "a change of the extra answers is told"


def test_get_never_changes_anything_and_the_extra_page_needs_an_answer_first(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    sid = sid_of(path)
    early = client.get(f"{path}/extra")
    assert early.status_code == 303 and early.headers["Location"].endswith(path)
    posted = client.post(f"{path}/extra", data={"extra-first_contact": "yes"})
    assert posted.status_code == 303 and store.response(sid) is None
    client.post(path, data={"rating": "5"})
    before = store.survey(sid), store.response(sid)
    for _ in range(2):
        assert client.get(f"{path}/extra").status_code == 200
        assert client.get(f"{path}/extra?extra-first_contact=yes").status_code == 200
    assert (store.survey(sid), store.response(sid)) == before


def test_a_survey_without_extra_questions_goes_straight_to_thanks(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp, brand="other")
    done = client.post(path, data={"rating": "5"})
    assert text("en", "page.thanks_title") in page_of(done).text
    assert client.get(f"{path}/extra").status_code == 303
    assert client.post(f"{path}/extra", data={"extra-first_contact": "yes"}).status_code == 303
    assert store.response(sid_of(path)).extra is None


def test_a_satisfied_follow_up_asks_its_own_question_and_stores_the_reason(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp, brand="praise")
    sid = sid_of(path)
    step = client.post(path, data={"rating": "5", "comment": "Great"})
    page = page_of(step)
    assert "What made your day?" in page.text and text("en", "followup.happy_title") in page.text
    assert page.radios("reason") == ["Fast", "Friendly"] and not page.checked("reason")
    assert "Great" in page.text  # the comment box holds the comment given

    refused = client.post(f"{path}/reason", data={"reason": "slow", "comment": "Great"})
    assert refused.status_code == 422 and text("en", "followup.error") in page_of(refused).text
    extra = client.post(f"{path}/reason", data={"reason": "Friendly", "comment": "Great, thanks"})
    assert page_of(extra).radios("extra-channel") == ["chat", "phone", "email"]
    answer = store.response(sid)
    assert (answer.rating, answer.reason, answer.comment, answer.satisfied) == (5, "Friendly", "Great, thanks", True)
    assert page_of(client.get(f"{path}/reason")).checked("reason") == ["Friendly"]

    # Another satisfied rating keeps the reason; an unhappy one clears it and asks the unhappy follow-up.
    assert page_of(client.post(path, data={"rating": "4"})).checked("reason") == ["Friendly"]
    assert store.response(sid).reason == "Friendly"
    unhappy = page_of(client.post(path, data={"rating": "1"}))
    assert "slow" in unhappy.radios("reason") and not unhappy.checked("reason")
    assert store.response(sid).reason is None


def test_a_satisfied_follow_up_without_reasons_asks_its_default_question_with_a_comment(
        post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp, brand="kind", locale="nb")
    step = client.post(path, data={"rating": "5"})
    page = page_of(step)
    assert text("nb", "followup.happy_legend") in page.text and page.radios("reason") == []
    done = client.post(f"{path}/reason", data={"comment": "Rask hjelp"})
    assert text("nb", "page.thanks_title") in page_of(done).text
    assert store.response(sid_of(path)).comment == "Rask hjelp"


def test_the_unhappy_follow_up_asks_the_files_question_and_offers_its_reasons(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp, brand="shop")
    page = page_of(client.post(path, data={"rating": "1"}))
    assert "What let you down?" in page.text and text("en", "followup.legend") not in page.text
    assert page.radios("reason") == ["Late delivery", "Wrong size"]
    assert client.post(f"{path}/reason", data={"reason": "slow"}).status_code == 422
    assert client.post(f"{path}/reason", data={"reason": "Wrong size"}).status_code == 200
    assert store.response(sid_of(path)).reason == "Wrong size"


def test_without_a_satisfied_follow_up_a_reason_posted_for_a_satisfied_answer_is_dropped(
        post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    client.post(path, data={"rating": "5"})
    assert client.get(f"{path}/reason").status_code == 303
    client.post(f"{path}/reason", data={"reason": "slow", "comment": "Fine"})
    assert (store.response(sid_of(path)).reason, store.response(sid_of(path)).comment) == (None, "Fine")


def test_the_api_and_the_dashboard_show_the_extra_answers(post_event, store, env, smtp, client):
    path = mailed(post_event, store, env, smtp)
    client.post(path, data={"rating": "3", "comment": "Fine"})
    client.post(f"{path}/reason", data={"reason": "unclear"})
    client.post(f"{path}/extra", data={"extra-first_contact": "no", "extra-improve": "Say <what> you do"})
    key = store.create_key("lead")
    body = client.get(f"/api/v1/customers/{KARI}/responses", headers={"Authorization": f"Bearer {key}"}).json
    (row,) = body["responses"]
    assert row["extra"] == {"first_contact": "no", "improve": "Say <what> you do"} and row["reason"] == "unclear"
    described = client.get("/api/openapi.json").json["components"]["schemas"]
    assert any("extra" in schema.get("properties", {}) for schema in described.values())

    assert sign_in(client, key).status_code == 303
    html = client.get(f"/dashboard/customers/{KARI}").get_data(as_text=True)
    answers = Page(html.split('id="customer-answers"', 1)[1].split("</section>", 1)[0]).text
    assert "Was this your first contact? no What could we improve? Say <what> you do" in answers
    assert "Say <what>" not in html  # escaped


def test_test_send_mails_a_real_survey_whose_answer_no_score_counts(post_event, store, env, smtp, client, enqueued):
    # A real customer's answered survey, so the aggregates and summary have something to stay equal to.
    path = mailed(post_event, store, env, smtp)
    client.post(path, data={"rating": "2"})
    alerts = [task for task in enqueued if "alert" in str(task)]
    assert len(alerts) == 1  # a real unhappy answer calls for an alert
    key = store.create_key("lead")
    auth = {"Authorization": f"Bearer {key}"}
    overall, customer = store.aggregate("overall", "all"), store.aggregate("customer", KARI)
    summary = client.get("/api/v1/summary", headers=auth).json
    card = client.get(f"/api/v1/customers/{KARI}", headers=auth).json
    told = notices(store, KARI)

    sent = tracker(env, "survey", "test-send", KARI, "--brand", "acme", "--locale", "nb")
    assert sent.returncode == 0, sent.stderr
    assert "test" in sent.stdout.lower() and "Traceback" not in sent.stderr
    link = sent.stdout.split("Survey link: ", 1)[1].split()[0]
    mail = smtp.wait_for(2)[-1]
    assert mail["To"].addresses[0].addr_spec == KARI and mail["Content-Language"] == "nb"
    plain = mail.get_body(("plain",)).get_content()
    test_path = links(plain)[1].split("?")[0]
    assert link.endswith(test_path)
    survey = store.survey(read_token(env["TRACKER_SECRET_KEY"], test_path.split("/")[2]))
    assert survey.test == "1" and survey.status == "sent" and survey.brand == "acme" and survey.lang == "nb"

    # Kari answers it unhappily, with extra answers: stored, but nothing counts or is told.
    step = client.post(test_path, data={"rating": "1", "comment": "Testing"})
    assert step.status_code == 200 and page_of(step).radios("reason")
    client.post(f"{test_path}/reason", data={"reason": "slow"})
    assert client.post(f"{test_path}/extra", data={"extra-first_contact": "yes"}).status_code == 200
    answer = store.response(survey.sid)
    assert (answer.rating, answer.reason, answer.extra) == (1, "slow", {"first_contact": "yes"})
    assert store.aggregate("overall", "all") == overall and store.aggregate("customer", KARI) == customer
    assert client.get("/api/v1/summary", headers=auth).json == summary
    assert client.get(f"/api/v1/customers/{KARI}", headers=auth).json == card
    assert notices(store, KARI) == told
    assert [task for task in enqueued if "alert" in str(task)] == alerts
    assert [case.survey for case in store.cases_of(KARI)] in ([], [sid_of(path)])  # none for the test survey

    # It took no throttle slot: another test send goes out at once, and so would a real survey.
    assert tracker(env, "survey", "test-send", KARI).returncode == 0
    smtp.wait_for(3)


@pytest.mark.parametrize(("args", "says"), [
    (("not-an-address",), "EMAIL"),
    (("kari@example.no", "--locale", "xx"), "--locale"),
    (("kari@example.no", "--scale", "stars"), "--scale"),
])
def test_test_send_refuses_a_bad_request_in_one_line(env, smtp, args, says):
    refused = tracker(env, "survey", "test-send", *args)
    assert refused.returncode != 0 and says in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert smtp.messages == []


def test_test_send_says_in_one_line_when_the_mail_server_is_down(env, store):
    from tracker.cli.dev import free_port

    down = tracker({**env, "TRACKER_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}, "survey", "test-send", KARI)
    assert down.returncode != 0 and "not sent" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1 and "Traceback" not in down.stderr
    assert store.customer_surveys(KARI) == []


def test_test_send_refused_by_the_server_says_so(env, smtp, store):
    smtp.unknown_mailboxes.add("nobody@example.no")
    refused = tracker(env, "survey", "test-send", "nobody@example.no")
    assert refused.returncode != 0 and "550" in refused.stderr and "Traceback" not in refused.stderr
    assert not store.is_suppressed("nobody@example.no")  # a test is no reason to stop real surveys
