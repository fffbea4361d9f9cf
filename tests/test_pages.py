"""The customer's side per scale and language: the real mail, the answer page, the follow-up, overrides."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import SUBJECT, Page, links, survey_by_mail
from tracker.cli.dev import free_port
from tracker.config import SCALES as SCALE_NAMES
from tracker.config import load_settings
from tracker.i18n.catalogue import SUPPORTED, survey_question, text
from tracker.mail.buttons import FACES
from tracker.scales import SCALES
from tracker.store import Store, keys
from tracker.store.survey_codes import coded
from tracker.surveys.tokens import make_token
from tracker.web.app import create_app
from tracker.web.pages.followup import BUILT_IN_REASONS

LOCALES = {"en": "en-GB", "nb": "nb-NO", "sv": "sv-SE", "da": "da-DK", "de": "de-AT", "fr": "fr-CA",
           "es": "es-MX", "nl": "nl-BE"}
NAMES = {"en": "Mary", "nb": "Åse", "sv": "Åsa", "da": "Søren", "de": "Jürgen", "fr": "Élodie", "es": "Begoña",
         "nl": "Sanne"}


def has(page: Page, sentence: str) -> bool:
    return " ".join(sentence.split()) in page.text


def sid_of(path: str) -> str:
    return path.split("/")[2].split("-")[0]


@pytest.mark.parametrize("lang", SUPPORTED)
@pytest.mark.parametrize("scale_name", SCALE_NAMES)
def test_each_scale_in_each_language_goes_from_the_mail_through_the_page_and_the_follow_up(
        post_event, store, env, smtp, client, scale_name, lang):
    scale = SCALES[scale_name]
    low, high = scale.low, scale.high
    mail = survey_by_mail(post_event, store, env, smtp, scale_name, LOCALES[lang], NAMES[lang])

    # The mail: in the customer's language, naming the ticket and the customer, one link per rating.
    assert mail["Subject"] == text(lang, "mail.subject", subject=SUBJECT)
    assert mail["Content-Language"] == lang
    if lang != "en":
        assert mail["Subject"] != text("en", "mail.subject", subject=SUBJECT)
    plain = mail.get_body(("plain",)).get_content()
    html_part = Page(mail.get_body(("html",)).get_content())
    for body in (plain, html_part.text):
        assert text(lang, "mail.greeting_name", name=NAMES[lang]) in body
        assert " ".join(survey_question(lang, scale_name).split()) in " ".join(body.split())
    assert sorted(links(plain)) == list(scale.values)
    html_links = links(" ".join(html_part.links))
    assert html_links == links(plain)
    for face in FACES.get(scale_name, {}).values():
        assert face in html_part.text

    # GET the negative link: the page in that language, with the question and that value chosen.
    page = client.get(html_links[low])
    assert page.status_code == 200
    shown = Page(page.get_data(as_text=True))
    assert shown.lang == lang
    assert has(shown, survey_question(lang, scale_name))
    assert shown.radios("rating") == [str(v) for v in scale.values]
    assert shown.checked("rating") == [str(low)]
    for face in FACES.get(scale_name, {}).values():
        assert face in shown.text
    sid = sid_of(html_links[low])
    assert store.response(sid) is None

    # POST it: recorded, and the follow-up asks for a reason from a localized list.
    path = html_links[low].split("?")[0]
    asked = client.post(path, data={"rating": str(low), "comment": "Took a week"})
    assert asked.status_code == 200
    step = Page(asked.get_data(as_text=True))
    assert step.lang == lang and has(step, text(lang, "followup.legend"))
    assert step.radios("reason") == list(BUILT_IN_REASONS)
    for key in BUILT_IN_REASONS:
        assert has(step, text(lang, f"reason.{key}"))
        if lang != "en":
            assert text(lang, f"reason.{key}") != text("en", f"reason.{key}")
    assert not has(step, text(lang, "page.thanks_title"))
    assert (store.response(sid).rating, store.response(sid).comment) == (low, "Took a week")

    # POST the reason: recorded on the response, and thanks.
    done = client.post(f"{path}/reason", data={"reason": "not_solved", "comment": "Took a week, still broken"})
    assert done.status_code == 200
    assert has(Page(done.get_data(as_text=True)), text(lang, "page.thanks_title"))
    response = store.response(sid)
    assert (response.rating, response.reason, response.comment) == (low, "not_solved", "Took a week, still broken")

    # Change to a positive answer: just thanks, and the reason no longer applies.
    happy = client.post(path, data={"rating": str(high)})
    assert happy.status_code == 200
    thanked = Page(happy.get_data(as_text=True))
    assert thanked.lang == lang and has(thanked, text(lang, "page.thanks_title"))
    assert thanked.radios("reason") == [] and not has(thanked, text(lang, "followup.legend"))
    response = store.response(sid)
    assert (response.rating, response.reason, response.satisfied) == (high, None, True)  # no reason left


@pytest.mark.parametrize(("locale", "lang"), [("nb-NO", "nb"), ("no", "nb"), ("nn", "nb"), ("xx-YY", "en")])
def test_customer_locales_choose_the_language_of_the_mail_and_the_page(
        post_event, store, env, smtp, client, locale, lang):
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", locale)
    assert mail["Subject"] == text(lang, "mail.subject", subject=SUBJECT)
    page = Page(client.get(links(mail.get_body(("plain",)).get_content())[3]).get_data(as_text=True))
    assert page.lang == lang and has(page, survey_question(lang, "csat5"))


def test_without_a_name_the_mail_greets_without_one(post_event, store, env, smtp):
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", "de", name=None)
    plain = mail.get_body(("plain",)).get_content()
    assert plain.splitlines()[0] == text("de", "mail.greeting")


@pytest.fixture
def answered_low(post_event, store, env, smtp, client) -> str:
    """Kari's csat5 survey answered 2 (unsatisfied); return its path."""
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", "en")
    path = links(mail.get_body(("plain",)).get_content())[2].split("?")[0]
    assert client.post(path, data={"rating": "2", "comment": "Slow"}).status_code == 200
    return path


def test_a_reason_that_was_not_offered_gets_the_follow_up_again_and_changes_nothing(client, store, answered_low):
    before = store.response(sid_of(answered_low))
    page = client.post(f"{answered_low}/reason", data={"reason": "bribery", "comment": "Kept text"})
    assert page.status_code == 422
    shown = Page(page.get_data(as_text=True))
    assert has(shown, text("en", "followup.error")) and "Kept text" in shown.text
    assert shown.radios("reason") == list(BUILT_IN_REASONS)
    assert store.response(sid_of(answered_low)) == before


def test_a_comment_too_long_is_said_so_and_the_rating_and_reason_are_kept(client, store, answered_low):
    # The textareas' maxlength keeps a browser under 2,000 characters; a form posted otherwise is told what was wrong.
    before = store.response(sid_of(answered_low))
    page = client.post(answered_low, data={"rating": "4", "comment": "x" * 2001})
    assert page.status_code == 422
    assert has(Page(page.get_data(as_text=True)), text("en", "page.error_comment_long"))
    assert 'value="4" checked' in page.get_data(as_text=True)
    reason = client.post(f"{answered_low}/reason", data={"reason": "slow", "comment": "y" * 2001})
    assert reason.status_code == 422
    assert has(Page(reason.get_data(as_text=True)), text("en", "page.error_comment_long"))
    assert 'value="slow" checked' in reason.get_data(as_text=True)
    assert store.response(sid_of(answered_low)) == before


def test_a_comment_without_a_reason_is_accepted(client, store, answered_low):
    assert client.post(f"{answered_low}/reason", data={"comment": "Just slow"}).status_code == 200
    response = store.response(sid_of(answered_low))
    assert (response.reason, response.comment) == (None, "Just slow")


def test_a_changed_reason_alone_is_recorded_and_the_rating_still_counts_once(client, store, answered_low):
    sid = sid_of(answered_low)
    client.post(f"{answered_low}/reason", data={"reason": "slow", "comment": "Slow"})
    counted = store.aggregate("customer", "kari@example.no")
    client.post(f"{answered_low}/reason", data={"reason": "unclear", "comment": "Slow"})
    assert store.response(sid).reason == "unclear"
    assert store.aggregate("customer", "kari@example.no") == counted
    before = store.response(sid)
    client.post(f"{answered_low}/reason", data={"reason": "unclear", "comment": "Slow"})
    assert store.response(sid) == before


def test_the_api_lists_the_reason_with_the_comment(client, store, answered_low):
    client.post(f"{answered_low}/reason", data={"reason": "unfriendly", "comment": "Rude"})
    key = store.create_key("lead")
    body = client.get("/api/v1/customers/kari@example.no/responses", headers={"Authorization": f"Bearer {key}"}).json
    (row,) = body["responses"]
    assert (row["rating"], row["reason"], row["comment"], row["satisfied"]) == (2, "unfriendly", "Rude", False)


def test_another_unsatisfied_rating_keeps_the_reason_and_offers_it_again(client, store, answered_low):
    client.post(f"{answered_low}/reason", data={"reason": "slow", "comment": "Slow"})
    page = client.post(answered_low, data={"rating": "1", "comment": "Slow"})
    assert Page(page.get_data(as_text=True)).checked("reason") == ["slow"]
    assert (store.response(sid_of(answered_low)).rating, store.response(sid_of(answered_low)).reason) == (1, "slow")


def test_the_follow_up_can_be_opened_again_and_only_for_an_unsatisfied_answer(client, store, answered_low):
    client.post(f"{answered_low}/reason", data={"reason": "slow"})
    again = client.get(f"{answered_low}/reason")
    assert again.status_code == 200 and Page(again.get_data(as_text=True)).checked("reason") == ["slow"]
    client.post(answered_low, data={"rating": "5"})
    moved = client.get(f"{answered_low}/reason")
    assert moved.status_code == 303 and moved.headers["Location"].endswith(answered_low)


def test_a_reason_posted_before_any_answer_records_nothing(post_event, store, env, smtp, client):
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", "en")
    path = links(mail.get_body(("plain",)).get_content())[1].split("?")[0]
    page = client.post(f"{path}/reason", data={"reason": "slow"})
    assert page.status_code == 303 and page.headers["Location"].endswith(path)
    assert store.response(sid_of(path)) is None


def test_the_thank_you_page_says_until_when_the_answer_can_change_and_links_back(client, answered_low):
    page = Page(client.post(answered_low, data={"rating": "4"}).get_data(as_text=True))
    assert has(page, "You can change your answer until") and answered_low in page.links


def test_the_operator_can_configure_the_reasons(post_event, store, env, smtp):
    configured = load_settings({**env, "TRACKER_FOLLOWUP_REASONS": "Wrong product,Late delivery"})
    client = create_app(configured, store, enqueue=[].append).test_client()
    mail = survey_by_mail(post_event, store, env, smtp, "thumbs", "nb")
    path = links(mail.get_body(("plain",)).get_content())[0].split("?")[0]
    step = Page(client.post(path, data={"rating": "0"}).get_data(as_text=True))
    assert step.radios("reason") == ["Wrong product", "Late delivery"]
    assert client.post(f"{path}/reason", data={"reason": "slow"}).status_code == 422
    assert client.post(f"{path}/reason", data={"reason": "Late delivery"}).status_code == 200
    assert store.response(sid_of(path)).reason == "Late delivery"


def test_operator_templates_replace_the_packaged_pages_by_name(post_event, store, env, smtp, tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "thanks.html").write_text(
        '{% extends "pages/base.html" %}{% block content %}<h1>Tusen takk fra Acme</h1>'
        '<a href="{{ change_url }}">{{ until }}</a>{% endblock %}')
    custom = load_settings({**env, "TRACKER_TEMPLATE_DIR": str(tmp_path)})
    client = create_app(custom, store, enqueue=[].append).test_client()
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", "nb")
    path = links(mail.get_body(("plain",)).get_content())[5].split("?")[0]
    question = Page(client.get(f"{path}?rating=5").get_data(as_text=True))
    assert has(question, survey_question("nb", "csat5"))
    thanks = Page(client.post(path, data={"rating": "5"}).get_data(as_text=True))
    assert "Tusen takk fra Acme" in thanks.text and not has(thanks, text("nb", "page.thanks_title"))
    assert path in thanks.links


# Error pages in the survey's language where it is known, else the browser's


def test_a_rejected_answer_is_asked_again_in_the_surveys_language(post_event, store, env, smtp, client):
    mail = survey_by_mail(post_event, store, env, smtp, "ces7", "fr-FR")
    path = links(mail.get_body(("plain",)).get_content())[7].split("?")[0]
    page = client.post(path, data={"rating": "8"})
    assert page.status_code == 422
    shown = Page(page.get_data(as_text=True))
    assert shown.lang == "fr" and has(shown, text("fr", "page.error_rating"))


def test_an_unknown_link_answers_in_the_browsers_language(client):
    page = client.get("/s/nonsense", headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"})
    assert page.status_code == 404
    shown = Page(page.get_data(as_text=True))
    assert shown.lang == "sv" and has(shown, text("sv", "page.not_found_title"))


def test_a_storage_outage_gets_a_503_page_in_the_browsers_language(settings, env):
    down = load_settings({**env, "TRACKER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_app(down, Store.from_url(down.redis_url), enqueue=[].append).test_client()
    token = make_token(settings.secret_key, "a" * 20)
    page = client.get(f"/s/{token}?rating=4", headers={"Accept-Language": "da"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    shown = Page(page.get_data(as_text=True))
    assert shown.lang == "da" and has(shown, text("da", "page.unavailable_text"))


def test_a_broken_survey_record_gets_an_error_page_in_the_surveys_language(post_event, store, env, smtp,
                                                                          client):
    mail = survey_by_mail(post_event, store, env, smtp, "csat5", "es")
    path = links(mail.get_body(("plain",)).get_content())[3].split("?")[0]
    store.redis.hset(keys.survey(sid_of(path)), coded("scale"), "stars10")  # written by some future version
    page = client.get(path)
    assert page.status_code == 500
    shown = Page(page.get_data(as_text=True))
    assert shown.lang == "es" and has(shown, text("es", "page.error_title"))



REASON_FORMS = st.dictionaries(
    st.sampled_from(["reason", "comment", "rating"]) | st.text(max_size=8),
    st.text(max_size=40) | st.sampled_from(BUILT_IN_REASONS) | st.text(min_size=1990, max_size=2100),
    max_size=3)


@hypothesis_settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=REASON_FORMS, method=st.sampled_from(["get", "post"]))
def test_any_follow_up_form_gets_a_page_never_a_500(client, store, answered_low, form, method):
    path = f"{answered_low}/reason"
    page = client.post(path, data=form) if method == "post" else client.get(path, query_string=form)
    assert page.status_code in (200, 303, 422), (page.status_code, page.data[:300])
    assert store.response(sid_of(answered_low)).rating == 2


@pytest.mark.parametrize(("method", "path", "code", "title", "body"), [
    ("GET", "/s/nonsense", 404, "page.not_found_title", "page.not_found_text"),
    ("GET", "/dashboard/nope", 404, "page.missing_title", "page.missing_text"),
    ("GET", "/favicon.ico", 404, "page.missing_title", "page.missing_text"),
    ("PUT", "/dashboard", 405, "page.bad_request_title", "page.bad_request_text"),
    ("GET", "/s/abc?rating=" + "9" * 5000, 414, "page.bad_request_title", "page.bad_request_text"),
])
def test_an_error_page_says_whose_the_error_is(client, method, path, code, title, body):
    # Only a 5xx is our side's fault; a survey link that leads nowhere is a survey not found, any other address not.
    page = client.open(path, method=method)
    assert page.status_code == code
    shown = Page(page.get_data(as_text=True))
    assert has(shown, text("en", title)) and has(shown, text("en", body))
    assert not has(shown, text("en", "page.error_text"))
