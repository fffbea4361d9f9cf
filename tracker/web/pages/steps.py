"""What the pages after the question share: the survey's texts from the surveys file, the last day its answer can
be changed, and the thanks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import render_template, url_for

from tracker.answers.record import expires_at
from tracker.config import Settings
from tracker.i18n.catalogue import format_date
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey
from tracker.web.context import current_tracker


def custom_survey(survey: Survey) -> CustomSurvey:
    """Return what TRACKER_SURVEYS_FILE sets for this survey (an empty CustomSurvey without one)."""
    surveys = current_tracker().settings.surveys
    picked = surveys.pick(survey.brand, survey.source, survey.lang) if surveys else None
    return picked or CustomSurvey()


def until(survey: Survey, settings: Settings) -> str:
    """Return the last day the answer can be changed, written for a reader of the survey's language."""
    ms = expires_at(survey, settings)
    # Non-breaking spaces keep "7 December 2026" on one line on a phone.
    return format_date(survey.lang, datetime.fromtimestamp(ms / 1000, tz=UTC).date()).replace(" ", "\u00a0")


def thanks(token: str, survey: Survey, settings: Settings) -> Any:
    """Thank the customer, saying until when (and where) the answer can be changed."""
    return render_template("pages/thanks.html", lang=survey.lang, until=until(survey, settings),
                           change_url=url_for("survey.question", token=token))
