"""`tracker event-secret`, `tracker deliveries` and `tracker redeliver`: the event stream out, for an operator."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from marshmallow import ValidationError

from tracker.cli.base import open_store, settings_for
from tracker.cli.help import STORE_ONLY, describe
from tracker.config import ConfigError, Settings
from tracker.notify.deliveries import STATUSES, DeliveryQuerySchema, DeliverySchema, find_deliveries

NEEDS_KEY = "Needs TRACKER_REDIS_URL and TRACKER_SECRET_KEY (the event URLs' secret is derived from it)."
PAGES: dict[str, tuple[str, str, str]] = {
    "event-secret": ("print the whsec_ secret that signs notices to event URLs, for receivers",
                     "Print the Standard Webhooks secret (whsec_…) that TRACKER_EVENT_URLS receivers verify "
                     "signatures with. It is derived from TRACKER_SECRET_KEY (and differs from the alerts' one). "
                     "Needs TRACKER_SECRET_KEY.", ""),
    "deliveries": ("list the newest delivery attempts of notices and how each ended",
                   "List the newest delivery attempts of notices to their targets (event URLs, helpdesk "
                   "write-back, recovery cases), newest first, one a line: id, time, status, attempt, HTTP "
                   "status, target, type, customer, notice id and what happened. Also GET /api/v1/deliveries. "
                   + STORE_ONLY,
                   "examples:\n  tracker deliveries --status failed\n  tracker deliveries --limit 200 --json"),
    "redeliver": ("send a delivery's notice again now to its target (same webhook-id)",
                  "Send the notice of a delivery attempt (an id from `tracker deliveries`) again, now, to the "
                  "target it went to, with the same webhook-id, and record the attempt; the target's place in "
                  "the stream stays as it is. Prints how it went. Exits 0 when delivered, 1 when not, 2 for an "
                  "unknown id or a usage error. " + NEEDS_KEY,
                  "example:\n  tracker redeliver d3.1027"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add event-secret, deliveries and redeliver to the `tracker` command."""
    describe(sub, "event-secret", PAGES).set_defaults(run=cmd_event_secret)
    listing = describe(sub, "deliveries", PAGES)
    listing.add_argument("--status", choices=STATUSES, help="only attempts that ended so")
    listing.add_argument("--limit", default="50", help="how many (1 to 500, default 50)")
    listing.add_argument("--target", help="only this target (url:<12 hex>, writeback:<source>, cases)")
    listing.add_argument("--type", help="only notices of this type, e.g. survey.answered")
    listing.add_argument("--customer", help="only this customer's notices (an email)")
    listing.add_argument("--json", action="store_true", help="print JSON lines, the API's shape")
    listing.set_defaults(run=cmd_deliveries)
    describe(sub, "redeliver", PAGES).add_argument("delivery_id", help="the attempt's id, e.g. d3.1027")
    sub.choices["redeliver"].set_defaults(run=cmd_redeliver)


def _keyed_settings() -> Settings:
    settings = settings_for("store")
    if not settings.secret_key:
        raise ConfigError("TRACKER_SECRET_KEY is required: the event URLs' signing secret is derived from it")
    return settings


def cmd_event_secret(args: argparse.Namespace) -> int:
    from tracker.notify.urls import event_secret

    print(event_secret(_keyed_settings()))
    return 0


def _line(row: dict[str, Any]) -> str:
    code = "-" if row.get("code") is None else str(row["code"])
    return "\t".join([row["id"], row["at"] or "", row["status"], f"attempt {row['attempt']}", code, row["target"],
                      row["type"], row["customer"], row["notice"], row.get("detail") or ""])


def cmd_deliveries(args: argparse.Namespace) -> int:
    given = {name: value for name in ("status", "limit", "target", "type", "customer")
             if (value := getattr(args, name)) is not None}
    try:
        query = DeliveryQuerySchema().load(given)
    except ValidationError as exc:
        problems = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        for name, messages in problems.items():
            print(f"tracker deliveries: --{name}: {' '.join(map(str, messages))}", file=sys.stderr)
        return 2
    rows = DeliverySchema(many=True).dump(find_deliveries(open_store(settings_for("store")), query))
    if not rows and not args.json:
        print("No delivery attempts recorded" + (" that match." if given.keys() - {"limit"} else "."))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False) if args.json else _line(row))
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    from tracker.notify.dispatch import RedeliveryError, redeliver

    settings = _keyed_settings()
    try:
        done = redeliver(open_store(settings), settings, args.delivery_id.strip(), int(time.time() * 1000))
    except RedeliveryError as exc:
        print(f"tracker redeliver: {exc}", file=sys.stderr)
        return 2
    code = f" ({done.outcome.code})" if done.outcome.code is not None else ""
    print(f"{done.delivery_id}: {done.status}{code} {done.record['target']} {done.record['notice']}: "
          f"{done.outcome.detail}")
    return 0 if done.status == "delivered" else 1
