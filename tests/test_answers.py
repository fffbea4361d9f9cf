"""Answering a survey: the pages, what is recorded, and aggregates that always equal a rebuild."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import fresh_database, indexed, solved_event
from tracker.answers import record as answers
from tracker.config import load_settings
from tracker.events import iso_from_ms
from tracker.i18n.catalogue import text
from tracker.ingest import apply as ingest
from tracker.mail.smtp import SmtpSender
from tracker.model import ScoreCard
from tracker.scores.cards import customer_card
from tracker.scores.maths import DAY_MS, score_card
from tracker.scores.ranking import aggregate_detail
from tracker.scores.rebuild import rebuild_scores
from tracker.surveys import due as surveys
from tracker.surveys.tokens import make_token

KARI = "kari@example.no"
TKEY = "standard:T-1001"
HYPOTHESIS = hypothesis_settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def now_ms() -> int:
    return int(time.time() * 1000)


def send_surveys(post_event: Any, store: Any, settings: Any, tickets: list[dict[str, Any]],
                 sent_at: int | None = None, send_settings: Any = None) -> list[str]:
    """Solve each ticket through the receiver, drain, sweep and mail (now, or at sent_at); return the survey ids."""
    counter = itertools.count()
    at = now_ms() if sent_at is None else sent_at
    solved_at = at - 60_000
    for number, spec in enumerate(tickets):
        event = solved_event(ticket=spec.get("ticket", f"T-{number}"), email_address=spec.get("email", KARI),
                             at=iso_from_ms(solved_at - number * 1000))
        event["customer"]["id"] = f"c-{spec.get('email', KARI)}"
        if "agent" in spec:
            event["ticket"]["agent"] = {"id": spec["agent"], "name": spec["agent"].upper()}
        if "team" in spec:
            event["ticket"]["team"] = spec["team"]
        response = post_event("standard", event, headers={"webhook-id": f"msg-{next(counter)}-{time.time()}"})
        assert response.status_code == 202, response.json
    ingest.drain(store, settings, "test")
    claimed, tkeys = surveys.sweep(store, at)
    with SmtpSender(settings.smtp_url) as sender:
        outcomes = [surveys.send_due(store, send_settings or settings, sender, tkey, claimed, at) for tkey in tkeys]
    assert [o.status for o in outcomes] == ["sent"] * len(tickets), outcomes
    # By the customers' surveys: a ticket is kept only while its survey can be answered (one sent long ago is gone).
    by_tkey = {survey.tkey: survey.sid for email in {spec.get("email", KARI) for spec in tickets}
               for survey in store.customer_surveys(email)}
    return [by_tkey[f"standard:{spec.get('ticket', f'T-{number}')}"] for number, spec in enumerate(tickets)]


@dataclass(frozen=True)
class SentSurvey:
    """A sent survey as its customer holds it: the id, the token in the mail's links, the mail's language."""

    sid: str
    token: str
    lang: str


@pytest.fixture
def survey(post_event: Any, store: Any, settings: Any, smtp: Any) -> SentSurvey:
    """One sent survey for Kari's ticket T-1001."""
    (sid,) = send_surveys(post_event, store, settings, [{"ticket": "T-1001"}])
    assert len(smtp.messages) == 1
    return SentSurvey(sid, make_token(settings.secret_key, sid), store.survey(sid).lang)


@pytest.fixture
def expired(post_event: Any, store: Any, settings: Any, env: dict[str, str], smtp: Any) -> SentSurvey:
    """Kari's survey for T-1001, sent two days ago and valid for one day: expired by now."""
    one_day = load_settings({**env, "TRACKER_SURVEY_EXPIRY_DAYS": "1"})
    (sid,) = send_surveys(post_event, store, settings, [{"ticket": "T-1001"}], sent_at=now_ms() - 2 * DAY_MS,
                          send_settings=one_day)
    assert store.survey(sid).expires_at_ms < now_ms()
    return SentSurvey(sid, make_token(settings.secret_key, sid), store.survey(sid).lang)


def state(store: Any, sid: str) -> tuple[Any, ...]:
    """Everything an answer could change."""
    return (store.survey(sid), store.response(sid), store.aggregate("customer", KARI),
            store.aggregate("overall", "all"), store.aggregate("agent", "standard:a-7"),
            indexed(store, "resp"), store.profile(KARI))


def card(store: Any, settings: Any) -> ScoreCard:
    found = customer_card(store, settings, KARI, now_ms())
    assert found is not None
    return found


def entity_card(store: Any, kind: str, ident: str, at: int) -> ScoreCard | None:
    """Read an agent's, team's, source's or brand's card as the API does; overall as the summary's sums give it."""
    if kind == "overall":
        return score_card(ident, store.aggregate(kind, ident), at)
    return aggregate_detail(store, kind, ident, at)


def checked_values(html: str) -> list[str]:
    return re.findall(r'value="(\d+)"\s+checked', html)


# GET never changes anything


def test_opening_a_rating_link_preselects_it_and_records_nothing(client, store, survey):
    before = state(store, survey.sid)
    page = client.get(f"/s/{survey.token}?rating=4")
    assert page.status_code == 200, page.data[:300]
    html = page.get_data(as_text=True)
    assert checked_values(html) == ["4"]
    assert 'name="comment"' in html and html.count('type="submit"') == 1
    assert store.response(survey.sid) is None
    assert state(store, survey.sid) == before
    assert card(store, client.application.extensions["tracker"].settings).responses == 0


@pytest.mark.parametrize("query", ["?rating=9", "?rating=abc", "?rating=", "", "?rating=4&rating=2", "?rating=1e3"])
def test_opening_the_survey_with_any_query_changes_nothing_and_never_fails(client, store, survey, query):
    before = state(store, survey.sid)
    page = client.get(f"/s/{survey.token}{query}")
    assert page.status_code == 200, page.data[:300]
    assert len(checked_values(page.get_data(as_text=True))) <= 1
    assert state(store, survey.sid) == before


def test_a_head_request_from_a_link_scanner_changes_nothing(client, store, survey):
    before = state(store, survey.sid)
    assert client.head(f"/s/{survey.token}?rating=1").status_code == 200
    assert state(store, survey.sid) == before


# POST records, once, the latest value


def test_posting_the_form_records_the_answer_and_thanks_the_customer(client, store, settings, survey):
    page = client.post(f"/s/{survey.token}", data={"rating": "4", "comment": "  Quick and kind  "})
    assert page.status_code == 200, page.data[:300]
    assert text("nb", "page.thanks_title") in page.get_data(as_text=True)
    response = store.response(survey.sid)
    assert (response.rating, response.comment) == (4, "Quick and kind")
    assert store.survey(survey.sid).status == "answered"
    got = card(store, settings)
    assert (got.responses, got.average, got.csat, got.response_rate) == (1, 75.0, 100.0, 100.0)
    assert got.last_response is not None and got.last_response.rating == 4


def test_a_changed_answer_replaces_the_old_one_and_counts_once(client, store, settings, survey):
    assert client.post(f"/s/{survey.token}", data={"rating": "4"}).status_code == 200
    changed = client.post(f"/s/{survey.token}", data={"rating": "2", "comment": "Actually, not solved"})
    assert changed.status_code == 200, changed.data[:300]
    assert store.response(survey.sid).rating == 2
    got = card(store, settings)
    assert (got.responses, got.average, got.csat) == (1, 25.0, 0.0)
    for kind, ident in (("overall", "all"), ("agent", "standard:a-7"), ("team", "billing"), ("source", "standard")):
        fields = entity_card(store, kind, ident, now_ms())
        assert fields is not None and (fields.responses, fields.average) == (1, 25.0), (kind, fields)
    again = client.get(f"/s/{survey.token}")
    html = again.get_data(as_text=True)
    assert checked_values(html) == ["2"] and "Actually, not solved" in html


def test_the_same_post_twice_changes_nothing_the_second_time(client, store, survey):
    form = {"rating": "5", "comment": "Great"}
    assert client.post(f"/s/{survey.token}", data=form).status_code == 200
    before = state(store, survey.sid)
    assert client.post(f"/s/{survey.token}", data=form).status_code == 200
    assert state(store, survey.sid) == before


def test_changing_only_the_comment_keeps_the_rating_counted_once(client, store, settings, survey):
    assert client.post(f"/s/{survey.token}", data={"rating": "5"}).status_code == 200
    assert client.post(f"/s/{survey.token}", data={"rating": "5", "comment": "And fast"}).status_code == 200
    assert store.response(survey.sid).comment == "And fast"
    got = card(store, settings)
    assert (got.responses, got.average) == (1, 100.0)


@pytest.mark.parametrize("form", [{"rating": "0"}, {"rating": "6"}, {"rating": "-1"}, {"rating": "abc"},
                                  {"rating": ""}, {}, {"comment": "no rating"}, {"rating": "4.5"},
                                  {"rating": "99999999999999999999999"}, {"rating": "１"}],
                         ids=lambda form: repr(form))
def test_a_missing_or_out_of_range_rating_gets_422_with_the_form_again(client, store, survey, form):
    before = state(store, survey.sid)
    page = client.post(f"/s/{survey.token}", data={**form, "comment": form.get("comment", "Kept text")})
    assert page.status_code == 422, page.data[:300]
    html = page.get_data(as_text=True)
    assert "<form" in html and 'name="rating"' in html
    assert text("nb", "page.error_rating") in html
    assert form.get("comment", "Kept text") in html
    assert state(store, survey.sid) == before


def test_a_long_comment_with_line_breaks_that_the_form_allowed_is_recorded(client, store, survey):
    # The textarea's maxlength counts a line break as one character; browsers submit it as CRLF.
    comment = "\r\n".join(["Feedback line " + str(n).zfill(3) for n in range(110)])
    assert len(comment.replace("\r\n", "\n")) <= 2000 < len(comment)
    page = client.post(f"/s/{survey.token}", data={"rating": "3", "comment": comment})
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    response = store.response(survey.sid)
    assert response.rating == 3 and response.comment.startswith("Feedback line 000")


# Tokens that lead nowhere


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_gets_a_friendly_404_page(client, store, survey, method):
    token = survey.token
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), token[:-3],
                ("x" if token[0] != "x" else "y") + token[1:], "nonsense",
                make_token("another-secret-0123456789", survey.sid)):
        page = getattr(client, method)(f"/s/{bad}", data={"rating": "4"} if method == "post" else None)
        assert page.status_code == 404, (bad, page.data[:300])
        assert page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        assert any(text(lang, "page.not_found_title") in html for lang in ("en", "nb")), html[:500]
    assert store.response(survey.sid) is None


def test_a_genuine_token_for_a_survey_that_does_not_exist_gets_404(client, settings):
    page = client.get(f"/s/{make_token(settings.secret_key, 'a' * 20)}?rating=4")
    assert page.status_code == 404


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_expired_survey_gets_a_friendly_410_page_and_keeps_the_old_answer(
        client, store, settings, expired, method):
    answered_at = store.survey(expired.sid).sent_at_ms + 3600_000  # while it was open, as the page records it
    assert answers.record_answer(store, settings, store.survey(expired.sid), 4, "", answered_at) == 2
    before = state(store, expired.sid)
    page = getattr(client, method)(f"/s/{expired.token}?rating=1", data={"rating": "1"} if method == "post" else None)
    assert page.status_code == 410, page.data[:300]
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert any(text(lang, "page.expired_title") in html for lang in ("en", "nb")), html[:500]
    assert state(store, expired.sid) == before


def test_the_expired_page_speaks_the_language_of_the_survey(client, expired):
    assert expired.lang == "nb"
    page = client.get(f"/s/{expired.token}?rating=5")
    assert page.status_code == 410
    html = page.get_data(as_text=True)
    assert text("nb", "page.expired_title") in html, html[:500]
    assert 'lang="nb"' in html


# Anything at all: never a 500


def token_variants(real: str) -> st.SearchStrategy[str]:
    edits = st.tuples(st.integers(0, len(real) - 1), st.text(min_size=0, max_size=3))
    return st.one_of(
        st.just(real), st.just(real.upper()), st.just(real + "?"),
        edits.map(lambda edit: real[:edit[0]] + edit[1] + real[edit[0] + 1:]),
        st.text(max_size=120))


FORM_FIELDS = st.dictionaries(
    st.sampled_from(["rating", "comment", "csrf_token", "submit"]) | st.text(max_size=12),
    st.text(max_size=60) | st.integers(-10, 20).map(str) | st.text(min_size=1990, max_size=2100),
    max_size=4)


@HYPOTHESIS
@given(data=st.data())
def test_any_form_and_any_token_get_a_page_never_a_500(client, survey, data):
    token = data.draw(token_variants(survey.token), label="token")
    form = data.draw(FORM_FIELDS, label="form")
    method = data.draw(st.sampled_from(["get", "post"]), label="method")
    path = f"/s/{quote(token, safe='')}"
    if method == "get":
        page = client.get(path, query_string=form)
    else:
        page = client.post(path, data=form)
    assert page.status_code != 500, page.data[:500]
    assert page.status_code in (200, 404, 405, 410, 422), (page.status_code, page.data[:300])


@pytest.mark.parametrize("path", ["/s/%2F0", "/s//0", "/s//"])
def test_a_survey_path_with_an_empty_or_slashed_token_gets_the_not_found_page_not_a_redirect(client, path):
    page = client.get(path)
    assert page.status_code == 404 and "Location" not in page.headers, (page.status_code, page.headers)


# Aggregates always equal a rebuild from the stored responses


PEOPLE = [
    {"ticket": "T-0", "email": "kari@example.no", "agent": "a-1", "team": "billing"},
    {"ticket": "T-1", "email": "kari@example.no", "agent": "a-2", "team": "tech"},
    {"ticket": "T-2", "email": "ola@example.no", "agent": "a-1", "team": "billing"},
    {"ticket": "T-3", "email": "per@example.com", "agent": "a-3"},
    {"ticket": "T-4", "email": "ola@example.no", "agent": "a-2", "team": "tech"},
    {"ticket": "T-5", "email": "per@example.com", "team": "billing"},
]
# One step of a history: (survey, rating or None to change only the comment, comment, days later)
STEPS = st.lists(st.tuples(st.integers(0, len(PEOPLE) - 1), st.none() | st.integers(1, 5),
                           st.sampled_from(["", "ok", "slow", "thanks!"]), st.floats(0, 20)),
                 min_size=1, max_size=25)


def all_cards(store: Any, settings: Any, at: int) -> dict[tuple[str, str], Any]:
    cards: dict[tuple[str, str], Any] = {}
    for email in sorted({p["email"] for p in PEOPLE}):
        cards[("customer", email)] = customer_card(store, settings, email, at)
    for kind in ("agent", "team", "source", "brand", "overall"):
        for ident in store.ids(kind) or (["all"] if kind == "overall" else []):
            cards[(kind, ident)] = entity_card(store, kind, ident, at)
    return cards


@hypothesis_settings(parent=HYPOTHESIS, max_examples=40)
@given(steps=STEPS)
def test_every_card_after_any_answer_history_equals_the_card_after_a_rebuild(
        post_event, store, env, smtp, steps):
    fresh_database(store)
    unthrottled = load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "0"})
    sids = send_surveys(post_event, store, unthrottled, PEOPLE)
    at = now_ms() - 80 * DAY_MS
    current: dict[int, int] = {}
    for index, rating, comment, days_later in steps:
        at += int(days_later * DAY_MS)
        if rating is None:
            if index not in current:
                continue
            rating = current[index]  # the same rating again: only the comment may change
        current[index] = rating
        answers.record_answer(store, unthrottled, store.survey(sids[index]), rating, comment, at)
    query_at = max(at, now_ms()) + DAY_MS
    live = all_cards(store, unthrottled, query_at)
    assert rebuild_scores(store, unthrottled) == len(current)
    rebuilt = all_cards(store, unthrottled, query_at)
    assert rebuilt == live
    overall = live[("overall", "all")]
    assert overall is not None and overall.responses == len(current) and overall.surveys_sent == len(PEOPLE)
