"""The survey email: a multipart text and HTML message in the customer's language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tracker.i18n.catalogue import format_date, normalise_locale, survey_question, text
from tracker.mail.buttons import end_labels, rating_buttons

PACKAGED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
SUBJECT_MAX = 70
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class _SurveyPolicy(EmailPolicy):
    """Fold headers as usual, but keep List-Unsubscribe verbatim."""

    # The default policy turns a URL longer than a line into RFC 2047 encoded words, which
    # breaks one-click unsubscribe; this header is plain ASCII, so it is folded between URLs only.
    def fold(self, name: str, value: str) -> str:
        if name.lower() == "list-unsubscribe" and str(value).isascii():
            return f"{name}: " + f",{self.linesep} ".join(str(value).split(", ")) + self.linesep
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "list-unsubscribe" and str(value).isascii():
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _SurveyPolicy()


@dataclass(frozen=True, kw_only=True)
class SurveyMail:
    """Everything a survey email says; rating_url is the survey link with `{value}` where the rating goes."""

    to_email: str
    lang: str
    scale_name: str
    ticket_ref: str
    mail_from: str
    message_id: str
    rating_url: str
    unsubscribe_url: str
    expires_at: datetime
    to_name: str | None = None
    ticket_subject: str | None = None
    reply_to: str | None = None
    kind: str = "ticket"  # or "order": a post-purchase survey


def _one_line(value: str | None, limit: int | None = None) -> str:
    cleaned = " ".join(CONTROL.sub(" ", value or "").split())
    if limit and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _recipient(name: str, address: str) -> Address:
    """Address the customer; a non-ASCII local part (RFC 6531) is kept as given, for a server with SMTPUTF8."""
    if address.isascii():
        return Address(display_name=name, addr_spec=address)
    # Address(addr_spec=…) refuses such a local part outright; built from its parts it stands, and the
    # sender either carries it with SMTPUTF8 or refuses it with its reason.
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _context(mail: SurveyMail, lang: str) -> dict[str, Any]:
    name = _one_line(mail.to_name)
    ticket_subject = _one_line(mail.ticket_subject)
    order = mail.kind == "order"
    if order:
        subject = text(lang, "mail.subject_order", ref=mail.ticket_ref)
    elif ticket_subject:
        subject = text(lang, "mail.subject", subject=_one_line(ticket_subject, SUBJECT_MAX))
    else:
        subject = text(lang, "mail.subject_ref", ref=mail.ticket_ref)
    buttons = rating_buttons(lang, mail.scale_name, mail.rating_url)
    question = survey_question(lang, mail.scale_name, mail.kind)
    return {
        "lang": lang,
        "t": lambda key, **params: text(lang, key, **params),
        "subject": subject,
        "preheader": question,
        "greeting": text(lang, "mail.greeting_name", name=name) if name else text(lang, "mail.greeting"),
        "intro": text(lang, "mail.intro_order" if order else "mail.intro", ref=mail.ticket_ref),
        "ticket_ref": mail.ticket_ref,
        "ticket_subject": ticket_subject,
        "question": question,
        "buttons": buttons,
        "ends": end_labels(mail.scale_name, buttons),
        "cell_width": 100 // max(len(buttons), 1),
        "face_size": 15 if len(buttons) > 7 else 20,
        "reply_hint": text(lang, "mail.reply_hint") if mail.reply_to else "",
        "expires": text(lang, "mail.expires", date=format_date(lang, mail.expires_at.date())),
        "footer": text(lang, "mail.footer_order" if order else "mail.footer", ref=mail.ticket_ref),
        "unsubscribe": text(lang, "mail.unsubscribe"),
        "unsubscribe_url": mail.unsubscribe_url,
    }


@lru_cache(maxsize=8)
def _environment(template_dir: str | None) -> Environment:
    loaders = [FileSystemLoader(template_dir)] if template_dir else []
    loaders.append(FileSystemLoader(PACKAGED_TEMPLATES))
    return Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


def render_survey(mail: SurveyMail, template_dir: str | None = None) -> tuple[str, str, str]:
    """Render the subject, text part and HTML part of a survey email."""
    context = _context(mail, normalise_locale(mail.lang))
    environment = _environment(template_dir)
    plain = environment.get_template("survey.txt").render(context)
    html = environment.get_template("survey.html").render(context)
    return context["subject"], plain, html


def build_survey_message(mail: SurveyMail, template_dir: str | None = None) -> EmailMessage:
    """Build the survey email; files in template_dir override the packaged templates by name."""
    subject, plain, html = render_survey(mail, template_dir)
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = subject
    msg["From"] = mail.mail_from
    msg["To"] = _recipient(_one_line(mail.to_name), mail.to_email)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = mail.message_id
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    msg["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    # Set last: set_content drops every Content-* header already present.
    msg["Content-Language"] = normalise_locale(mail.lang)
    return msg
