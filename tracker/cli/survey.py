"""`tracker survey …`: look at and try out the survey mail and pages (`preview`; `test-send` registers here too)."""

from __future__ import annotations

import argparse

from tracker.cli.help import describe
from tracker.cli.survey_test_send import register as register_test_send

PAGES: dict[str, tuple[str, str, str]] = {
    "survey": ("preview the survey mail and pages, or send a test survey",
               "Look at what customers get before they get it: `preview` writes the mail and every page as "
               "files for a brand, source and language (with TRACKER_SURVEYS_FILE's text and branding).",
               "examples:\n  tracker survey preview --brand acme --locale nb --out /tmp/preview"),
    "survey preview": ("write the survey mail and every page as files",
                       "Write the survey mail (mail.html, mail.txt, mail.eml) and every page a customer can see "
                       "(question, follow-up for an unhappy answer, for a satisfied one when configured, the extra "
                       "questions when configured, thanks, expired) as HTML files into --out, as they look for "
                       "this brand, source and language with TRACKER_SURVEYS_FILE applied. Needs no Redis and no "
                       "mail server; reads the settings it can (TRACKER_SURVEYS_FILE, TRACKER_SURVEY_SCALE, "
                       "TRACKER_PUBLIC_URL, TRACKER_MAIL_FROM, …).",
                       "examples:\n  tracker survey preview --brand acme --locale en --out preview\n"
                       "  tracker survey preview --brand acme --source zendesk --locale nb --out preview-nb"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse._SubParsersAction[
        argparse.ArgumentParser]:
    """Add the `survey` group with `preview`; return its sub-parsers so other actions (test-send) join it."""
    group = describe(sub, "survey", PAGES)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    preview = describe(actions, "survey preview", PAGES)
    preview.add_argument("--brand", default="", help="the brand as the helpdesk names it (default: none)")
    preview.add_argument("--source", default="", help="the source, e.g. zendesk (default: none)")
    preview.add_argument("--locale", default="en", help="the language: en, nb, sv, da, de, fr, es or nl")
    preview.add_argument("--scale", help="the scale (default: the one the brand or source gets)")
    preview.add_argument("--out", required=True, help="the folder the files are written to (made if missing)")
    preview.set_defaults(run=cmd_preview)
    register_test_send(actions)
    return actions


def cmd_preview(args: argparse.Namespace) -> int:
    from tracker.cli.survey_preview import write_preview

    return write_preview(args.brand, args.source, args.locale, args.scale, args.out)
