"""A brand's look on the survey pages: its logo and stylesheet routes, and what the page templates are given."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from flask import Blueprint, Response, abort, g, request, url_for

from tracker.errors import StorageUnavailable
from tracker.mail.branding import page_stylesheet
from tracker.mail.buttons import Button, end_labels, rating_buttons
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey
from tracker.surveys.custom.model import LOGO_ROUTE
from tracker.surveys.message import custom_survey
from tracker.surveys.tokens import read_token
from tracker.web.context import current_tracker

bp = Blueprint("brand", __name__)
# Both URLs name their content (a digest, a colour), so browsers and mail proxies may keep them for a year.
FOREVER = "public, max-age=31536000, immutable"
# A logo is an image, never a document: an SVG opened on its own runs no script and loads nothing.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
COLOUR = re.compile(r"[0-9a-f]{6}")


@dataclass(frozen=True)
class PageBrand:
    """What the page templates show of a surveys file's entry (`survey_brand` in every template)."""

    stylesheet: str | None = None  # URL of the per-brand stylesheet (the colour as CSS custom properties)
    logo: str | None = None  # URL of the logo
    logo_alt: str = ""
    thanks: str | None = None  # the thank-you page's heading
    question: str | None = None
    choices: tuple[Button, ...] = ()  # the rating buttons with the entry's labels
    ends: tuple[str, str] | None = None


def page_brand(custom: CustomSurvey | None, survey: Survey) -> PageBrand | None:
    """Say what the pages of a survey show of its entry, or None when it changes nothing there."""
    if custom is None:
        return None
    labels = custom.labels_for(survey.scale)
    choices = tuple(rating_buttons(survey.lang, survey.scale, labels=labels)) if labels else ()
    shown = PageBrand(
        stylesheet=url_for("brand.stylesheet", colour=custom.colour[1:]) if custom.colour else None,
        logo=custom.logo.url_path if custom.logo else None,
        logo_alt=(parseaddr(custom.mail_from)[0] if custom.mail_from else "") or (survey.brand or ""),
        thanks=custom.thanks, question=custom.question, choices=choices,
        ends=end_labels(survey.scale, list(choices)) if choices else None)
    return None if shown == PageBrand(logo_alt=shown.logo_alt) else shown


def _requested_survey() -> Survey | None:
    """Return the survey whose token this request names (a survey or unsubscribe page), else None: the one the view
    opened, or (an expired or unsubscribe page) read by its token."""
    if g.get("survey") is not None:
        return g.survey  # type: ignore[no-any-return]
    token = (request.view_args or {}).get("token")
    tracker = current_tracker()
    sid = read_token(tracker.settings.secret_keys, token) if isinstance(token, str) else None
    return tracker.store.survey(sid) if sid else None


@bp.app_context_processor
def _survey_brand() -> dict[str, Any]:
    """Give every page of a survey (question, follow-ups, thanks, expired, unsubscribe) its entry's branding."""
    if "survey_brand" not in g:
        g.survey_brand = None
        settings = current_tracker().settings
        if settings.surveys is not None and request.blueprint == "survey":
            try:
                survey = _requested_survey()
            except StorageUnavailable:
                survey = None  # the page says storage is down; it need not be branded
            g.survey_brand = page_brand(custom_survey(settings, survey), survey) if survey else None
    return {"survey_brand": g.survey_brand}


@bp.get(f"{LOGO_ROUTE}/<name>")
def logo(name: str) -> Response:
    """Serve a logo from the surveys file by its digest name, cached for a year."""
    surveys = current_tracker().settings.surveys
    found = surveys.logos().get(name) if surveys else None
    if found is None:
        abort(404)
    response = Response(found.data, mimetype=found.content_type)
    response.headers["Cache-Control"] = FOREVER
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    return response


@bp.get("/s/brand-style/<colour>.css")
def stylesheet(colour: str) -> Response:
    """Serve the pages' stylesheet for a brand colour the surveys file names, cached for a year."""
    surveys = current_tracker().settings.surveys
    colours = {e.settings.colour for e in surveys.entries} if surveys else set()
    if not COLOUR.fullmatch(colour) or f"#{colour}" not in colours:
        abort(404)
    response = Response(page_stylesheet(f"#{colour}"), mimetype="text/css")
    response.headers["Cache-Control"] = FOREVER
    return response
