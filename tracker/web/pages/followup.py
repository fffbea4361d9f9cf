"""After the answer: ask an unsatisfied customer why (a reason and a comment); thank everyone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import redirect, render_template, request, url_for
from marshmallow import ValidationError

from tracker.answers.record import expires_at, record_answer
from tracker.config import Settings
from tracker.i18n.catalogue import format_date, text
from tracker.model import Answer, Survey
from tracker.web.api.schemas import ReasonFormSchema
from tracker.web.context import current_tracker

BUILT_IN_REASONS = ("slow", "not_solved", "unfriendly", "unclear", "other")


def offered_reasons(settings: Settings, lang: str) -> list[tuple[str, str]]:
    """Return (value, label) of each reason to offer: the operator's list, else ours in the survey's language."""
    if settings.followup_reasons:
        return [(reason, reason) for reason in settings.followup_reasons]
    return [(key, text(lang, f"reason.{key}")) for key in BUILT_IN_REASONS]


def until(survey: Survey, settings: Settings) -> str:
    """Return the last day the answer can be changed, written for a reader of the survey's language."""
    ms = expires_at(survey, settings)
    # Non-breaking spaces keep "7 December 2026" on one line on a phone.
    return format_date(survey.lang, datetime.fromtimestamp(ms / 1000, tz=UTC).date()).replace(" ", "\u00a0")


def thanks(token: str, survey: Survey, settings: Settings) -> Any:
    """Thank the customer, saying until when (and where) the answer can be changed."""
    return render_template("pages/thanks.html", lang=survey.lang, until=until(survey, settings),
                           change_url=url_for("survey.question", token=token))


def ask_reason(token: str, survey: Survey, settings: Settings, comment: str, reason: str,
               error: str | None = None, status: int = 200) -> Any:
    """Show the follow-up step: the offered reasons as a radio list and the comment box."""
    return render_template(
        "pages/followup.html", lang=survey.lang, reasons=offered_reasons(settings, survey.lang), reason=reason,
        comment=comment, error=error, until=until(survey, settings),
        action=url_for("survey.reason", token=token),
        change_url=url_for("survey.question", token=token)), status


def show(token: str, survey: Survey, answer: Answer | None) -> Any:
    """Show the follow-up step again for an unsatisfied answer; send anyone else to the question."""
    settings = current_tracker().settings
    if answer is None or answer.satisfied:
        return redirect(url_for("survey.question", token=token), 303)
    return ask_reason(token, survey, settings, answer.comment or "", answer.reason or "")


def record(token: str, survey: Survey, answer: Answer | None, now_ms: int) -> Any:
    """Record the reason and comment on the stored answer, then thank the customer."""
    tracker = current_tracker()
    if answer is None:
        return redirect(url_for("survey.question", token=token), 303)
    offered = [value for value, _ in offered_reasons(tracker.settings, survey.lang)]
    try:
        form = ReasonFormSchema(offered).load(request.form)
    except ValidationError:
        comment = request.form.get("comment", "")[:2000]
        return ask_reason(token, survey, tracker.settings, comment, "", text(survey.lang, "followup.error"), 422)
    # A reason belongs to an unsatisfied answer; one posted after a change to satisfied is dropped.
    reason = "" if answer.satisfied else form["reason"]
    record_answer(tracker.store, tracker.settings, survey, answer.rating, form["comment"], now_ms, reason=reason)
    return thanks(token, survey, tracker.settings)
