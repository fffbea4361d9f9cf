"""After the answer: ask an unsatisfied customer why (a reason and a comment); thank everyone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError

from tracker.answers.record import expires_at, record_answer
from tracker.config import Settings
from tracker.i18n.catalogue import format_date, text
from tracker.scores.scales import SCALES
from tracker.web.api.schemas import ReasonFormSchema

BUILT_IN_REASONS = ("slow", "not_solved", "unfriendly", "unclear", "other")


def offered_reasons(settings: Settings, lang: str) -> list[tuple[str, str]]:
    """Return (value, label) of each reason to offer: the operator's list, else ours in the survey's language."""
    if settings.followup_reasons:
        return [(reason, reason) for reason in settings.followup_reasons]
    return [(key, text(lang, f"reason.{key}")) for key in BUILT_IN_REASONS]


def satisfied(survey: dict[str, str], settings: Settings, rating: int) -> bool:
    """Say whether a rating counts as satisfied on the survey's scale (SPEC.md §5)."""
    return SCALES[survey.get("scale") or settings.survey_scale].satisfied(rating)


def until(survey: dict[str, str], settings: Settings, lang: str) -> str:
    """Return the last day the answer can be changed, written for a reader of lang."""
    ms = expires_at(survey, settings)
    # Non-breaking spaces keep "7 December 2026" on one line on a phone.
    return format_date(lang, datetime.fromtimestamp(ms / 1000, tz=UTC).date()).replace(" ", "\u00a0")


def thanks(token: str, survey: dict[str, str], settings: Settings) -> Any:
    """Thank the customer, saying until when (and where) the answer can be changed."""
    lang = survey.get("lang") or "en"
    return render_template("pages/thanks.html", lang=lang, until=until(survey, settings, lang),
                           change_url=url_for("survey.question", token=token))


def ask_reason(token: str, survey: dict[str, str], settings: Settings, comment: str, reason: str,
               error: str | None = None, status: int = 200) -> Any:
    """Show the follow-up step: the offered reasons as a radio list and the comment box."""
    lang = survey.get("lang") or "en"
    return render_template(
        "pages/followup.html", lang=lang, reasons=offered_reasons(settings, lang), reason=reason,
        comment=comment, error=error, until=until(survey, settings, lang),
        action=url_for("survey.reason", token=token),
        change_url=url_for("survey.question", token=token)), status


def show(token: str, survey: dict[str, str], answer: dict[str, str]) -> Any:
    """Show the follow-up step again for an unsatisfied answer; send anyone else to the question."""
    settings = current_app.extensions["tracker"].settings
    if not answer or answer.get("satisfied") == "1":
        return redirect(url_for("survey.question", token=token), 303)
    return ask_reason(token, survey, settings, answer.get("comment", ""), answer.get("reason", ""))


def record(token: str, survey: dict[str, str], answer: dict[str, str], now_ms: int) -> Any:
    """Record the reason and comment on the stored answer, then thank the customer."""
    tracker = current_app.extensions["tracker"]
    if not answer:
        return redirect(url_for("survey.question", token=token), 303)
    lang = survey.get("lang") or "en"
    offered = [value for value, _ in offered_reasons(tracker.settings, lang)]
    try:
        form = ReasonFormSchema(offered).load(request.form)
    except ValidationError:
        comment = request.form.get("comment", "")[:2000]
        return ask_reason(token, survey, tracker.settings, comment, "", text(lang, "followup.error"), 422)
    # A reason belongs to an unsatisfied answer; one posted after a change to satisfied is dropped.
    reason = "" if answer.get("satisfied") == "1" else form["reason"]
    record_answer(tracker.store, tracker.settings, survey, int(answer["rating"]), form["comment"], now_ms,
                  reason=reason)
    return thanks(token, survey, tracker.settings)
