"""Survey policy with a real SMTP server: who gets a survey, when, exactly once, and what the mail says."""

from __future__ import annotations

import itertools
import re
import time
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import solved_event
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.events import iso_from_ms
from tracker.i18n.catalogue import text
from tracker.ingest import apply as ingest
from tracker.mail.smtp import SmtpSender
from tracker.scores.cards import customer_card
from tracker.scores.maths import DAY_MS
from tracker.surveys import due as surveys
from tracker.surveys.tokens import make_token, read_token, survey_id

KARI = "kari@example.no"
TKEY = "standard:T-1001"
PUBLIC = "http://127.0.0.1:8000"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
LINK = re.compile(r"http://127\.0\.0\.1:8000/s/([a-z2-7]+-[a-z2-7]+)\?rating=(\d+)")


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def deliver(post_event: Any) -> Any:
    """Deliver one ticket event through the receiver, at a time given in ms."""
    counter = itertools.count()

    def send(at_ms: int, kind: str = "ticket.solved", ticket: str = "T-1001", locale: str = "nb",
             **fields: Any) -> dict[str, Any]:
        event = solved_event(ticket=ticket, at=iso_from_ms(at_ms), kind=kind, **fields)
        event["customer"]["locale"] = locale
        response = post_event("standard", event, headers={"webhook-id": f"msg-{next(counter)}"})
        assert response.status_code == 202, response.json
        return event

    return send


def drain(store: Any, settings: Any) -> None:
    ingest.drain(store, settings, "test")


def due_ever(store: Any) -> list[str]:
    """Return what the sweep would ever hand out (it leases them: read it at the end)."""
    return surveys.sweep(store, FAR_FUTURE_MS)[1]


def send_due_now(store: Any, settings: Any, at_ms: int | None = None) -> list[surveys.Outcome]:
    """Sweep what is due at at_ms and send it, as the beat and a worker would."""
    at_ms = now_ms() if at_ms is None else at_ms
    claimed, tkeys = surveys.sweep(store, at_ms)
    with SmtpSender(settings.smtp_url) as sender:
        return [surveys.send_due(store, settings, sender, tkey, claimed, at_ms) for tkey in tkeys]


def solve_and_send(deliver: Any, store: Any, settings: Any, ticket: str = "T-1001", ago_s: int = 60,
                   **fields: Any) -> list[surveys.Outcome]:
    deliver(now_ms() - ago_s * 1000, ticket=ticket, **fields)
    drain(store, settings)
    return send_due_now(store, settings)


def token_of(message: Any) -> str:
    tokens = {token for token, _ in LINK.findall(message.get_body(("plain",)).get_content())}
    assert len(tokens) == 1, tokens
    return tokens.pop()


def sid_of(message: Any, secret: str) -> str:
    sid = read_token(secret, token_of(message))
    assert sid
    return sid


def unsubscribe_path(message: Any) -> str:
    header = str(message["List-Unsubscribe"])
    match = re.fullmatch(r"<([^>]+)>", header.strip())
    assert match, header
    url = urlsplit(match.group(1))
    assert f"{url.scheme}://{url.netloc}" == PUBLIC
    return url.path


@pytest.fixture
def unthrottled(env: dict[str, str]) -> Any:
    return load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "0"})


# One survey per ticket


def test_one_survey_per_ticket_even_when_the_due_entry_is_swept_twice(deliver, store, settings, smtp):
    deliver(now_ms() - 60_000)
    drain(store, settings)
    now = now_ms()
    first_claim, first = surveys.sweep(store, now)
    # The first worker is slow: its lease runs out and another sweep hands the same ticket out again.
    second_claim, second = surveys.sweep(store, now + surveys.LEASE_MS + 1)
    assert first == second == [TKEY]
    with SmtpSender(settings.smtp_url) as sender:
        outcomes = [surveys.send_due(store, settings, sender, TKEY, first_claim, now),
                    surveys.send_due(store, settings, sender, TKEY, second_claim, now + surveys.LEASE_MS + 1)]
    assert [o.status for o in outcomes] == ["sent", "none"]
    assert len(smtp.messages) == 1
    assert surveys.sweep(store, now + 10 * surveys.LEASE_MS)[1] == []
    assert customer_card(store, settings, KARI, now_ms()).surveys_sent == 1


def test_sending_the_same_claim_twice_sends_one_mail(deliver, store, settings, smtp):
    deliver(now_ms() - 60_000)
    drain(store, settings)
    now = now_ms()
    claimed, _tkeys = surveys.sweep(store, now)
    with SmtpSender(settings.smtp_url) as sender:
        first = surveys.send_due(store, settings, sender, TKEY, claimed, now)
        again = surveys.send_due(store, settings, sender, TKEY, claimed, now)
    assert (first.status, again.status) == ("sent", "none")
    assert len(smtp.messages) == 1


def test_the_solved_event_delivered_again_after_the_survey_sends_no_other(deliver, store, settings, smtp):
    at = now_ms() - 60_000
    deliver(at)
    drain(store, settings)
    assert [o.status for o in send_due_now(store, settings)] == ["sent"]
    deliver(at)  # the helpdesk retries with a new delivery id
    drain(store, settings)
    assert send_due_now(store, settings) == []
    assert TKEY not in due_ever(store)
    assert len(smtp.messages) == 1


def test_a_ticket_solved_again_without_a_reopen_is_not_surveyed_twice(deliver, store, unthrottled, smtp):
    assert [o.status for o in solve_and_send(deliver, store, unthrottled, ago_s=120)] == ["sent"]
    outcomes = solve_and_send(deliver, store, unthrottled, ago_s=60)
    assert outcomes == [surveys.Outcome("skipped", "already_surveyed")]
    assert len(smtp.messages) == 1


# Reopen and solve again


def test_a_reopen_before_the_send_cancels_the_survey(deliver, store, unthrottled, smtp):
    deliver(now_ms() - 120_000)
    deliver(now_ms() - 120_000, ticket="T-2")  # solved alike and never reopened: it shows the solve made both due
    drain(store, unthrottled)
    deliver(now_ms() - 60_000, kind="ticket.reopened")
    drain(store, unthrottled)
    assert [o.status for o in send_due_now(store, unthrottled)] == ["sent"]
    assert TKEY not in due_ever(store)
    (mail,) = smtp.messages
    assert sid_of(mail, unthrottled.secret_key) == survey_id("standard:T-2", store.ticket("standard:T-2")["solved_at"])


def test_a_reopen_that_lands_between_sweep_and_send_still_cancels(deliver, store, settings, smtp):
    deliver(now_ms() - 120_000)
    drain(store, settings)
    now = now_ms()
    claimed, tkeys = surveys.sweep(store, now)
    assert tkeys == [TKEY]
    deliver(now_ms() - 60_000, kind="ticket.reopened")
    drain(store, settings)
    with SmtpSender(settings.smtp_url) as sender:
        outcome = surveys.send_due(store, settings, sender, TKEY, claimed, now)
    assert outcome.status == "none"
    assert smtp.messages == []
    assert TKEY not in due_ever(store)


def test_solving_again_after_a_reopen_makes_a_new_survey_due(deliver, store, settings, smtp):
    now = now_ms()
    deliver(now - 180_000)
    deliver(now - 120_000, kind="ticket.reopened")
    again = now - 60_000
    deliver(again)
    drain(store, settings)
    due = again + settings.survey_delay * 1000
    assert send_due_now(store, settings, due - 1) == []
    assert [o.status for o in send_due_now(store, settings, due)] == ["sent"]
    (mail,) = smtp.messages
    sid = sid_of(mail, settings.secret_key)
    assert sid == survey_id(TKEY, again)
    assert store.survey(sid).status == "sent"


# Throttle


def test_a_second_ticket_of_the_same_customer_inside_the_throttle_window_is_skipped(
        deliver, store, settings, smtp):
    assert settings.survey_throttle_days == 7
    deliver(now_ms() - 120_000, ticket="T-1")
    deliver(now_ms() - 60_000, ticket="T-2")
    drain(store, settings)
    outcomes = {o.status: o for o in send_due_now(store, settings)}
    assert set(outcomes) == {"sent", "skipped"}
    assert outcomes["skipped"].reason == "throttled"
    assert len(smtp.messages) == 1
    (skipped,) = [s for s in store.customer_surveys(KARI) if s.status == "skipped"]
    assert skipped.reason == "throttled"
    assert store.stats().get("skipped:throttled") == 1
    assert customer_card(store, settings, KARI, now_ms()).surveys_sent == 1


def test_a_later_ticket_inside_the_throttle_window_is_skipped_too(deliver, store, settings, smtp):
    assert [o.status for o in solve_and_send(deliver, store, settings, ticket="T-1", ago_s=120)] == ["sent"]
    assert solve_and_send(deliver, store, settings, ticket="T-2") == [surveys.Outcome("skipped", "throttled")]
    assert len(smtp.messages) == 1


def test_with_the_throttle_off_both_tickets_are_surveyed(deliver, store, unthrottled, smtp):
    deliver(now_ms() - 120_000, ticket="T-1")
    deliver(now_ms() - 60_000, ticket="T-2")
    drain(store, unthrottled)
    assert [o.status for o in send_due_now(store, unthrottled)] == ["sent", "sent"]
    assert len(smtp.messages) == 2


# Unsubscribe


def test_an_unsubscribed_customer_gets_no_more_surveys_and_the_reason_is_recorded(
        deliver, store, unthrottled, smtp, client):
    first = solve_and_send(deliver, store, unthrottled, ticket="T-1", ago_s=120)
    assert [o.status for o in first] == ["sent"]
    (mail,) = smtp.messages
    page = client.post(unsubscribe_path(mail))
    assert page.status_code == 200, page.data[:300]
    assert store.profile(KARI).unsubscribed_at_ms
    skipped = [surveys.Outcome("skipped", "unsubscribed")]
    assert solve_and_send(deliver, store, unthrottled, ticket="T-2") == skipped
    assert len(smtp.messages) == 1
    sid = survey_id("standard:T-2", store.ticket("standard:T-2")["solved_at"])
    record = store.survey(sid)
    assert (record.status, record.reason) == ("skipped", "unsubscribed")
    assert store.stats().get("skipped:unsubscribed") == 1


def test_the_one_click_post_to_the_list_unsubscribe_url_really_unsubscribes(
        deliver, store, unthrottled, smtp, client):
    solve_and_send(deliver, store, unthrottled, ticket="T-1", ago_s=120)
    (mail,) = smtp.messages
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    # RFC 8058: the mailbox provider POSTs exactly this body to the URL, without cookies or a page.
    response = client.post(unsubscribe_path(mail), data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.data[:300]
    assert store.profile(KARI).unsubscribed_at_ms
    skipped = [surveys.Outcome("skipped", "unsubscribed")]
    assert solve_and_send(deliver, store, unthrottled, ticket="T-2") == skipped
    assert len(smtp.messages) == 1


def test_following_the_unsubscribe_link_alone_does_not_unsubscribe(
        deliver, store, unthrottled, smtp, client):
    solve_and_send(deliver, store, unthrottled, ticket="T-1", ago_s=120)
    (mail,) = smtp.messages
    page = client.get(unsubscribe_path(mail))  # link scanners follow every link
    assert page.status_code == 200
    assert not store.profile(KARI).unsubscribed_at_ms
    assert [o.status for o in solve_and_send(deliver, store, unthrottled, ticket="T-2")] == ["sent"]


# Expiry and answers


def reopen_and_solve_again(deliver: Any, store: Any, settings: Any) -> list[surveys.Outcome]:
    deliver(now_ms() - 30_000, kind="ticket.reopened")
    deliver(now_ms() - 20_000)
    drain(store, settings)
    return send_due_now(store, settings)


def sent_long_ago(deliver: Any, store: Any, settings: Any, env: dict[str, str]) -> int:
    """Solve the ticket and send its survey two days ago, valid for one day, so it has expired by now; return when."""
    sent_at = now_ms() - 2 * 86_400_000
    deliver(sent_at - 600_000)
    drain(store, settings)
    one_day = load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": str(settings.survey_throttle_days),
                             "TRACKER_SURVEY_EXPIRY_DAYS": "1"})
    assert [o.status for o in send_due_now(store, one_day, sent_at)] == ["sent"]
    return sent_at


def test_a_survey_that_expired_unanswered_lets_a_new_solve_send_a_new_one(deliver, store, unthrottled, env, smtp):
    sent_long_ago(deliver, store, unthrottled, env)
    (first,) = smtp.messages
    first_sid = sid_of(first, unthrottled.secret_key)
    assert [o.status for o in reopen_and_solve_again(deliver, store, unthrottled)] == ["sent"]
    assert len(smtp.messages) == 2
    assert sid_of(smtp.messages[1], unthrottled.secret_key) != first_sid


def test_a_survey_still_open_blocks_a_new_one_after_reopen_and_solve(deliver, store, unthrottled, smtp):
    solve_and_send(deliver, store, unthrottled, ago_s=600)
    outcomes = reopen_and_solve_again(deliver, store, unthrottled)
    assert outcomes == [surveys.Outcome("skipped", "already_surveyed")]
    assert len(smtp.messages) == 1


def test_an_answered_survey_blocks_a_new_one_even_after_it_expired(deliver, store, unthrottled, env, smtp):
    sent_at = sent_long_ago(deliver, store, unthrottled, env)
    (first,) = smtp.messages
    first_sid = sid_of(first, unthrottled.secret_key)
    # Answered while it was open, through the same write as the survey page's.
    assert record_answer(store, unthrottled, store.survey(first_sid), 4, "", sent_at + 3600_000) == 2
    outcomes = reopen_and_solve_again(deliver, store, unthrottled)
    assert outcomes == [surveys.Outcome("skipped", "already_surveyed")]
    assert len(smtp.messages) == 1
    second = survey_id(TKEY, store.ticket(TKEY)["solved_at"])
    record = store.survey(second)
    assert (record.status, record.reason) == ("skipped", "already_surveyed")
    assert store.stats().get("skipped:already_surveyed") == 1


# SMTP trouble


def test_smtp_refusing_twice_then_accepting_gives_exactly_one_mail_after_the_retries(
        deliver, store, settings, smtp):
    smtp.refuse = 2
    deliver(now_ms() - 60_000)
    drain(store, settings)
    at = now_ms()
    statuses = []
    for _ in range(3):
        claimed, tkeys = surveys.sweep(store, at)
        assert tkeys == [TKEY], (statuses, store.survey(survey_id(TKEY, store.ticket(TKEY)["solved_at"])))
        with SmtpSender(settings.smtp_url) as sender:
            statuses.append(surveys.send_due(store, settings, sender, TKEY, claimed, at).status)
        if statuses[-1] == "retry":
            retry_at = store.survey(survey_id(TKEY, store.ticket(TKEY)["solved_at"])).next_attempt_at_ms
            assert retry_at is not None and retry_at > at
            assert surveys.sweep(store, retry_at - 1)[1] == []  # not before its backoff
            at = retry_at
    assert statuses == ["retry", "retry", "sent"]
    assert len(smtp.wait_for(1)) == 1
    assert smtp.refuse == 0
    sid = survey_id(TKEY, store.ticket(TKEY)["solved_at"])
    assert store.survey(sid).status == "sent"
    assert TKEY not in due_ever(store)
    assert customer_card(store, settings, KARI, now_ms()).surveys_sent == 1


def test_a_permanent_refusal_marks_the_survey_undeliverable_without_retrying(deliver, store, settings, smtp):
    smtp.refuse = 1
    smtp.refuse_code = "550 5.1.1 Mailbox unavailable"
    deliver(now_ms() - 60_000)
    drain(store, settings)
    assert send_due_now(store, settings) == [surveys.Outcome("failed", "undeliverable")]
    sid = survey_id(TKEY, store.ticket(TKEY)["solved_at"])
    record = store.survey(sid)
    assert (record.status, record.reason) == ("failed", "undeliverable")
    assert send_due_now(store, settings, now_ms() + 7 * 86_400_000) == []
    assert TKEY not in due_ever(store)
    assert smtp.messages == []
    assert customer_card(store, settings, KARI, now_ms()).surveys_sent == 0


# The mail itself


@pytest.mark.parametrize("locale,lang", [("nb", "nb"), ("nb-NO", "nb"), ("en", "en"), ("xx", "en"),
                                         ("tlh-Latn", "en"), ("", "en")])
def test_the_survey_mail_is_multipart_in_the_customers_language_with_one_link_per_rating(
        deliver, store, settings, smtp, locale, lang):
    assert [o.status for o in solve_and_send(deliver, store, settings, locale=locale)] == ["sent"]
    (mail,) = smtp.messages
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    assert str(mail["Content-Language"]) == lang
    assert str(mail["Subject"]) == text(lang, "mail.subject", subject="Card declined")
    assert str(mail["From"]) == settings.mail_from
    assert mail["To"].addresses[0].addr_spec == KARI
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text(lang, "question.csat5") in plain
    token = token_of(mail)
    sid = read_token(settings.secret_key, token)
    assert sid == survey_id(TKEY, store.ticket(TKEY)["solved_at"])
    expected = [f"{PUBLIC}/s/{token}?rating={value}" for value in range(1, 6)]
    assert sorted(m.group(0) for m in LINK.finditer(plain)) == expected
    hrefs = [unescape(h) for h in re.findall(r'href="([^"]+)"', html) if "/s/" in h]
    assert sorted(hrefs) == expected
    assert str(mail["List-Unsubscribe"]) == f"<{PUBLIC}/u/{make_token(settings.secret_key, sid)}>"
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(mail["Auto-Submitted"]) == "auto-generated"


def test_the_survey_mail_links_start_with_the_configured_public_url(deliver, store, env, smtp):
    public = load_settings({**env, "TRACKER_PUBLIC_URL": "https://csat.example.com"})
    solve_and_send(deliver, store, public)
    (mail,) = smtp.messages
    plain = mail.get_body(("plain",)).get_content()
    links = re.findall(r"https?://\S+/s/[a-z2-7-]+\?rating=\d", plain)
    assert len(links) == 5 and all(link.startswith("https://csat.example.com/s/") for link in links)
    assert str(mail["List-Unsubscribe"]).startswith("<https://csat.example.com/u/")


def test_an_address_the_mail_server_refuses_is_suppressed_and_gets_no_more_surveys(
        deliver, store, unthrottled, smtp):
    smtp.unknown_mailboxes.add(KARI)
    assert solve_and_send(deliver, store, unthrottled, ticket="T-1", ago_s=120) == [
        surveys.Outcome("failed", "undeliverable")]
    assert solve_and_send(deliver, store, unthrottled, ticket="T-2") == [surveys.Outcome("skipped", "suppressed")]
    assert smtp.messages == []


def test_a_survey_left_due_longer_than_the_expiry_is_skipped_as_too_old_not_mailed(deliver, store, settings, smtp):
    # Workers stopped for weeks come back to surveys that could no longer be answered: nobody is mailed.
    deliver(now_ms() - 60_000)
    drain(store, settings)
    weeks_later = now_ms() + (settings.survey_expiry_days + 1) * DAY_MS
    assert send_due_now(store, settings, at_ms=weeks_later) == [surveys.Outcome("skipped", "too_old")]
    assert smtp.messages == []
    assert [s.reason for s in store.customer_surveys("kari@example.no")] == ["too_old"]
