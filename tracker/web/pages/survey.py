"""The customer's pages: the survey question, the answer and its follow-up, thanks, and unsubscribe."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from tracker.alerts.held import alert_answer
from tracker.answers.record import COMMENT_MAX, SurveyUnavailable, is_satisfied, open_survey, record_answer
from tracker.errors import StorageUnavailable
from tracker.i18n.catalogue import normalise_locale, survey_question, text
from tracker.mail.buttons import end_labels, rating_buttons
from tracker.model import Survey
from tracker.schema_cache import schema
from tracker.surveys.optout import unsubscribe as unsubscribe_address
from tracker.surveys.tokens import read_token
from tracker.web.api.schemas import AnswerFormSchema, PageQuerySchema
from tracker.web.context import current_tracker
from tracker.web.errors import error_page, page, unavailable_page
from tracker.web.pages import extra as extra_questions
from tracker.web.pages import followup, steps

log = logging.getLogger(__name__)
bp = Blueprint("survey", __name__, static_folder="../static", static_url_path="/static/survey")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _lang() -> str:
    """Return the language of the survey being shown, else the browser's."""
    return g.get("lang") or normalise_locale(request.headers.get("Accept-Language"))


def _open(token: str) -> Survey:
    tracker = current_tracker()
    survey = open_survey(tracker.store, tracker.settings, token, _now_ms())
    g.lang = survey.lang
    g.survey = survey  # the page's branding reads it from here (brand.py), not from Redis again
    return survey


def _unavailable(exc: SurveyUnavailable) -> Any:
    if exc.status == 410:
        return page(410, "page.expired_title", "page.expired_text", exc.lang)
    return page(404, "page.not_found_title", "page.not_found_text", _lang())


def question_page(token: str, survey: Survey, selected: int | None, comment: str = "",
                  error: str | None = None, status: int = 200) -> Any:
    """Render the question with a rating preselected (None: none) and the comment given so far: the page a
    survey link opens (and `tracker survey preview` writes)."""
    settings = current_tracker().settings
    buttons = rating_buttons(survey.lang, survey.scale)
    return render_template(
        "pages/question.html", lang=survey.lang, scale=survey.scale, choices=buttons,
        ends=end_labels(survey.scale, buttons), question=survey_question(survey.lang, survey.scale, survey.kind),
        selected=selected, comment=comment, error=error, subject=survey.subject, ticket_ref=survey.ticket_ref,
        until=steps.until(survey, settings), action=url_for("survey.answer", token=token)), status


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
    if survey.status == "answered" and (answer := current_tracker().store.response(survey.sid)):
        # Re-opening any rating link of an answered survey keeps the comment already given.
        return question_page(token, survey, answer.rating if rating is None else rating, answer.comment or "")
    return question_page(token, survey, rating)


@bp.post("/s/<token>")
def answer(token: str) -> Any:
    """Record the rating and comment (the latest counts, once); ask why if unsatisfied, else thank."""
    tracker = current_tracker()
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    try:
        form = schema(AnswerFormSchema).load(request.form)
        happy = is_satisfied(survey, tracker.settings, form["rating"])
        # A reason belongs to its side (unhappy, or satisfied when asked): it is kept until the next step.
        reason = followup.reason_on_rating(tracker.store.response(survey.sid), happy, steps.custom_survey(survey))
        outcome = record_answer(tracker.store, tracker.settings, survey, form["rating"], form["comment"], _now_ms(),
                                reason=reason, alerting=True)
    except (ValidationError, ValueError) as exc:
        comment = request.form.get("comment", "")[:COMMENT_MAX]
        failed = exc.messages if isinstance(exc, ValidationError) and isinstance(exc.messages, dict) else {}
        if "comment" in failed and "rating" not in failed:  # the rating stands; only the comment is too long
            kept = exc.valid_data.get("rating") if isinstance(exc, ValidationError) and \
                isinstance(exc.valid_data, dict) else None
            return question_page(token, survey, kept, comment, text(g.lang, "page.error_comment_long"), 422)
        return question_page(token, survey, None, comment, text(g.lang, "page.error_rating"), 422)
    alert_answer(tracker.settings, tracker.kick, survey, outcome, form["rating"])
    return followup.after_rating(token, survey, tracker.store.response(survey.sid))


@bp.route("/s/<token>/reason", methods=["GET", "POST"])
def reason(token: str) -> Any:
    """Show (GET) or record (POST) why an unsatisfied customer answered as they did."""
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    answer = current_tracker().store.response(survey.sid)
    if request.method == "GET":
        return followup.show(token, survey, answer)
    return followup.record(token, survey, answer, _now_ms())


@bp.route("/s/<token>/extra", methods=["GET", "POST"])
def extra(token: str) -> Any:
    """Show (GET) or record (POST) the answers to a custom survey's extra questions."""
    try:
        survey = _open(token)
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    answer = current_tracker().store.response(survey.sid)
    if request.method == "GET":
        return extra_questions.show(token, survey, answer)
    return extra_questions.record(token, survey, answer, _now_ms())


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """Confirm on GET, unsubscribe on POST (RFC 8058 one-click posts `List-Unsubscribe=One-Click`)."""
    tracker = current_tracker()
    sid = read_token(tracker.settings.secret_keys, token)
    survey = tracker.store.survey(sid) if sid else None
    if survey is None:
        return page(404, "page.not_found_title", "page.not_found_text", _lang())
    lang = g.lang = survey.lang
    if request.method == "GET":
        return render_template("pages/unsubscribe.html", lang=lang,
                               action=url_for("survey.unsubscribe", token=token))
    unsubscribe_address(tracker.store, tracker.settings, survey.customer, _now_ms())
    return page(200, "page.unsubscribed_title", "page.unsubscribed_text", lang)


# The app's handlers answer in English; on these pages the survey's (or browser's) language is known.
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return error_page(exc.code or 500, _lang())


@bp.errorhandler(StorageUnavailable)
def _storage_down(exc: StorageUnavailable) -> Any:
    log.error("storage unreachable: %s", exc)
    return unavailable_page(_lang())


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return page(500, "page.error_title", "page.error_text", _lang())
