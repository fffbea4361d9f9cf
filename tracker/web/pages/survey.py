"""The customer's pages: the survey question, the answer and its follow-up, thanks, and unsubscribe."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, g, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from tracker.alerts.delivery import alerts_for_answer
from tracker.answers.record import SurveyUnavailable, open_survey, record_answer
from tracker.errors import StorageUnavailable
from tracker.i18n.catalogue import normalise_locale, scale_labels, survey_question, text
from tracker.mail.message import ENDS_ONLY, FACES
from tracker.schema_cache import schema
from tracker.surveys.tokens import read_token
from tracker.web.api.schemas import AnswerFormSchema, PageQuerySchema
from tracker.web.errors import page, unavailable_page
from tracker.web.pages import followup

log = logging.getLogger(__name__)
bp = Blueprint("survey", __name__, static_folder="../static", static_url_path="/static/survey")


@dataclass(frozen=True)
class Choice:
    """One rating on the page: face is the big text, caption the small one, name what a screen reader says."""

    value: int
    face: str
    caption: str
    name: str


def choices(lang: str, scale_name: str) -> list[Choice]:
    """Return the page's choices for a scale, drawn as in the mail (faces on csat3 and thumbs)."""
    faces = FACES.get(scale_name, {})
    found = []
    for value, label in scale_labels(lang, scale_name):
        named = label if value in faces else (f"{value} – {label}" if label != str(value) else str(value))
        caption = "" if scale_name in ENDS_ONLY or label == str(value) else label
        found.append(Choice(value, faces.get(value, str(value)), caption, named))
    return found


def _now_ms() -> int:
    return int(time.time() * 1000)


def _lang() -> str:
    """Return the language of the survey being shown, else the browser's."""
    return g.get("lang") or normalise_locale(request.headers.get("Accept-Language"))


def _open(token: str) -> dict[str, str]:
    tracker = current_app.extensions["tracker"]
    survey = open_survey(tracker.store, tracker.settings, token, _now_ms())
    g.lang = survey.get("lang") or "en"
    return survey


def _unavailable(exc: SurveyUnavailable) -> Any:
    if exc.status == 410:
        return page(410, "page.expired_title", "page.expired_text", exc.lang)
    return page(404, "page.not_found_title", "page.not_found_text", _lang())


def _question(token: str, survey: dict[str, str], selected: int | None, comment: str = "",
              error: str | None = None, status: int = 200) -> Any:
    lang = survey.get("lang") or "en"
    settings = current_app.extensions["tracker"].settings
    labels = scale_labels(lang, survey["scale"])
    return render_template(
        "pages/question.html", lang=lang, scale=survey["scale"], choices=choices(lang, survey["scale"]),
        ends=(labels[0][1], labels[-1][1]) if survey["scale"] in ENDS_ONLY else None,
        question=survey_question(lang, survey["scale"], survey.get("kind") or "ticket"),
        selected=selected, comment=comment, error=error, subject=survey.get("subject") or None,
        ticket_ref=f"#{survey.get('ticket_id', '')}", until=followup.until(survey, settings, lang),
        action=url_for("survey.answer", token=token)), status


@bp.get("/s/<token>")
def question(token: str) -> Any:
    """Show the question with the clicked rating preselected; never change anything (scanners follow links)."""
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    try:
        rating = schema(PageQuerySchema).load(request.args)["rating"]
    except ValidationError:
        rating = None
    if rating is None and survey.get("status") == "answered":
        answer = current_app.extensions["tracker"].store.response(survey["sid"])
        if answer:
            return _question(token, survey, int(answer["rating"]), answer.get("comment", ""))
    return _question(token, survey, rating)


@bp.post("/s/<token>")
def answer(token: str) -> Any:
    """Record the rating and comment (the latest counts, once); ask why if unsatisfied, else thank."""
    tracker = current_app.extensions["tracker"]
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    try:
        form = schema(AnswerFormSchema).load(request.form)
        happy = followup.satisfied(survey, tracker.settings, form["rating"])
        # A satisfied answer clears any earlier reason; an unsatisfied one keeps it until the next step.
        outcome = record_answer(tracker.store, tracker.settings, survey, form["rating"], form["comment"], _now_ms(),
                                reason="" if happy else None)
    except (ValidationError, ValueError):
        comment = request.form.get("comment", "")[:2000]
        return _question(token, survey, None, comment, text(g.lang, "page.error_rating"), 422)
    for url, payload in alerts_for_answer(tracker.store, tracker.settings, survey, outcome, form["rating"]):
        tracker.kick("tracker.send_alert", url, payload)
    if happy:
        return followup.thanks(token, survey, tracker.settings)
    stored = tracker.store.response(survey["sid"])
    return followup.ask_reason(token, survey, tracker.settings, stored.get("comment", ""),
                               stored.get("reason", ""))


@bp.route("/s/<token>/reason", methods=["GET", "POST"])
def reason(token: str) -> Any:
    """Show (GET) or record (POST) why an unsatisfied customer answered as they did."""
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    answer = current_app.extensions["tracker"].store.response(survey["sid"])
    if request.method == "GET":
        return followup.show(token, survey, answer)
    return followup.record(token, survey, answer, _now_ms())


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """Confirm on GET, unsubscribe on POST (RFC 8058 one-click posts `List-Unsubscribe=One-Click`)."""
    tracker = current_app.extensions["tracker"]
    sid = read_token(tracker.settings.secret_key, token)
    survey = tracker.store.survey(sid) if sid else {}
    if not survey:
        return page(404, "page.not_found_title", "page.not_found_text", _lang())
    lang = g.lang = survey.get("lang") or "en"
    if request.method == "GET":
        return render_template("pages/unsubscribe.html", lang=lang,
                               action=url_for("survey.unsubscribe", token=token))
    tracker.store.unsubscribe(survey["customer"], _now_ms())
    return page(200, "page.unsubscribed_title", "page.unsubscribed_text", lang)


# The app's handlers answer in English; on these pages the survey's (or browser's) language is known.
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    if exc.code == 404:
        return page(404, "page.not_found_title", "page.not_found_text", _lang())
    return page(exc.code or 500, "page.error_title", "page.error_text", _lang())


@bp.errorhandler(StorageUnavailable)
def _storage_down(exc: StorageUnavailable) -> Any:
    log.error("storage unreachable: %s", exc)
    return unavailable_page(_lang())


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return page(500, "page.error_title", "page.error_text", _lang())
