"""Survey mail: rendering, sending over SMTP, and the dev mail catcher (tracker.mail.catcher)."""

from tracker.mail.errors import MailError, PermanentMailError, TransientMailError
from tracker.mail.message import SurveyMail, build_survey_message, render_survey
from tracker.mail.smtp import SmtpSender, SmtpTarget, parse_smtp_url

__all__ = [
    "MailError",
    "PermanentMailError",
    "SmtpSender",
    "SmtpTarget",
    "SurveyMail",
    "TransientMailError",
    "build_survey_message",
    "parse_smtp_url",
    "render_survey",
]
