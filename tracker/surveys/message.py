"""The survey mail and its reminder, rendered for one survey: the links, threading and headers it needs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr

from tracker.config import Settings
from tracker.i18n.catalogue import text
from tracker.mail.message import SurveyMail, build_survey_message
from tracker.model import Survey
from tracker.surveys.tokens import make_token


def build_message(settings: Settings, survey: Survey, name: str | None, expires_ms: int) -> EmailMessage:
    """Render the survey mail for a survey."""
    token = make_token(settings.secret_key, survey.sid)
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return build_survey_message(SurveyMail(
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
    ), template_dir=os.path.join(settings.template_dir, "mail") if settings.template_dir else None)


def reminder_message(settings: Settings, survey: Survey, name: str | None) -> EmailMessage:
    """Render the reminder: the survey mail with the same token links, threaded under the first one."""
    message = build_message(settings, survey, name, survey.expires_at_ms or 0)
    subject = str(message["Subject"])
    message.replace_header("Subject", f"{text(survey.lang, 'mail.reminder_prefix')} {subject}")
    first = str(message["Message-ID"])
    local, _, domain = first.strip("<>").partition("@")
    message.replace_header("Message-ID", f"<{local}.reminder@{domain}>")
    message["In-Reply-To"] = first
    message["References"] = first
    return message
