"""`tracker erase`, `tracker export` and `tracker suppress`: a customer's data and opt-outs, for an operator."""

from __future__ import annotations

import argparse
import json
import sys
import time

from tracker.cli.base import UsageError, open_store, settings_for
from tracker.config import Settings
from tracker.privacy.erase import ErasureReport

# What `tracker erase` prints, in this order: (report field, one, many).
ERASED = (("profile", "profile", "profiles"), ("tickets", "ticket", "tickets"), ("orders", "order", "orders"),
          ("aliases", "alias", "aliases"), ("surveys", "survey", "surveys"), ("responses", "answer", "answers"),
          ("log_events", "logged event", "logged events"), ("dead_letters", "dead letter", "dead letters"),
          ("keys", "other key", "other keys"))


def _settings() -> Settings:
    """Read the settings: the store, and the secret that opt-outs are hashed with."""
    from tracker.surveys.optout import require_secret

    return require_secret(settings_for("store"))


def _email(text: str) -> str:
    from tracker.events import customer_address

    email = customer_address(text)
    if email is None:
        raise UsageError(f"{text!r} is not an email address")
    return email


def format_erasure(report: ErasureReport) -> str:
    """Render what an erasure removed, one sentence."""
    if not report.found:
        return f"Nothing is stored about {report.customer}; nothing was erased."
    parts = [f"{count} {one if count == 1 else many}" for name, one, many in ERASED
             for count in (getattr(report, name),)]
    kept = (" The address left the plain suppression list; it stays suppressed by a keyed hash."
            if report.suppressed else "")
    return f"Erased {report.customer}: " + ", ".join(parts) + ". Every aggregate was adjusted." + kept


def cmd_erase(args: argparse.Namespace) -> int:
    from tracker.privacy.erase import erase_customer

    settings = _settings()
    email = _email(args.email)
    print(format_erasure(erase_customer(open_store(settings), settings, email)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tracker.privacy.export import export_customer
    from tracker.schema_cache import schema
    from tracker.web.api.schemas import CustomerExportSchema

    settings = _settings()
    email = _email(args.email)
    found = export_customer(open_store(settings), settings, email)
    if found is None:
        raise UsageError(f"no customer {email!r} is known")
    print(json.dumps(schema(CustomerExportSchema).dump(found), indent=2, ensure_ascii=False))
    return 0


def cmd_suppress(args: argparse.Namespace) -> int:
    from tracker.surveys import optout

    settings = _settings()
    store = open_store(settings)
    if args.action == "list":
        listed = optout.suppression_list(store, settings)
        for email in listed.addresses:
            print(email)
        if listed.erased:  # on stderr, so the list stays one address a line for scripts
            one = listed.erased == 1
            print(f"{listed.erased} erased {'address is' if one else 'addresses are'} suppressed too (kept only as "
                  f"a keyed hash; `tracker suppress remove EMAIL` lifts one by its address).", file=sys.stderr)
        return 0
    email = _email(args.email)
    if args.action == "add":
        optout.suppress(store, settings, email, int(time.time() * 1000))
        print(f"{email} is suppressed: it gets no more surveys.")
    elif optout.unsuppress(store, settings, email):
        print(f"{email} may get surveys again.")
    else:
        raise UsageError(f"{email} is not on the suppression list")
    return 0
