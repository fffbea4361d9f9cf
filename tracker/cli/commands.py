"""The `tracker` command: run the processes and manage keys, scores and the event log."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from tracker.config import ConfigError, Settings, load_settings
from tracker.errors import StorageUnavailable
from tracker.model import ScoreCard

COMMANDS = ("web", "worker", "beat", "dev", "api-key", "score", "top", "erase", "export", "suppress", "alert-secret",
            "rebuild-scores", "replay")


class UsageError(Exception):
    """A command line that names something wrong; the message says what."""


def _settings() -> Settings:
    return load_settings(os.environ)


def _logging(settings: Settings) -> None:
    from tracker.logs import configure_logging

    configure_logging(settings.log_level)  # JSON lines unless stderr is a terminal


def cmd_web(args: argparse.Namespace) -> int:
    from tracker.cli.serve import serve_web

    settings = _settings()
    _logging(settings)
    serve_web(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.celery_app import create_celery, run_command

    settings = _settings()
    _logging(settings)
    return run_command(create_celery(settings), ["worker", "--loglevel", settings.log_level, *args.celery_args])


def cmd_beat(args: argparse.Namespace) -> int:
    import tempfile

    from workers.celery_app import create_celery, run_command

    settings = _settings()
    _logging(settings)
    schedule = os.path.join(tempfile.gettempdir(), f"tracker-beat-{os.getuid()}")
    return run_command(create_celery(settings), ["beat", "--loglevel", settings.log_level, "--schedule", schedule,
                                                  *args.celery_args])


def cmd_dev(args: argparse.Namespace) -> int:
    from tracker.cli.dev import run_dev

    return run_dev(args.dir)


def _store(settings: Settings) -> Any:
    from tracker.store import Store

    return Store.from_url(settings.redis_url)


def cmd_api_key(args: argparse.Namespace) -> int:
    store = _store(_settings())
    if args.action == "create":
        try:
            key = store.create_key(args.name, ("read", "admin") if args.scope == "admin" else ("read",))
        except KeyError:
            raise UsageError(f"an API key named {args.name!r} exists already; revoke it or pick another name") from None
        print(f"Created API key {args.name!r}. It is shown once; store it now:")
        print(key)
    elif args.action == "list":
        rows = store.list_keys()
        if not rows:
            print("No API keys. Create one with: tracker api-key create --name NAME")
        for row in rows:
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(row["created_at"])))
            print(f"{row['name']}\tcreated {created} UTC\tscopes {','.join(row['scopes'])}")
    elif not store.revoke_key(args.name):
        raise UsageError(f"no API key named {args.name!r}")
    else:
        print(f"Revoked API key {args.name!r}.")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from tracker.scores.cards import customer_card

    settings = _settings()
    card = customer_card(_store(settings), settings, args.email, int(time.time() * 1000))
    if card is None:
        raise UsageError(f"no customer {args.email.strip().lower()!r} is known")
    if args.json:
        from tracker.schema_cache import schema
        from tracker.web.api.schemas import ScoreCardSchema

        print(json.dumps(schema(ScoreCardSchema).dump(card), indent=2, ensure_ascii=False))
        return 0
    print(format_card(card))
    return 0


def format_card(card: ScoreCard) -> str:
    """Render a score card for a terminal."""
    from tracker.events import iso_from_ms

    def show(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{value}{suffix}"

    last = card.last_response
    orders = card.orders
    lines = [
        card.id + (f" ({card.name})" if card.name else "") + ("  AT RISK" if card.at_risk else ""),
        f"  score          {show(card.score)}",
        f"  average        {show(card.average)}",
        f"  csat           {show(card.csat, '%')}",
        f"  responses      {card.responses} of {card.surveys_sent} surveys sent"
        f" (response rate {show(card.response_rate, '%')})",
        f"  trend (30d)    {show(card.trend)}",
        f"  nps            {show(card.nps)}",
        "  last response  " + (f"{last.rating} ({last.scale}) at {iso_from_ms(last.at_ms)} on {last.ticket}"
                               if last else "-"),
        f"  orders         {orders.count if orders else 0}"
        + (f", {orders.total} {orders.currency}" if orders and orders.currency else ""),
    ]
    return "\n".join(lines)


def cmd_top(args: argparse.Namespace) -> int:
    from tracker.scores.ranking import ranked_customers

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    settings = _settings()
    cards, _ = ranked_customers(_store(settings), settings, int(time.time() * 1000),
                                at_risk=True if args.at_risk else None, sort="score", order="asc",
                                limit=args.limit, cursor=None)
    if not cards:
        print("No customers at risk." if args.at_risk else "No customers yet.")
        return 0
    print(format_top(cards))
    return 0


def format_top(cards: list[ScoreCard]) -> str:
    """Render score cards as a table, one customer a line."""
    from tracker.events import iso_from_ms

    rows = [("customer", "name", "score", "csat", "responses", "last answer", "")]
    for card in cards:
        last = card.last_response
        rows.append((card.id, card.name or "", "-" if card.score is None else f"{card.score:g}",
                     "-" if card.csat is None else f"{card.csat:g}%", str(card.responses),
                     f"{last.rating} ({last.scale}) {iso_from_ms(last.at_ms)[:10]}" if last else "-",
                     "AT RISK" if card.at_risk else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def cmd_erase(args: argparse.Namespace) -> int:
    from tracker.privacy.erase import erase_customer

    settings = _settings()
    email = args.email.strip().lower()
    if "@" not in email:
        raise UsageError(f"{args.email!r} is not an email address")
    report = erase_customer(_store(settings), settings, email)
    if not report.found:
        print(f"Nothing is stored about {email}; nothing was erased.")
        return 0
    parts = [f"{count} {one if count == 1 else many}" for name, one, many in (
        ("profile", "profile", "profiles"), ("tickets", "ticket", "tickets"), ("orders", "order", "orders"),
        ("aliases", "alias", "aliases"), ("surveys", "survey", "surveys"), ("responses", "answer", "answers"),
        ("log_events", "logged event", "logged events"), ("dead_letters", "dead letter", "dead letters"),
        ("keys", "other key", "other keys")) for count in (getattr(report, name),)]
    print(f"Erased {email}: " + ", ".join(parts) + ". Every aggregate was adjusted.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tracker.privacy.export import export_customer
    from tracker.schema_cache import schema
    from tracker.web.api.schemas import CustomerExportSchema

    settings = _settings()
    email = args.email.strip().lower()
    if "@" not in email:
        raise UsageError(f"{args.email!r} is not an email address")
    found = export_customer(_store(settings), settings, email)
    if found is None:
        raise UsageError(f"no customer {email!r} is known")
    print(json.dumps(schema(CustomerExportSchema).dump(found), indent=2, ensure_ascii=False))
    return 0


def cmd_suppress(args: argparse.Namespace) -> int:
    from tracker.privacy import optout

    settings = _settings()
    store = _store(settings)
    if args.action == "list":
        listed = optout.suppression_list(store, settings)
        for email in listed.addresses:
            print(email)
        if listed.erased:  # on stderr, so the list stays one address a line for scripts
            one = listed.erased == 1
            print(f"{listed.erased} erased {'address is' if one else 'addresses are'} suppressed too (kept only as "
                  f"a keyed hash; `tracker suppress remove EMAIL` lifts one by its address).", file=sys.stderr)
        return 0
    email = args.email.strip().lower()
    if "@" not in email:
        raise UsageError(f"{args.email!r} is not an email address")
    if args.action == "add":
        optout.suppress(store, settings, email, int(time.time() * 1000))
        print(f"{email} is suppressed: it gets no more surveys.")
    elif optout.unsuppress(store, settings, email):
        print(f"{email} may get surveys again.")
    else:
        raise UsageError(f"{email} is not on the suppression list")
    return 0


def cmd_alert_secret(args: argparse.Namespace) -> int:
    from tracker.alerts.delivery import alert_secret

    print(alert_secret(_settings()))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from tracker.scores.rebuild import rebuild_scores

    settings = _settings()
    counted = rebuild_scores(_store(settings), settings)
    print(f"Rebuilt every aggregate from {counted} stored responses.")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tracker.ingest.replay import replay_file

    settings = _settings()
    try:
        handle = open(args.file, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    with handle:
        appended, duplicates, errors = replay_file(_store(settings), handle, args.source)
    for line, message in errors[:20]:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"Appended {appended} events to the log, skipped {duplicates} already there, "
          f"rejected {len(errors)} lines.")
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Satisfaction tracker for support teams.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("web", help="serve the HTTP app under gunicorn on TRACKER_BIND").set_defaults(run=cmd_web)
    for name, run, text in (("worker", cmd_worker, "run a Celery worker for all queues"),
                            ("beat", cmd_beat, "run the Celery beat scheduler")):
        p = sub.add_parser(name, help=text, description=f"{text}; extra arguments pass through to Celery")
        p.add_argument("celery_args", nargs=argparse.REMAINDER)
        p.set_defaults(run=run)
    dev = sub.add_parser("dev", help="web + worker + beat + embedded Redis + mail catcher, for a laptop")
    dev.add_argument("--dir", default=".tracker-dev", help="where dev data lives (default .tracker-dev)")
    dev.set_defaults(run=cmd_dev)
    keys = sub.add_parser("api-key", help="manage support-lead API keys")
    key_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_sub.add_parser("create", help="create a key and print it on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", choices=("admin", "read"), default="admin",
                        help="admin (default): read, erase and manage; read: read-only")
    key_sub.add_parser("list", help="list key names")
    revoke = key_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    keys.set_defaults(run=cmd_api_key)
    score = sub.add_parser("score", help="print a customer's score card")
    score.add_argument("email")
    score.add_argument("--json", action="store_true", help="print the card as JSON")
    score.set_defaults(run=cmd_score)
    top = sub.add_parser("top", help="list customers by score, lowest first")
    top.add_argument("--at-risk", action="store_true", help="only customers scoring below TRACKER_AT_RISK_SCORE")
    top.add_argument("--limit", type=int, default=20, help="how many customers (default 20)")
    top.set_defaults(run=cmd_top)
    erase = sub.add_parser("erase", help="erase everything about a customer (GDPR) and print what was removed")
    erase.add_argument("email")
    erase.set_defaults(run=cmd_erase)
    export = sub.add_parser("export", help="print everything held about a customer as JSON (a data-access request)")
    export.add_argument("email")
    export.set_defaults(run=cmd_export)
    suppress = sub.add_parser("suppress", help="manage the suppression list (addresses that never get surveys)")
    suppress_sub = suppress.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("add", "never survey this address"), ("remove", "take an address off the list")):
        suppress_sub.add_parser(action, help=text).add_argument("email")
    suppress_sub.add_parser("list", help="print every suppressed address")
    suppress.set_defaults(run=cmd_suppress)
    sub.add_parser("alert-secret", help="print the whsec_ secret that signs alerts, for receivers").set_defaults(
        run=cmd_alert_secret)
    sub.add_parser("rebuild-scores", help="recompute every aggregate from stored responses").set_defaults(
        run=cmd_rebuild)
    replay = sub.add_parser("replay", help="re-ingest standard events from a JSON-lines file")
    replay.add_argument("file")
    replay.add_argument("--source", default="standard", help="source the events are attributed to")
    replay.set_defaults(run=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tracker command line; errors are one line on stderr, never a traceback."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("worker", "beat"):
        args.celery_args = [*extra, *args.celery_args]  # everything after the command goes to Celery
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    except StorageUnavailable as exc:
        print(f"tracker: cannot reach Redis ({exc}); is TRACKER_REDIS_URL right?", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
