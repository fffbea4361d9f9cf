"""Every page a customer of one survey can see, rendered by the views' own renderers: for `tracker survey preview`,
and for the start-up check of the operator's page templates (tracker.web.pages.check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, render_template, url_for

from tracker.config import Settings
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey


def page_renderers(settings: Settings, survey: Survey, token: str,
                   custom: CustomSurvey | None) -> dict[str, Callable[[], str]]:
    """Say how to render each page a customer of this survey can see, by file name (inside a request context)."""
    from tracker.web.errors import page
    from tracker.web.pages import extra, followup, steps
    from tracker.web.pages.survey import question_page

    chosen = custom or CustomSurvey()

    def html(rendered: Any) -> str:
        return rendered[0] if isinstance(rendered, tuple) else rendered

    pages: dict[str, Callable[[], str]] = {
        "question": lambda: html(question_page(token, survey, None)),
        "followup-unhappy": lambda: html(followup.ask_reason(token, survey, settings, "", "", chosen)),
    }
    templates = set(template_names())  # a TRACKER_TEMPLATE_DIR of an older version may lack the newer pages
    if chosen.followup_satisfied is not None and "pages/followup_satisfied.html" in templates:
        pages["followup-satisfied"] = lambda: html(followup.ask_reason(token, survey, settings, "", "", chosen,
                                                                       happy=True))
    if chosen.extra_questions and "pages/extra.html" in templates:
        pages["extra-questions"] = lambda: html(extra.ask(token, survey, chosen.extra_questions, {}))
    pages["thanks"] = lambda: html(steps.thanks(token, survey, settings))
    pages["unsubscribe"] = lambda: render_template("pages/unsubscribe.html", lang=survey.lang,
                                                   action=url_for("survey.unsubscribe", token=token))
    pages["expired"] = lambda: html(page(410, "page.expired_title", "page.expired_text", survey.lang))
    return pages


def template_names() -> list[str]:
    return current_app.jinja_env.list_templates(extensions=("html",))
