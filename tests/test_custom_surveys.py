"""Custom surveys (TRACKER_SURVEYS_FILE): the mail and pages per brand and language, the file's errors, the logo,
and `tracker survey preview`."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support import FIXTURES, Page, drain, links, send_all, solved_event
from tracker.config import ConfigError, load_settings
from tracker.i18n.catalogue import survey_question, text
from tracker.surveys.custom import CustomSurvey, load_surveys_file
from tracker.web.app import CSP

SURVEYS = FIXTURES / "surveys" / "surveys.toml"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TRACKER_SURVEYS_FILE": str(SURVEYS)}


def _mails_for(post_event: Any, store: Any, env: dict[str, str], smtp: Any,
               customers: list[tuple[str, str, str]]) -> dict[str, email.message.EmailMessage]:
    """Solve one ticket per (email, brand, locale), send the surveys, and return each customer's mail."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for number, (address, brand, locale) in enumerate(customers):
        event = solved_event(ticket=f"T-{number}", email_address=address, at=at, brand=brand)
        event["customer"].update(locale=locale, id=f"c-{number}", name="Kari")
        assert post_event("standard", event).status_code == 202
    settings = load_settings(env)
    assert drain(store, settings) == len(customers)
    assert {o.status for o in send_all(store, settings)} == {"sent"}
    return {str(m["To"]).split("<")[-1].rstrip(">"): m for m in smtp.wait_for(len(customers))}


CASES = [
    # address, brand, locale, question, From, Reply-To domain, a label, thanks heading, colour, logo file
    ("en@acme.test", "acme", "en", "How was your chat with Acme?", "Acme Care <care@acme.example>",
     "replies.acme.example", "Awful", "Thanks from all of us at Acme!", "#0b6e4f", "acme.png"),
    ("nb@acme.test", "acme", "nb", "Hvordan var praten med Acme?", "Acme Care <care@acme.example>",
     "replies.acme.example", "Elendig", "Tusen takk fra oss i Acme!", "#0b6e4f", "acme.png"),
    ("en@globex.test", "globex", "en", "Did Globex get it right?", "Globex Help <help@globex.example>",
     None, None, None, "#ffcc00", "globex.svg"),
    ("nb@globex.test", "globex", "nb", "Fikk Globex det til?", "Globex Help <help@globex.example>",
     None, None, "Takk fra Globex!", "#ffcc00", "globex.svg"),
]


def test_each_brand_and_language_gets_its_own_question_labels_sender_colour_logo_and_thanks(
        post_event, store, env, smtp, client):
    mails = _mails_for(post_event, store, env, smtp,
                       [(c[0], c[1], c[2]) for c in CASES] + [("en@initech.test", "initech", "en")])
    logos = {logo.path.name: logo for logo in load_surveys_file(SURVEYS).logos().values()}
    for address, brand, lang, question, sender, reply_domain, label, thanks, colour, logo_name in CASES:
        mail = mails[address]
        logo = logos[logo_name]
        assert mail["From"] == sender
        if reply_domain:
            assert str(mail["Reply-To"]).endswith(f"@{reply_domain}") and str(mail["Reply-To"]).startswith("reply+")
        plain = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert question in plain and question in Page(html).text
        assert survey_question(lang, "csat5") not in plain
        if label:
            assert label in plain and label in Page(html).text
        assert colour in html  # the rating buttons are drawn in the brand's colour
        assert f'src="http://127.0.0.1:8000/s/brand-logo/{logo.digest}.{logo.ext}"' in html

        # The page behind the mail's lowest rating: the same question and labels, the brand's look, the CSP kept.
        link = links(plain)[1]
        shown = client.get(link)
        assert shown.status_code == 200 and shown.headers["Content-Security-Policy"] == CSP
        body = shown.get_data(as_text=True)
        assert question in Page(body).text and (label is None or label in Page(body).text)
        assert f'href="/s/brand-style/{colour[1:]}.css"' in body and f'src="/s/brand-logo/{logo.filename}"' in body
        assert " style=" not in body  # the content policy refuses inline styles
        style = client.get(f"/s/brand-style/{colour[1:]}.css")
        assert style.status_code == 200 and style.mimetype == "text/css" and colour in style.get_data(as_text=True)

        # Unhappy: the follow-up is branded too; a satisfied answer ends on the brand's thanks.
        path = link.split("?")[0]
        followup = client.post(path, data={"rating": "1", "comment": ""})
        assert followup.status_code == 200 and f'src="/s/brand-logo/{logo.filename}"' in followup.get_data(as_text=True)
        if brand == "acme":
            done = Page(client.post(path, data={"rating": "5", "comment": ""}).get_data(as_text=True))
            assert (thanks or text(lang, "page.thanks_title")) in done.text
    # A brand the file does not name gets the product's own mail, as before.
    plain = mails["en@initech.test"].get_body(("plain",)).get_content()
    assert mails["en@initech.test"]["From"] == env["TRACKER_MAIL_FROM"]
    assert survey_question("en", "csat5") in plain and "brand-logo" not in mails["en@initech.test"].as_string()


def test_a_logo_is_served_with_its_content_type_and_a_long_cache(client):
    surveys = load_surveys_file(SURVEYS)
    logos = {logo.ext: logo for logo in surveys.logos().values()}
    for ext, content_type in (("png", "image/png"), ("svg", "image/svg+xml")):
        served = client.get(f"/s/brand-logo/{logos[ext].filename}")
        assert served.status_code == 200 and served.mimetype == content_type
        assert served.data == logos[ext].data
        assert "immutable" in served.headers["Cache-Control"] and "max-age=31536000" in served.headers["Cache-Control"]
        assert "sandbox" in served.headers["Content-Security-Policy"]  # an SVG opened on its own runs nothing
    assert client.get("/s/brand-logo/0000000000000000.png").status_code == 404
    assert client.get("/s/brand-style/123456.css").status_code == 404  # a colour the file does not name


def test_the_most_specific_entry_wins_field_by_field():
    surveys = load_surveys_file(SURVEYS)
    acme_nb = surveys.pick("Acme", "zendesk", "nb")
    assert acme_nb is not None
    assert acme_nb.question == "Hvordan var praten med Acme?" and acme_nb.colour == "#0b6e4f"
    assert acme_nb.mail_from == "Acme Care <care@acme.example>"
    globex_nb = surveys.pick("globex", None, "nb")
    assert globex_nb is not None and globex_nb.question == "Fikk Globex det til?"
    assert [q.id for q in globex_nb.extra_questions] == ["first_contact", "improve"]
    assert globex_nb.followup_satisfied is not None and globex_nb.followup_satisfied.reasons == ("fast", "friendly")
    assert surveys.pick("initech", None, "en") is None
    assert CustomSurvey().empty


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
BASE = '[[surveys]]\nbrand = "acme"\n'
FOUR_QUESTIONS = BASE + "".join(f'\n[[surveys.extra_questions]]\nid = "q{n}"\ntype = "text"\nquestion = "Q{n}?"\n'
                                for n in range(4))
MISTAKES = {
    # name: (file text, extra files, line, key, part of the message)
    "toml syntax": (BASE + 'question = "unterminated\n', {}, 3, "question", "not valid TOML"),
    "nested too deeply": (BASE + "labels = " + "[" * 5000 + "]" * 5000 + "\n", {}, 3, "labels", "nested too deeply"),
    "unknown key": (BASE + 'color = "#0b6e4f"\n', {}, 3, "color", "unknown key"),
    "unknown table": ('[[survey]]\nbrand = "acme"\n', {}, 1, "survey", "unknown key"),
    "wrong type": (BASE + 'labels = "Awful"\n', {}, 3, "labels", "must be a list of strings"),
    "not a flag": (BASE + 'followup_satisfied = "yes"\n', {}, 3, "followup_satisfied", "true or false"),
    "labels count": (BASE + 'labels = ["Bad", "OK", "Good"]\n', {}, 3, "labels", "csat5 scale has 5 values"),
    "four extra questions": (FOUR_QUESTIONS, {}, 19, "extra_questions", "at most 3 extra questions"),
    "duplicate question id": (BASE + '\n[[surveys.extra_questions]]\nid = "a"\ntype = "text"\nquestion = "A?"\n'
                              '\n[[surveys.extra_questions]]\ntype = "text"\nid = "a"\nquestion = "B?"\n', {},
                              11, "extra_questions.id", "used by an earlier question"),
    "choice without choices": (BASE + '\n[[surveys.extra_questions]]\nid = "a"\ntype = "choice"\nquestion = "A?"\n',
                               {}, 4, "extra_questions.choices", "at least two choices"),
    "unknown question type": (BASE + '\n[[surveys.extra_questions]]\nid = "a"\ntype = "stars"\nquestion = "A?"\n',
                              {}, 6, "extra_questions.type", "choice or text"),
    "bad colour": (BASE + 'colour = "green"\n', {}, 3, "colour", "#rrggbb"),
    "logo missing": (BASE + 'logo = "nowhere.png"\n', {}, 3, "logo", "cannot read"),
    "logo of another type": (BASE + 'logo = "logo.gif"\n', {"logo.gif": b"GIF89a"}, 3, "logo", ".png, .jpg, .svg"),
    "logo too big": (BASE + 'logo = "big.png"\n', {"big.png": PNG + b"\x00" * 600_000}, 3, "logo", "at most 512 KiB"),
    "logo not an image": (BASE + 'logo = "fake.png"\n', {"fake.png": b"hello"}, 3, "logo", "not a png image"),
    "from not an address": (BASE + 'from = "Acme support"\n', {}, 3, "from", "must be an email address"),
    "reply domain not a domain": (BASE + 'reply_domain = "not a domain"\n', {}, 3, "reply_domain", "domain name"),
    "unknown locale": (BASE + 'locale = "xx"\n', {}, 3, "locale", "must be one of en, nb"),
    "satisfied detail without the flag": (BASE + 'satisfied_question = "Why?"\n', {}, 3, "satisfied_question",
                                          "needs followup_satisfied = true"),
    "same selectors twice": (BASE + '\n[[surveys]]\nbrand = "acme"\n', {}, 4, "surveys", "same brand, source"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_every_mistake_in_the_surveys_file_is_one_line_naming_file_line_and_key(tmp_path, name):
    source, files, line, key, fragment = MISTAKES[name]
    path = tmp_path / "surveys.toml"
    path.write_text(source, encoding="utf-8")
    for file_name, data in files.items():
        (tmp_path / file_name).write_bytes(data)
    with pytest.raises(ConfigError) as raised:
        load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:1", "TRACKER_SURVEYS_FILE": str(path)}, needs="store")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert fragment in message, message


def test_labels_are_counted_against_the_scale_the_brand_gets(tmp_path):
    path = tmp_path / "surveys.toml"
    path.write_text(BASE + 'labels = ["Bad", "Poor", "OK", "Good", "Great"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r":3: labels: the thumbs scale has 2 values"):
        load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:1", "TRACKER_SURVEYS_FILE": str(path),
                       "TRACKER_SURVEY_SCALE_BY_BRAND": "acme=thumbs"}, needs="store")


def _tracker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_bad_surveys_file_stops_the_processes_with_its_line_and_check_says_so(tmp_path, env):
    path = tmp_path / "surveys.toml"
    path.write_text(BASE + 'colour = "green"\n', encoding="utf-8")
    bad = {**env, "TRACKER_SURVEYS_FILE": str(path)}
    for command in (["web"], ["worker"], ["beat"]):
        run = _tracker(*command, env=bad)
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip() == f'tracker: {path}:3: colour: must be #rrggbb, like "#0b6e4f", got \'green\''
    check = _tracker("check", env=bad)
    assert check.returncode == 1 and f"{path}:3: colour:" in check.stderr and "Traceback" not in check.stderr
    good = _tracker("check", env=env)
    assert good.returncode == 0, good.stderr
    assert f"ok  surveys file: {SURVEYS} is valid (5 entries)" in good.stdout


def test_check_names_every_mistake_of_a_surveys_file_and_the_processes_stop_with_the_first(tmp_path, env):
    path = tmp_path / "surveys.toml"
    path.write_text(BASE + 'colour = "green"\nlocale = "xx"\n'
                    '[[surveys.extra_questions]]\nid = "first"\ntype = "choice"\nquestion = "One?"\n'
                    'choices = ["only"]\n'
                    '[[surveys.extra_questions]]\nid = "Q 2"\ntype = "rating"\nquestion = "Two?"\n'
                    '[[surveys]]\nbrand = "globex"\nthanks = 5\nsound = "on"\n', encoding="utf-8")
    bad = {**env, "TRACKER_SURVEYS_FILE": str(path)}
    check = _tracker("check", env=bad)
    assert check.returncode == 1 and "Traceback" not in check.stderr
    named = [line.split(": ", 1)[1] for line in check.stderr.splitlines() if str(path) in line]
    assert [line.split(":", 3)[1:3] for line in named] == [
        ["4", " locale"], ["3", " colour"], ["9", " extra_questions.choices"], ["11", " extra_questions.id"],
        ["12", " extra_questions.type"], ["16", " thanks"], ["17", " sound"]], check.stderr
    run = _tracker("web", env=bad)
    assert run.returncode == 2 and run.stderr.strip() == f"tracker: {named[0]}", run.stderr


def test_preview_writes_the_mail_and_every_page_as_the_file_shapes_them(tmp_path, redis_url):
    out = tmp_path / "preview"
    run = _tracker("survey", "preview", "--brand", "globex", "--locale", "nb", "--out", str(out),
                   env={"TRACKER_SURVEYS_FILE": str(SURVEYS), "TRACKER_REDIS_URL": redis_url})
    assert run.returncode == 0, run.stderr
    untouched = redis.Redis.from_url(redis_url)
    assert untouched.dbsize() == 0  # a preview needs no Redis, and writes nothing to the one the settings name
    untouched.close()
    pages = ("question", "followup-unhappy", "followup-satisfied", "extra-questions", "thanks", "unsubscribe",
             "expired")
    for name in ("mail.html", "mail.txt", "mail.eml", *(f"{page}.html" for page in pages)):
        assert (out / name).is_file(), name
        assert str(out / name) in run.stdout
    mail = email.message_from_bytes((out / "mail.eml").read_bytes(), policy=default_policy)
    assert mail["From"] == "Globex Help <help@globex.example>" and mail["Content-Language"] == "nb"
    assert "Fikk Globex det til?" in (out / "mail.txt").read_text()
    question = (out / "question.html").read_text()
    assert "Fikk Globex det til?" in question and 'href="assets/brand-ffcc00.css"' in question
    assert (out / "assets" / "survey.css").is_file() and (out / "assets" / "brand-ffcc00.css").is_file()
    assert "Takk fra Globex!" in (out / "thanks.html").read_text()
    assert "What did Globex do well?" in (out / "followup-satisfied.html").read_text()
    assert "Was this your first contact?" in (out / "extra-questions.html").read_text()
    assert text("nb", "page.expired_title") in (out / "expired.html").read_text()
    assert 'lang="nb"' in (out / "unsubscribe.html").read_text()


def test_preview_refuses_an_unknown_language_and_a_folder_it_cannot_write(tmp_path):
    wrong = _tracker("survey", "preview", "--brand", "acme", "--locale", "tlh", "--out", str(tmp_path), env={})
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "tracker: --locale must be one of en, nb, sv, da, de, fr, es, nl, got 'tlh'"
    blocked = tmp_path / "file"
    blocked.write_text("")
    stuck = _tracker("survey", "preview", "--brand", "acme", "--locale", "en", "--out", str(blocked / "x"), env={})
    assert stuck.returncode == 1 and stuck.stderr.startswith(f"tracker: --out {blocked / 'x'}: cannot write there")


def test_a_branded_mail_is_rendered_once_per_template_language_and_entry_then_filled_per_customer(settings):
    from dataclasses import replace

    from tracker.mail.message import _skeleton, render_survey, render_survey_whole
    from tracker.model import Survey
    from tracker.surveys.message import survey_mail

    now = int(time.time() * 1000)
    base = Survey(sid="s-cache-1", tkey="standard:T-1", kind="ticket", scale="csat5", customer="a@example.com",
                  source="standard", status="sending", ticket_id="1", subject="Card declined", brand="acme",
                  lang="nb", created_at_ms=now)
    _skeleton.cache_clear()  # earlier tests in this process may have rendered these already
    before = _skeleton.cache_info().misses
    first = survey_mail(settings, base, "Kari", now + 86_400_000)
    again = survey_mail(settings, replace(base, sid="s-cache-2", customer="b@example.com"), "Ola", now)
    assert render_survey(first) == render_survey_whole(first)  # the filled skeleton says what a whole render says
    assert render_survey(again) == render_survey_whole(again)
    assert _skeleton.cache_info().misses - before == 2  # survey.txt and survey.html, once for both customers
    other = survey_mail(settings, replace(base, sid="s-cache-3", brand="globex"), "Kari", now)
    assert "Fikk Globex det til?" in render_survey(other)[1]
    assert "Hvordan var praten med Acme?" in render_survey(first)[1]
    assert _skeleton.cache_info().misses - before == 4  # the other brand's entry has skeletons of its own
