"""The operator's templates (TRACKER_TEMPLATE_DIR) are compiled when the settings are read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import tracker
from tracker.cli.dev import free_port
from tracker.config import ConfigError, Settings, load_settings
from tracker.scales import SCALES
from tracker.surveys.template_check import check_mail_templates, entry_samples
from tracker.web.pages.check import check_page_templates


def _load(folder: str) -> None:
    load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:1", "TRACKER_TEMPLATE_DIR": folder}, needs="store")


@pytest.mark.parametrize(("name", "text", "line", "fault"), [
    ("mail/survey.txt", "{% if %}broken\n", 1, "Expected an expression"),
    ("pages/thanks.html", "<p>\n{{ x | nosuchfilter }}</p>\n", 2, "No filter named 'nosuchfilter'"),
])
def test_a_template_that_cannot_compile_is_one_line_naming_file_and_line(tmp_path, name, text, line, fault):
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        _load(str(tmp_path))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"TRACKER_TEMPLATE_DIR: {path}:{line}: "), message
    assert fault in message, message


def test_templates_using_flasks_filters_and_the_apps_globals_pass(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "thanks.html").write_text('<p>{{ x | tojson }} {{ t("page.thanks") }}</p>\n')
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "junk.html").write_text("{% if %}")  # hidden folders are not templates
    _load(str(tmp_path))


PACKAGED_MAIL = Path(__file__).resolve().parents[1] / "tracker" / "templates" / "mail"


def _mail_folder(tmp_path: Path, text: str) -> Path:
    """An operator's folder whose survey.txt is text, beside the packaged survey.html."""
    (tmp_path / "mail").mkdir(parents=True)
    (tmp_path / "mail" / "survey.txt").write_text(text, encoding="utf-8")
    shutil.copy(PACKAGED_MAIL / "survey.html", tmp_path / "mail" / "survey.html")
    return tmp_path


def _settings(folder: Path, **more: str) -> Settings:
    return load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:1", "TRACKER_TEMPLATE_DIR": str(folder),
                          "TRACKER_SECRET_KEY": "k" * 20 + "Zq7-x_Y2pL9wR4tV", **more}, needs="store")


@pytest.mark.parametrize(("text", "line", "sample", "fault"), [
    ("{{ greeting }}\n\n{{ greting }}\n", 3, "en, csat5, ticket survey", "'greting' is undefined"),
    # a branch only one scale, language or survey without a subject takes is rendered too
    ("{{ greeting }}\n{% if buttons | length == 11 %}{{ nps_intro }}{% endif %}\n", 2, "en, nps, ticket survey",
     "'nps_intro' is undefined"),
    ("{{ greeting }}\n\n{% if lang == 'de' %}{{ anrede }}{% endif %}\n", 3, "de, csat5", "'anrede' is undefined"),
    ("{{ greeting }}\n{% if not ticket_subject %}{{ no_subject }}{% endif %}\n", 2, "without a name or a subject",
     "'no_subject' is undefined"),
])
def test_a_mail_template_that_fails_to_render_stops_the_processes_in_one_line_naming_file_line_and_sample(
        tmp_path, text, line, sample, fault):
    """Without the check every survey would fail at send time as mail_not_built, and no customer be mailed."""
    settings = _settings(_mail_folder(tmp_path, text))
    with pytest.raises(ConfigError) as raised:
        check_mail_templates(settings)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"TRACKER_TEMPLATE_DIR: {tmp_path}/mail/survey.txt:{line}: ")
    assert sample in message and fault in message, message


def test_mail_templates_that_render_every_sample_pass(tmp_path):
    check_mail_templates(_settings(_mail_folder(tmp_path, (PACKAGED_MAIL / "survey.txt").read_text())))


def test_tracker_check_and_the_worker_name_the_template_that_fails_to_render(env, tmp_path):
    good = _mail_folder(tmp_path / "good", (PACKAGED_MAIL / "survey.txt").read_text())
    shutil.copytree(PACKAGED_PAGES, good / "pages")
    checked = tracker({**env, "TRACKER_TEMPLATE_DIR": str(good)}, "check")
    assert checked.returncode == 0 and f"ok  templates: {good} compiles, and its mail and pages render" in \
        checked.stdout, checked
    folder = _mail_folder(tmp_path, "{{ greeting }}\n{{ greting }}\n")
    checked = tracker({**env, "TRACKER_TEMPLATE_DIR": str(folder)}, "check")
    assert checked.returncode == 1 and "'greting' is undefined" in checked.stdout + checked.stderr, checked
    worker = tracker({**env, "TRACKER_TEMPLATE_DIR": str(folder)}, "worker")
    assert worker.returncode != 0 and "Traceback" not in worker.stderr
    [line] = [line for line in worker.stderr.splitlines() if "TRACKER_TEMPLATE_DIR" in line]
    assert f"{folder}/mail/survey.txt:2: the survey mail fails to render" in line, worker.stderr


PACKAGED_PAGES = Path(__file__).resolve().parents[1] / "tracker" / "web" / "templates" / "pages"


@pytest.mark.parametrize(("page", "line", "sample"), [
    ("thanks", 5, "en, csat5"),
    ("unsubscribe", 4, "en, csat5"),
    ("question", 4, "sv, nps"),  # a branch only one language and scale take
])
def test_a_page_template_that_fails_to_render_stops_the_web_in_one_line_naming_file_line_and_page(
        tmp_path, page, line, sample):
    """Pages print nothing for an unknown value, but reading an attribute of one raises: every customer who clicked
    would get the error page. The web renders each page a customer can see before it serves."""
    (tmp_path / "pages").mkdir()
    packaged = (PACKAGED_PAGES / f"{page}.html").read_text().splitlines(keepends=True)
    fault = ("{% if lang == 'sv' and scale == 'nps' %}{{ nps_hint.text }}{% endif %}\n" if page == "question"
             else "{{ offer.code }}\n")
    (tmp_path / "pages" / f"{page}.html").write_text("".join([*packaged[:line - 1], fault, *packaged[line - 1:]]))
    with pytest.raises(ConfigError) as raised:
        check_page_templates(_settings(tmp_path))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"TRACKER_TEMPLATE_DIR: {tmp_path}/pages/{page}.html:{line}: ")
    assert f"the {page} page fails to render ({sample}" in message and "is undefined" in message, message


def test_page_templates_that_render_every_page_pass(tmp_path):
    shutil.copytree(PACKAGED_PAGES, tmp_path / "pages")
    check_page_templates(_settings(tmp_path))


def test_tracker_web_refuses_to_serve_pages_that_fail_to_render(env, tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "thanks.html").write_text(
        '{% extends "pages/base.html" %}{% block content %}{{ offer.code }}{% endblock %}\n')
    web = tracker({**env, "TRACKER_TEMPLATE_DIR": str(tmp_path), "TRACKER_BIND": f"127.0.0.1:{free_port()}"}, "web")
    assert web.returncode != 0 and "Traceback" not in web.stderr, web.stderr
    assert f"{tmp_path}/pages/thanks.html:1: the thanks page fails to render" in web.stderr, web.stderr


SURVEYS = Path(__file__).resolve().parent / "fixtures" / "surveys" / "surveys.toml"


def test_a_mail_template_that_fails_only_for_a_branded_survey_is_found_and_named_by_its_brand(tmp_path):
    folder = _mail_folder(tmp_path, "{{ greeting }}\n")
    html = (PACKAGED_MAIL / "survey.html").read_text()
    (folder / "mail" / "survey.html").write_text("{% if logo_url %}{{ logo_width }}{% endif %}\n" + html)
    with pytest.raises(ConfigError) as raised:
        check_mail_templates(_settings(folder, TRACKER_SURVEYS_FILE=str(SURVEYS)))
    message = str(raised.value)
    assert f"{folder}/mail/survey.html:1: " in message and "brand acme" in message, message
    assert "'logo_width' is undefined" in message, message


def test_entries_that_differ_only_in_their_words_are_rendered_once_a_scale(tmp_path):
    """A file of 300 brands, each with its own question and thanks: what a template can branch on is the same."""
    brands = "".join(f'[[surveys]]\nbrand = "b{n}"\nquestion = "How did B{n} do?"\nthanks = "Thanks from B{n}"\n\n'
                     for n in range(300))
    (tmp_path / "surveys.toml").write_text(brands + '[[surveys]]\nbrand = "odd"\ncolour = "#112233"\n')
    settings = _settings(tmp_path, TRACKER_SURVEYS_FILE=str(tmp_path / "surveys.toml"))
    sampled = {(sample.brand, sample.scale) for sample in entry_samples(settings)}
    assert sampled == {(brand, scale) for brand in ("b0", "odd") for scale in SCALES}
