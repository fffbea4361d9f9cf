"""The extra questions of a custom survey (TRACKER_SURVEYS_FILE), asked on the page after the rating."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from tracker.answers.record import record_answer
from tracker.i18n.catalogue import text
from tracker.model import Answer, Survey
from tracker.surveys.custom import ExtraQuestion
from tracker.web.context import current_tracker
from tracker.web.pages.steps import custom_survey, thanks, until

TEXT_MAX = 1000


def field_name(question: ExtraQuestion) -> str:
    """Name the form field that carries the answer to a question."""
    return f"extra-{question.id}"


def extra_form_schema(questions: tuple[ExtraQuestion, ...], lang: str) -> Schema:
    """Build the schema of the extra questions' form: each answer optional, a choice one of those offered."""
    errors = {"choice": text(lang, "extra.error_choice"), "text": text(lang, "extra.error_length", max=TEXT_MAX)}
    shape: dict[str, fields.Field] = {}
    for question in questions:
        rule = (validate.OneOf(question.choices, error=errors["choice"]) if question.type == "choice"
                else validate.Length(max=TEXT_MAX, error=errors["text"]))
        shape[field_name(question)] = fields.String(load_default="", validate=_unless_empty(rule))

    class ExtraFormSchema(Schema.from_dict(shape)):  # type: ignore[misc]
        """The extra questions' form: unknown fields (the skip button, a browser's own) are left out."""

        class Meta:
            unknown = EXCLUDE

        @pre_load
        def tidy(self, data: Any, **kwargs: Any) -> Any:
            # A textarea's maxlength counts a line break as one character; browsers send CRLF.
            return {name: str(data.get(name) or "").replace("\r\n", "\n").strip() for name in shape}

    return ExtraFormSchema()


def _unless_empty(rule: validate.Validator) -> Any:
    """Check an answer only when one was given: every extra question may be left unanswered."""

    def check(value: str) -> None:
        if value:
            rule(value)

    return check


def answers_of(questions: tuple[ExtraQuestion, ...], form: dict[str, str]) -> dict[str, str]:
    """Return the given answers by question id, in the questions' order (an empty answer is left out)."""
    return {q.id: form[field_name(q)] for q in questions if form.get(field_name(q))}


def ask(token: str, survey: Survey, questions: tuple[ExtraQuestion, ...], given: dict[str, str],
        errors: dict[str, str] | None = None, status: int = 200) -> Any:
    """Show the extra questions (choices as radio buttons, text as a box) with the answers given so far."""
    settings = current_tracker().settings
    return render_template(
        "pages/extra.html", lang=survey.lang, questions=questions, given=given, errors=errors or {},
        error=text(survey.lang, "extra.error") if errors else None, field_name=field_name, text_max=TEXT_MAX,
        action=url_for("survey.extra", token=token), until=until(survey, settings),
        change_url=url_for("survey.question", token=token)), status


def show(token: str, survey: Survey, answer: Answer | None) -> Any:
    """Show the extra questions again with the stored answers; send anyone not there yet to the question."""
    questions = custom_survey(survey).extra_questions
    if answer is None or not questions:
        return redirect(url_for("survey.question", token=token), 303)
    return ask(token, survey, questions, dict(answer.extra or {}))


def record(token: str, survey: Survey, answer: Answer | None, now_ms: int) -> Any:
    """Record the extra answers (all of them: the latest post counts), or skip them; then thank the customer."""
    tracker = current_tracker()
    questions = custom_survey(survey).extra_questions
    if answer is None or not questions:
        return redirect(url_for("survey.question", token=token), 303)
    if request.form.get("skip"):
        return thanks(token, survey, tracker.settings)  # skipping keeps whatever was answered before
    try:
        form = extra_form_schema(questions, survey.lang).load(request.form)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        errors = {q.id: str(_first(messages[field_name(q)])) for q in questions if field_name(q) in messages}
        kept = {q.id: request.form.get(field_name(q), "")[:TEXT_MAX * 2] for q in questions}
        return ask(token, survey, questions, kept, errors, 422)
    record_answer(tracker.store, tracker.settings, survey, answer.rating, answer.comment or "", now_ms,
                  extra=answers_of(questions, form))
    return thanks(token, survey, tracker.settings)


def _first(message: Any) -> Any:
    return message[0] if isinstance(message, list) and message else message
