"""The survey mail and its reminder, rendered for one survey: the links, threading and headers it needs."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parseaddr
from functools import lru_cache

from tracker.config import Settings
from tracker.mail.message import SurveyMail
from tracker.mail.wire import EncodedMail, encode_survey_message
from tracker.model import Survey
from tracker.surveys.tokens import make_token


@lru_cache(maxsize=16)
def _domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


def survey_mail(settings: Settings, survey: Survey, name: str | None, expires_ms: int) -> SurveyMail:
    """Say what the survey mail of a survey holds: its links, its threading and its headers."""
    token = make_token(settings.secret_key, survey.sid)
    domain = _domain(settings.mail_from)
    return SurveyMail(
        to_email=survey.customer,
        to_name=name or None,
        lang=survey.lang,
        scale_name=survey.scale,
        ticket_subject=survey.subject,
        ticket_ref=survey.ticket_ref,
        mail_from=settings.mail_from,
        message_id=f"<{survey.sid}@{domain}>",
        rating_url=f"{settings.public_url}/s/{token}?rating={{value}}",
        unsubscribe_url=f"{settings.public_url}/u/{token}",
        reply_to=f"reply+{token}@{settings.reply_domain}" if settings.reply_domain else None,
        expires_at=datetime.fromtimestamp(expires_ms / 1000, tz=UTC),
        kind=survey.kind,
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
