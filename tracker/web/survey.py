"""The customer's pages: the survey question, the answer, thanks, and one-click unsubscribe."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from marshmallow import ValidationError

from tracker.answers import SurveyUnavailable, expires_at, open_survey, record_answer
from tracker.i18n import format_date, scale_labels, survey_question, text
from tracker.tokens import read_token
from tracker.web.errors import page
from tracker.web.schemas import AnswerFormSchema, PageQuerySchema

bp = Blueprint("survey", __name__, static_folder="static", static_url_path="/static/survey")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _until(survey: dict[str, str], lang: str) -> str:
    ms = expires_at(survey, current_app.extensions["tracker"].settings)
    return format_date(lang, datetime.fromtimestamp(ms / 1000, tz=UTC).date())


def _unavailable(exc: SurveyUnavailable) -> Any:
    if exc.status == 410:
        return page(410, "page.expired_title", "page.expired_text", exc.lang)
    return page(404, "page.not_found_title", "page.not_found_text")


def _question(token: str, survey: dict[str, str], selected: int | None, comment: str = "",
              error: str | None = None, status: int = 200) -> Any:
    lang = survey.get("lang") or "en"
    return render_template(
        "pages/question.html", lang=lang, scale=survey["scale"], labels=scale_labels(lang, survey["scale"]),
        question=survey_question(lang, survey["scale"], survey.get("kind") or "ticket"),
        selected=selected, comment=comment, error=error, subject=survey.get("subject") or None,
        ticket_ref=f"#{survey.get('ticket_id', '')}", until=_until(survey, lang),
        action=url_for("survey.answer", token=token)), status


@bp.get("/s/<token>")
def question(token: str) -> Any:
    """Show the question with the clicked rating preselected; never change anything (scanners follow links)."""
    tracker = current_app.extensions["tracker"]
    try:
        survey = open_survey(tracker.store, tracker.settings, token, _now_ms())
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    try:
        rating = PageQuerySchema().load(request.args)["rating"]
    except ValidationError:
        rating = None
    if rating is None and survey.get("status") == "answered":
        answer = tracker.store.response(survey["sid"])
        return _question(token, survey, int(answer["rating"]), answer.get("comment", ""))
    return _question(token, survey, rating)


@bp.post("/s/<token>")
def answer(token: str) -> Any:
    """Record the rating and comment (the latest answer counts, once) and thank the customer."""
    tracker = current_app.extensions["tracker"]
    try:
        survey = open_survey(tracker.store, tracker.settings, token, _now_ms())
    except SurveyUnavailable as exc:
        return _unavailable(exc)
    lang = survey.get("lang") or "en"
    try:
        form = AnswerFormSchema().load(request.form)
        record_answer(tracker.store, tracker.settings, survey, form["rating"], form["comment"], _now_ms())
    except (ValidationError, ValueError):
        comment = request.form.get("comment", "")[:2000]
        return _question(token, survey, None, comment, text(lang, "page.error_rating"), 422)
    return render_template("pages/thanks.html", lang=lang, until=_until(survey, lang),
                           change_url=url_for("survey.question", token=token))


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """Confirm on GET, unsubscribe on POST (RFC 8058 one-click posts `List-Unsubscribe=One-Click`)."""
    tracker = current_app.extensions["tracker"]
    sid = read_token(tracker.settings.secret_key, token)
    survey = tracker.store.survey(sid) if sid else {}
    if not survey:
        return page(404, "page.not_found_title", "page.not_found_text")
    lang = survey.get("lang") or "en"
    if request.method == "GET":
        return render_template("pages/unsubscribe.html", lang=lang,
                               action=url_for("survey.unsubscribe", token=token))
    tracker.store.unsubscribe(survey["customer"], _now_ms())
    return page(200, "page.unsubscribed_title", "page.unsubscribed_text", lang)
