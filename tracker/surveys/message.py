"""The survey mail and its reminder, rendered for one survey: the links, threading and headers it needs."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import lru_cache

from tracker.config import Settings
from tracker.mail.branding import Branding
from tracker.mail.message import SurveyMail
from tracker.mail.wire import EncodedMail, encode_survey_message
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey
from tracker.surveys.tokens import make_token


@lru_cache(maxsize=16)
def _domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


def custom_survey(settings: Settings, survey: Survey) -> CustomSurvey | None:
    """Return what TRACKER_SURVEYS_FILE sets for a survey's brand, source and language, or None."""
    return settings.surveys.pick(survey.brand, survey.source, survey.lang) if settings.surveys else None


@lru_cache(maxsize=256)
def mail_branding(custom: CustomSurvey, scale_name: str, public_url: str, brand: str | None) -> Branding | None:
    """Say what a survey mail shows of a surveys file's entry: question, labels, colour, logo (absolute URL)."""
    logo_alt = parseaddr(custom.mail_from)[0] if custom.mail_from else ""
    branding = Branding(question=custom.question, labels=custom.labels_for(scale_name), colour=custom.colour,
                        logo_url=f"{public_url}{custom.logo.url_path}" if custom.logo else None,
                        logo_alt=logo_alt or (brand or "") if custom.logo else "")
    return None if branding == Branding() else branding


def survey_mail(settings: Settings, survey: Survey, name: str | None, expires_ms: int) -> SurveyMail:
    """Say what the survey mail of a survey holds: its links, its threading, its headers and its branding."""
    token = make_token(settings.secret_key, survey.sid)
    # The Message-ID keeps the product's domain: replies that lost the reply+ address are matched by it.
    domain = _domain(settings.mail_from)
    custom = custom_survey(settings, survey)
    reply_domain = (custom and custom.reply_domain) or settings.reply_domain
    return SurveyMail(
        to_email=survey.customer,
        to_name=name or None,
        lang=survey.lang,
        scale_name=survey.scale,
        ticket_subject=survey.subject,
        ticket_ref=survey.ticket_ref,
        mail_from=(custom and custom.mail_from) or settings.mail_from,
        message_id=f"<{survey.sid}@{domain}>",
        rating_url=f"{settings.public_url}/s/{token}?rating={{value}}",
        unsubscribe_url=f"{settings.public_url}/u/{token}",
        reply_to=f"reply+{token}@{reply_domain}" if reply_domain else None,
        expires_at=datetime.fromtimestamp(expires_ms / 1000, tz=UTC),
        kind=survey.kind,
        branding=mail_branding(custom, survey.scale, settings.public_url, survey.brand) if custom else None,
    )


def _templates(settings: Settings) -> str | None:
    return os.path.join(settings.template_dir, "mail") if settings.template_dir else None


def build_message(settings: Settings, survey: Survey, name: str | None, expires_ms: int) -> EncodedMail:
    """Write the survey mail for a survey, ready for its sender."""
    return encode_survey_message(survey_mail(settings, survey, name, expires_ms), _templates(settings))


def reminder_message(settings: Settings, survey: Survey, name: str | None) -> EncodedMail:
    """Write the reminder: the survey mail with the same token links, threaded under the first one."""
    mail = survey_mail(settings, survey, name, survey.expires_at_ms or 0)
    local, _, domain = mail.message_id.strip("<>").partition("@")
    reminder = replace(mail, message_id=f"<{local}.reminder@{domain}>", reminder_of=mail.message_id)
    return encode_survey_message(reminder, _templates(settings))
