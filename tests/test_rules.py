"""Survey rules: scale choice, skips with their reasons, sampling, the send window and the one reminder."""

from __future__ import annotations

import itertools
import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import solved_event
from tracker.config import load_settings
from tracker.events import iso_from_ms
from tracker.ingest import apply as ingest
from tracker.mail.smtp import SmtpSender
from tracker.model import SurveyedTicket
from tracker.scores.cards import customer_card
from tracker.scores.maths import DAY_MS
from tracker.store import keys
from tracker.store.records import surveyed_from_hash
from tracker.store.reminders import reminder_member
from tracker.surveys import due as surveys
from tracker.surveys.policy import choose_scale, next_send_time, sampled, skip_reason
from tracker.surveys.tokens import read_token, survey_id

KARI = "kari@example.no"
TKEY = "standard:T-1001"
LINK = re.compile(r"http://127\.0\.0\.1:8000/s/([a-z2-7]+-[a-z2-7]+)\?rating=(\d+)")
WEEKDAYS = "Mon-Fri 09:00-17:00"


def now_ms() -> int:
    return int(time.time() * 1000)


def local_ms(zone: str, text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def last_weekday(name: str, then: int = 0) -> str:
    """Return the date (YYYY-MM-DD) of the last weekday `name` (Mon..Sun) before today, plus `then` days.

    Tests that go through the ingest use the past week: a solve older than the survey expiry is skipped as too
    old, so a fixed past date would stop being surveyed as the calendar moves on, and an event dated more than a
    day ahead is refused at the door.
    """
    today = datetime.now(ZoneInfo("Europe/Oslo")).date()
    back = (today.weekday() - ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].index(name)) % 7 or 7
    return (today - timedelta(days=back) + timedelta(days=then)).isoformat()


def local_text(zone: str, ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M")


# Scale choice


@pytest.mark.parametrize("by_source,by_brand,source,brand,expected", [
    ("", "", "zendesk", "acme", "csat5"),
    ("zendesk=nps", "", "zendesk", "acme", "nps"),
    ("zendesk=nps", "", "Zendesk", None, "nps"),
    ("zendesk=nps", "acme=thumbs", "zendesk", "acme", "thumbs"),
    ("zendesk=nps", "acme=thumbs", "zendesk", "ACME", "thumbs"),
    ("zendesk=nps", "acme=thumbs", "zendesk", "globex", "nps"),
    ("zendesk=nps", "acme=ces7", "shopify", "acme", "ces7"),
    ("", "acme=csat3", "shopify", "", "csat5"),
])
def test_the_brand_scale_wins_over_the_source_scale_which_wins_over_the_global_one(
        env, by_source, by_brand, source, brand, expected):
    rules = load_settings({**env, "TRACKER_SURVEY_SCALE_BY_SOURCE": by_source,
                           "TRACKER_SURVEY_SCALE_BY_BRAND": by_brand})
    assert choose_scale(rules, source, brand) == expected


# Skip reasons


def ticket(**fields: str) -> SurveyedTicket:
    """Read a stored ticket hash with these fields as the sender does."""
    found = surveyed_from_hash("zendesk:1", {"source": "zendesk", "brand": "acme", "tags": '["vip"]',
                                             "agent_id": "a-7", **fields})
    assert found is not None
    return found


@pytest.mark.parametrize("variables,fields,expected", [
    ({}, {}, None),
    ({"TRACKER_SURVEY_DISABLED_SOURCES": "zendesk"}, {}, "source_disabled"),
    ({"TRACKER_SURVEY_DISABLED_SOURCES": "zendesk"}, {"source": "Zendesk"}, "source_disabled"),
    ({"TRACKER_SURVEY_DISABLED_BRANDS": "acme"}, {"brand": "ACME"}, "brand_disabled"),
    ({"TRACKER_SURVEY_DISABLED_BRANDS": "acme"}, {"brand": "globex"}, None),
    ({}, {"tags": '["vip", "No-Survey"]'}, "tagged_no_survey"),
    ({"TRACKER_SURVEY_SKIP_TAGS": "legal,spam"}, {"tags": '["Spam"]'}, "tagged_no_survey"),
    ({"TRACKER_SURVEY_SKIP_TAGS": "legal"}, {"tags": '["no-survey"]'}, None),
    ({}, {"tags": "not json"}, None),
    ({}, {"agent_involved": "0"}, "no_agent"),
    ({}, {"agent_involved": "1"}, None),
    ({}, {"agent_id": ""}, None),  # no agent named is not the source saying no agent was involved
    ({}, {"agent_id": "", "agent_involved": "0"}, "no_agent"),
    ({"TRACKER_SURVEY_SAMPLE_PERCENT": "0"}, {}, "not_sampled"),
    ({"TRACKER_SURVEY_DISABLED_SOURCES": "zendesk"}, {"tags": '["no-survey"]'}, "source_disabled"),
])
def test_each_rule_skips_with_its_own_reason(env, variables, fields, expected):
    assert skip_reason(load_settings({**env, **variables}), ticket(**fields), "sid-1") == expected


def test_sampling_is_the_same_for_the_same_survey_every_time_and_close_to_the_percentage(env):
    sids = [f"s{n:05d}" for n in range(10_000)]
    thirty = load_settings({**env, "TRACKER_SURVEY_SAMPLE_PERCENT": "30"})
    first = [skip_reason(thirty, ticket(), sid) for sid in sids]
    assert first == [skip_reason(thirty, ticket(), sid) for sid in sids]
    kept = first.count(None)
    assert 2_850 <= kept <= 3_150, kept
    assert set(first) == {None, "not_sampled"}
    assert all(sampled(sid, 100.0) for sid in sids) and not any(sampled(sid, 0.0) for sid in sids)
    # Raising the percentage only adds surveys: a sampled one stays sampled.
    assert all(sampled(sid, 50.0) for sid, reason in zip(sids, first, strict=True) if reason is None)


# The send window


@pytest.mark.parametrize("zone,now,expected", [
    ("Europe/Oslo", "2026-06-10 10:00", "Wed 2026-06-10 10:00"),  # inside: now
    ("Europe/Oslo", "2026-06-10 07:30", "Wed 2026-06-10 09:00"),  # before the start
    ("Europe/Oslo", "2026-06-10 17:00", "Thu 2026-06-11 09:00"),  # the end is not inside
    ("Europe/Oslo", "2026-06-12 16:59", "Fri 2026-06-12 16:59"),
    ("Europe/Oslo", "2026-06-12 18:00", "Mon 2026-06-15 09:00"),  # Friday evening waits for Monday
    ("Europe/Oslo", "2026-06-13 12:00", "Mon 2026-06-15 09:00"),  # weekend
    ("Europe/Oslo", "2026-03-27 18:00", "Mon 2026-03-30 09:00"),  # over the spring DST change
    ("Europe/Oslo", "2026-10-23 18:00", "Mon 2026-10-26 09:00"),  # over the autumn DST change
    ("America/New_York", "2026-06-13 12:00", "Mon 2026-06-15 09:00"),
])
def test_outside_the_window_the_survey_waits_for_the_next_local_opening(env, zone, now, expected):
    rules = load_settings({**env, "TRACKER_SEND_WINDOW": WEEKDAYS})
    assert local_text(zone, next_send_time(rules, local_ms(zone, now), zone)) == expected


def test_the_opening_after_a_dst_change_is_nine_local_not_nine_the_week_before(env):
    rules = load_settings({**env, "TRACKER_SEND_WINDOW": WEEKDAYS})
    friday = local_ms("Europe/Oslo", "2026-03-27 18:00")
    opening = next_send_time(rules, friday, "Europe/Oslo")
    assert iso_from_ms(opening) == "2026-03-30T07:00:00Z"  # 09:00 CEST; the Friday opening was 08:00Z


def test_an_unknown_or_missing_time_zone_uses_the_default_one(env):
    rules = load_settings({**env, "TRACKER_SEND_WINDOW": WEEKDAYS, "TRACKER_DEFAULT_TIMEZONE": "Europe/Oslo"})
    saturday = local_ms("Europe/Oslo", "2026-06-13 12:00")
    monday_oslo = local_ms("Europe/Oslo", "2026-06-15 09:00")
    for zone in (None, "", "Mars/Olympus_Mons", "../../etc/passwd", "Europe"):
        assert next_send_time(rules, saturday, zone) == monday_oslo, zone
    assert next_send_time(rules, saturday, "Asia/Tokyo") == local_ms("Asia/Tokyo", "2026-06-15 09:00")


def test_without_a_window_surveys_go_at_once(settings):
    assert settings.send_window is None
    assert next_send_time(settings, 1_781_000_000_123, "Europe/Oslo") == 1_781_000_000_123


def test_an_opening_in_the_hour_the_clocks_skip_comes_just_after_the_jump(env):
    rules = load_settings({**env, "TRACKER_SEND_WINDOW": "02:30-04:00"})
    night = local_ms("Europe/Oslo", "2026-03-29 00:30")
    assert local_text("Europe/Oslo", next_send_time(rules, night, "Europe/Oslo")) == "Sun 2026-03-29 03:30"


# Through the loop: webhook, log, apply, sweep, mail


@pytest.fixture
def deliver(post_event: Any) -> Any:
    """Deliver one ticket event through the receiver, at a time given in ms."""
    counter = itertools.count()

    def send(at_ms: int, kind: str = "ticket.solved", ticket: str = "T-1001", timezone: str | None = None,
             **fields: Any) -> Any:
        event = solved_event(ticket=ticket, at=iso_from_ms(at_ms), kind=kind, **fields)
        if timezone:
            event["customer"]["timezone"] = timezone
        return post_event("standard", event, headers={"webhook-id": f"msg-{next(counter)}"})

    return send


def send_at(store: Any, settings: Any, at_ms: int) -> list[surveys.Outcome]:
    ingest.drain(store, settings, "test")
    claimed, tkeys = surveys.sweep(store, at_ms)
    with SmtpSender(settings.smtp_url) as sender:
        return [surveys.send_due(store, settings, sender, tkey, claimed, at_ms) for tkey in tkeys]


def links(message: Any) -> list[tuple[str, str]]:
    return LINK.findall(message.get_body(("plain",)).get_content())


def timeline(client: Any, store: Any) -> list[dict[str, Any]]:
    key = store.create_key("lead")
    response = client.get(f"/api/v1/customers/{KARI}/timeline", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.json
    return response.json["events"]


def test_a_brand_scale_override_sends_an_nps_survey_with_eleven_links(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_SURVEY_SCALE_BY_SOURCE": "standard=csat3",
                           "TRACKER_SURVEY_SCALE_BY_BRAND": "acme=nps"})
    assert deliver(now_ms() - 60_000).status_code == 202
    assert [o.status for o in send_at(store, rules, now_ms())] == ["sent"]
    (mail,) = smtp.messages
    assert sorted(int(value) for _, value in links(mail)) == list(range(11))
    (record,) = store.customer_surveys(KARI)
    assert record.scale == "nps"


def test_a_source_scale_override_applies_when_the_brand_has_none(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_SURVEY_SCALE_BY_SOURCE": "standard=thumbs",
                           "TRACKER_SURVEY_SCALE_BY_BRAND": "globex=nps"})
    deliver(now_ms() - 60_000)
    assert [o.status for o in send_at(store, rules, now_ms())] == ["sent"]
    assert sorted(int(value) for _, value in links(smtp.messages[0])) == [0, 1]


@pytest.mark.parametrize("variables,fields,reason", [
    ({"TRACKER_SURVEY_DISABLED_SOURCES": "standard"}, {}, "source_disabled"),
    ({"TRACKER_SURVEY_DISABLED_BRANDS": "acme"}, {}, "brand_disabled"),
    ({}, {"tags": ["vip", "NO-Survey"]}, "tagged_no_survey"),
    ({}, {"agent_involved": False}, "no_agent"),
    ({"TRACKER_SURVEY_SAMPLE_PERCENT": "0"}, {}, "not_sampled"),
])
def test_a_rule_skips_the_survey_and_the_reason_shows_in_the_surveys_and_the_timeline(
        deliver, store, env, smtp, client, variables, fields, reason):
    rules = load_settings({**env, **variables})
    assert deliver(now_ms() - 60_000, **fields).status_code == 202
    assert send_at(store, rules, now_ms()) == [surveys.Outcome("skipped", reason)]
    assert smtp.messages == []
    (record,) = store.customer_surveys(KARI)
    assert (record.status, record.reason) == ("skipped", reason)
    skipped = [e for e in timeline(client, store) if e["kind"] == "survey.skipped"]
    assert [(e["reason"], e["ticket"]) for e in skipped] == [(reason, TKEY)]
    assert store.stats().get(f"skipped:{reason}") == 1
    assert TKEY not in surveys.sweep(store, now_ms() + 365 * DAY_MS)[1]  # nothing left to send, ever
    assert customer_card(store, rules, KARI, now_ms()).surveys_sent == 0


def test_a_ticket_without_an_agent_is_surveyed_unless_the_source_says_no_agent_was_involved(
        deliver, store, settings, smtp):
    deliver(now_ms() - 60_000, agent=None)
    assert [o.status for o in send_at(store, settings, now_ms())] == ["sent"]


def test_a_newer_event_saying_an_agent_was_involved_lifts_the_no_agent_skip(deliver, store, settings, smtp):
    at = now_ms() - 60_000
    deliver(at, agent_involved=True)
    deliver(at - 30_000, kind="ticket.updated", agent_involved=False)  # older, arriving late
    ingest.drain(store, settings, "test")
    assert store.ticket(TKEY)["agent_involved"] == "1"
    assert [o.status for o in send_at(store, settings, now_ms())] == ["sent"]


def test_an_invalid_time_zone_is_refused_with_422(deliver, store):
    response = deliver(now_ms(), timezone="Europe/Atlantis")
    assert response.status_code == 422, response.json
    assert "timezone" in str(response.json)


def test_outside_the_window_the_survey_waits_and_goes_out_at_the_next_local_opening(
        deliver, store, env, smtp, client):
    rules = load_settings({**env, "TRACKER_SEND_WINDOW": WEEKDAYS, "TRACKER_DEFAULT_TIMEZONE": "UTC"})
    saturday = local_ms("Europe/Oslo", f"{last_weekday('Sat')} 12:00")
    assert deliver(saturday, timezone="Europe/Oslo").status_code == 202
    assert send_at(store, rules, saturday + 60_000) == [surveys.Outcome("deferred", "send_window")]
    monday = local_ms("Europe/Oslo", f"{last_weekday('Sat', then=2)} 09:00")
    assert store.profile(KARI).timezone == "Europe/Oslo"
    assert smtp.messages == [] and store.customer_surveys(KARI) == []  # waiting is not a skip
    assert store.redis.get(keys.customer(KARI, "throttle")) is None
    assert send_at(store, rules, monday - 1) == []
    assert [o.status for o in send_at(store, rules, monday)] == ["sent"]
    assert len(smtp.messages) == 1
    assert [e["kind"] for e in timeline(client, store)] == ["ticket.solved", "survey.sent"]


# The reminder


def sent_survey(deliver: Any, store: Any, settings: Any, smtp: Any) -> tuple[int, str]:
    sent_at = now_ms()
    deliver(sent_at - 60_000)
    assert [o.status for o in send_at(store, settings, sent_at)] == ["sent"]
    return sent_at, survey_id(TKEY, store.ticket(TKEY)["solved_at"])


def test_an_unanswered_survey_gets_one_reminder_after_n_days_with_the_same_links(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_REMINDER_DAYS": "3"})
    sent_at, sid = sent_survey(deliver, store, rules, smtp)
    assert send_at(store, rules, sent_at + 3 * DAY_MS - 60_000) == []
    assert send_at(store, rules, sent_at + 3 * DAY_MS) == [surveys.Outcome("reminded")]
    first, reminder = smtp.wait_for(2)
    assert str(reminder["Subject"]) == f"Påminnelse: {first['Subject']}"
    assert links(reminder) == links(first)
    assert read_token(rules.secret_key, links(reminder)[0][0]) == sid
    assert str(reminder["List-Unsubscribe"]) == str(first["List-Unsubscribe"])
    assert str(reminder["Message-ID"]) != str(first["Message-ID"])
    assert str(reminder["In-Reply-To"]) == str(first["Message-ID"])
    assert store.survey(sid).reminded_at_ms == sent_at + 3 * DAY_MS
    assert store.survey(sid).status == "sent"
    assert send_at(store, rules, sent_at + 10 * DAY_MS) == []
    assert len(smtp.messages) == 2
    assert customer_card(store, rules, KARI, now_ms()).surveys_sent == 1


def test_a_reminder_claimed_twice_goes_out_once(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_REMINDER_DAYS": "3"})
    sent_at, sid = sent_survey(deliver, store, rules, smtp)
    at = sent_at + 3 * DAY_MS
    claimed, members = surveys.sweep(store, at)
    assert members == [reminder_member(sid)]
    # A slow worker's lease runs out and a second sweep hands the same reminder out again.
    again, _ = surveys.sweep(store, at + surveys.LEASE_MS + 1)
    with SmtpSender(rules.smtp_url) as sender:
        outcomes = [surveys.send_due(store, rules, sender, reminder_member(sid), claimed, at),
                    surveys.send_due(store, rules, sender, reminder_member(sid), again, at)]
    assert [o.status for o in outcomes] == ["reminded", "none"]
    assert len(smtp.messages) == 2


def test_an_answered_survey_gets_no_reminder(deliver, store, env, smtp, client):
    rules = load_settings({**env, "TRACKER_REMINDER_DAYS": "3"})
    sent_at, _sid = sent_survey(deliver, store, rules, smtp)
    (mail,) = smtp.messages
    token, _ = links(mail)[0]
    assert client.post(f"/s/{token}", data={"rating": "5"}).status_code == 200
    assert send_at(store, rules, sent_at + 3 * DAY_MS) == [surveys.Outcome("none", "not_needed")]
    assert len(smtp.messages) == 1
    assert surveys.sweep(store, sent_at + 30 * DAY_MS)[1] == []  # nothing left to send, ever


def test_a_customer_who_unsubscribed_after_the_survey_gets_no_reminder(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_REMINDER_DAYS": "2"})
    sent_at, _sid = sent_survey(deliver, store, rules, smtp)
    store.unsubscribe(KARI, sent_at + DAY_MS)
    assert send_at(store, rules, sent_at + 2 * DAY_MS) == [surveys.Outcome("none", "unsubscribed")]
    assert len(smtp.messages) == 1


def test_reminders_are_off_by_default(deliver, store, settings, smtp):
    assert settings.reminder_days == 0
    sent_at, _sid = sent_survey(deliver, store, settings, smtp)
    assert surveys.sweep(store, sent_at + 30 * DAY_MS)[1] == []  # nothing left to send, ever
    assert send_at(store, settings, sent_at + 5 * DAY_MS) == []
    assert len(smtp.messages) == 1


def test_a_reminder_due_outside_the_window_waits_for_the_next_opening(deliver, store, env, smtp):
    rules = load_settings({**env, "TRACKER_REMINDER_DAYS": "1", "TRACKER_SEND_WINDOW": WEEKDAYS,
                           "TRACKER_DEFAULT_TIMEZONE": "Europe/Oslo"})
    friday = local_ms("Europe/Oslo", f"{last_weekday('Fri')} 10:00")
    deliver(friday - 60_000)
    assert [o.status for o in send_at(store, rules, friday)] == ["sent"]
    assert send_at(store, rules, friday + DAY_MS) == [surveys.Outcome("deferred", "send_window")]
    monday = local_ms("Europe/Oslo", f"{last_weekday('Fri', then=3)} 09:00")
    assert send_at(store, rules, monday - 1) == []
    assert send_at(store, rules, monday) == [surveys.Outcome("reminded")]
    assert str(smtp.wait_for(2)[1]["Subject"]).startswith("Påminnelse: ")
