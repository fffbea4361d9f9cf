"""`tracker survey test-send EMAIL`: mail one real survey that no score counts, and print its link."""

from __future__ import annotations

import argparse
import sys
import time

from marshmallow import Schema, ValidationError, fields, validate

from tracker.cli.base import UsageError, open_store, settings_for
from tracker.cli.help import describe
from tracker.config import SCALES
from tracker.i18n.catalogue import SUPPORTED
from tracker.mail.errors import MailError

# How long test-send waits for each reply of the SMTP server: an operator waits on it (the worker waits 30 s, and
# tries a silent server again later).
SMTP_TIMEOUT = 10.0

PAGES: dict[str, tuple[str, str, str]] = {
    "survey test-send": (
        "mail one real survey that no score counts",
        "Mail one survey to EMAIL through the configured mail transport (TRACKER_SMTP_URL or "
        "TRACKER_MAIL_TRANSPORT), with the same template, text and branding a survey of this brand, source and "
        "language gets (TRACKER_SURVEYS_FILE), and print its link. It is a test survey: its send and its answer "
        "count in no score, emit no event and open no case, and it neither checks nor takes the customer's "
        "throttle. Needs Redis (the answer page reads the survey there) and the mail server.",
        "examples:\n  tracker survey test-send me@acme.example --brand acme --locale nb\n"
        "  tracker survey test-send me@acme.example --source zendesk --scale nps"),
}


class TestSendSchema(Schema):
    """What test-send is asked for: an address, and optionally the brand, source, language and scale."""

    email = fields.Email(required=True, validate=validate.Length(max=320))
    brand = fields.String(load_default="", validate=validate.Length(max=200))
    source = fields.String(load_default="", validate=validate.Length(max=100))
    locale = fields.String(load_default="en", validate=validate.OneOf(SUPPORTED))
    scale = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SCALES))


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `test-send` to the `survey` group."""
    command = describe(actions, "survey test-send", PAGES)
    command.add_argument("email", metavar="EMAIL", help="the address the test survey goes to")
    command.add_argument("--brand", default="", help="the brand as the helpdesk names it (default: none)")
    command.add_argument("--source", default="", help="the source, e.g. zendesk (default: none)")
    command.add_argument("--locale", default="en", help="the language: " + ", ".join(SUPPORTED))
    command.add_argument("--scale", help="the scale (default: the one the brand or source gets)")
    command.set_defaults(run=cmd_test_send)


def cmd_test_send(args: argparse.Namespace) -> int:
    from tracker.mail.http import make_sender
    from tracker.mail.smtp import SmtpSender, SmtpTimeout
    from tracker.surveys.test_send import make_test_survey, send_test_survey

    try:
        asked = TestSendSchema().load({"email": args.email.strip(), "brand": args.brand, "source": args.source,
                                       "locale": args.locale.strip().lower(), "scale": args.scale})
    except ValidationError as exc:
        field, messages = next(iter(exc.normalized_messages().items()))
        raise UsageError(f"{'EMAIL' if field == 'email' else '--' + field}: {_first(messages)}") from None
    settings = settings_for("all")
    store = open_store(settings)
    now_ms = int(time.time() * 1000)
    survey = make_test_survey(settings, asked["email"], asked["brand"], asked["source"], asked["locale"],
                              asked["scale"], now_ms)
    try:
        with (SmtpSender(settings.smtp_url, timeout=SMTP_TIMEOUT) if settings.mail_transport == "smtp"
              else make_sender(settings)) as sender:
            link = send_test_survey(store, settings, sender, survey, now_ms)
    except SmtpTimeout as exc:  # no answer is nothing the server said
        print(f"tracker: the test survey was not sent: {exc}", file=sys.stderr)
        return 4
    except MailError as exc:
        print(f"tracker: the test survey was not sent: the mail server said: {exc}", file=sys.stderr)
        return 4
    print(f"Sent a test survey to {survey.customer} ({survey.scale}, {survey.lang}"
          f"{', brand ' + survey.brand if survey.brand else ''}). It is a test: its answer counts in no score.")
    print(f"Survey link: {link}")
    return 0


def _first(messages: object) -> str:
    return str(messages[0] if isinstance(messages, list) and messages else messages)
