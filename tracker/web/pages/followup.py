"""After the rating: the follow-up (why, for an unsatisfied answer; what went well, when the surveys file asks),
then the extra questions when the survey has some, then thanks."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from marshmallow import ValidationError

from tracker.answers.record import COMMENT_MAX, record_answer
from tracker.config import Settings
from tracker.i18n.catalogue import text
from tracker.model import Answer, Survey
from tracker.surveys.custom import CustomSurvey, Followup
from tracker.web.api.schemas import ReasonFormSchema
from tracker.web.context import current_tracker
from tracker.web.pages import extra
from tracker.web.pages.steps import custom_survey, thanks, until

BUILT_IN_REASONS = ("slow", "not_solved", "unfriendly", "unclear", "other")


def offered_reasons(settings: Settings, lang: str, custom: Followup | None = None) -> list[tuple[str, str]]:
    """Return (value, label) of each reason to offer an unsatisfied customer: the surveys file's, the operator's
    list, else ours in the survey's language."""
    if custom is not None and custom.reasons:
        return [(reason, reason) for reason in custom.reasons]
    if settings.followup_reasons:
        return [(reason, reason) for reason in settings.followup_reasons]
    return [(key, text(lang, f"reason.{key}")) for key in BUILT_IN_REASONS]


def reason_on_rating(previous: Answer | None, happy: bool, custom: CustomSurvey) -> str | None:
    """Say what a new rating does to the stored reason: "" clears it, None keeps it.

    A reason belongs to its side: an unhappy reason is cleared when the answer turns satisfied, and a satisfied
    one (only when the surveys file asks what went well) when it turns unsatisfied.
    """
    if happy and custom.followup_satisfied is None:
        return ""
    if previous is not None and previous.satisfied != happy:
        return ""
    return None


def after_rating(token: str, survey: Survey, answer: Answer | None) -> Any:
    """Show the step that follows a recorded rating: the follow-up of its side, else the extra questions, else
    thanks."""
    settings, custom = current_tracker().settings, custom_survey(survey)
    if answer is not None and (not answer.satisfied or custom.followup_satisfied is not None):
        return ask_reason(token, survey, settings, answer.comment or "", answer.reason or "", custom, answer.satisfied)
    if answer is not None and custom.extra_questions:
        return extra.ask(token, survey, custom.extra_questions, dict(answer.extra or {}))
    return thanks(token, survey, settings)


def ask_reason(token: str, survey: Survey, settings: Settings, comment: str, reason: str,
               custom: CustomSurvey | None = None, happy: bool = False, error: str | None = None,
               status: int = 200) -> Any:
    """Show the follow-up step: the offered reasons as a radio list and the comment box."""
    custom = custom or CustomSurvey()
    common = {"lang": survey.lang, "comment": comment, "error": error, "until": until(survey, settings),
              "action": url_for("survey.reason", token=token), "change_url": url_for("survey.question", token=token)}
    if happy:
        asked = custom.followup_satisfied or Followup()
        reasons = [(value, value) for value in asked.reasons]
        return render_template("pages/followup_satisfied.html", reasons=reasons, reason=reason,
                               question=asked.question or text(survey.lang, "followup.happy_legend"),
                               **common), status
    legend = custom.followup.question if custom.followup else None
    return render_template("pages/followup.html", reasons=offered_reasons(settings, survey.lang, custom.followup),
                           reason=reason, legend=legend, **common), status


def show(token: str, survey: Survey, answer: Answer | None) -> Any:
    """Show the follow-up step again for an answer that has one; send anyone else to the question."""
    settings, custom = current_tracker().settings, custom_survey(survey)
    if answer is None or (answer.satisfied and custom.followup_satisfied is None):
        return redirect(url_for("survey.question", token=token), 303)
    return ask_reason(token, survey, settings, answer.comment or "", answer.reason or "", custom, answer.satisfied)


def record(token: str, survey: Survey, answer: Answer | None, now_ms: int) -> Any:
    """Record the reason and comment on the stored answer, then ask the extra questions or thank the customer."""
    tracker = current_tracker()
    if answer is None:
        return redirect(url_for("survey.question", token=token), 303)
    custom = custom_survey(survey)
    # A satisfied answer has reasons of its own only when the surveys file asks what went well.
    happy = answer.satisfied and custom.followup_satisfied is not None
    offered = (list(custom.followup_satisfied.reasons) if happy and custom.followup_satisfied
               else [value for value, _ in offered_reasons(tracker.settings, survey.lang, custom.followup)])
    try:
        form = ReasonFormSchema(offered).load(request.form)
    except ValidationError as exc:
        comment = request.form.get("comment", "")[:COMMENT_MAX]
        failed = exc.messages if isinstance(exc.messages, dict) else {}
        if "comment" in failed and "reason" not in failed:  # the reason stands; only the comment is too long
            kept = str(exc.valid_data.get("reason") or "") if isinstance(exc.valid_data, dict) else ""
            return ask_reason(token, survey, tracker.settings, comment, kept, custom, happy,
                              text(survey.lang, "page.error_comment_long"), 422)
        return ask_reason(token, survey, tracker.settings, comment, "", custom, happy,
                          text(survey.lang, "followup.error"), 422)
    # Without that question, a reason posted after a change to satisfied is dropped.
    reason = "" if answer.satisfied and not happy else form["reason"]
    record_answer(tracker.store, tracker.settings, survey, answer.rating, form["comment"], now_ms, reason=reason)
    if custom.extra_questions:
        return extra.ask(token, survey, custom.extra_questions, dict(answer.extra or {}))
    return thanks(token, survey, tracker.settings)
