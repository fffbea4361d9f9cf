"""The migration commands: `tracker replay`, `tracker export-log` and `tracker import-ratings`."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from tracker.cli.base import UsageError, counted, open_store, settings_for
from tracker.cli.help import describe

MAX_ERRORS_SHOWN = 50
NEVER_MAILS = ("A solved ticket whose survey would have been due more than TRACKER_SURVEY_EXPIRY_DAYS ago gets no "
               "survey: it is recorded as skipped (too_old). ")
PAGES: dict[str, tuple[str, str, str]] = {
    "replay": ("re-ingest events and answers from a JSON-lines file (e.g. from export-log)",
               "Append the standard events of a JSON-lines file to the event log, one event a line (a line may "
               "name its own \"source\", as export-log writes); the workers apply them. Events already "
               "replayed are skipped by source and id. survey.answered lines count like answers given on the "
               "survey page, once per ticket, and mail no one. " + NEVER_MAILS + "--dry-run changes nothing "
               "and prints what would change. Bad lines are reported with their number (exit status 1); "
               "the others still apply.",
               "examples:\n  tracker replay events.jsonl --dry-run\n  tracker replay events.jsonl --source zendesk"),
    "export-log": ("write every stored event and answer as JSON lines for replay",
                   "Write every event of the event log, then every sent survey (survey.sent) and every answer "
                   "(survey.answered), as JSON lines that `tracker replay` reads back into an empty Redis "
                   "to the same scores. Use - for standard output. Needs only TRACKER_REDIS_URL.",
                   "example:\n  tracker export-log backup.jsonl && TRACKER_REDIS_URL=redis://new:6379/0 "
                   "tracker replay backup.jsonl"),
    "import-ratings": ("load ratings collected elsewhere from a CSV file",
                       "Load ratings collected outside the tracker (a helpdesk's own CSAT, history) as "
                       "survey.answered events: they count in every score, once per ticket, and send no mail "
                       "and no alert. The first line names the columns: email,rating,scale,answered_at,"
                       "ticket,source,agent,team,comment (email, rating and answered_at required; scale "
                       "defaults to TRACKER_SURVEY_SCALE, source to `import`). Importing a file again counts "
                       "nothing twice. Each bad row is reported with its line and reason; the others import.",
                       "example:\n  tracker import-ratings zendesk-csat-2025.csv --dry-run"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add replay, export-log and import-ratings to the `tracker` command."""
    replay = describe(sub, "replay", PAGES)
    replay.add_argument("file", help="a JSON-lines file of standard events")
    replay.add_argument("--source", default="standard",
                        help="source the events are attributed to when a line names none (default standard)")
    replay.add_argument("--dry-run", action="store_true", help="change nothing; print what would change")
    replay.set_defaults(run=cmd_replay)
    export = describe(sub, "export-log", PAGES)
    export.add_argument("file", help="where to write (- for standard output)")
    export.set_defaults(run=cmd_export_log)
    ratings = describe(sub, "import-ratings", PAGES)
    ratings.add_argument("file", help="a CSV file, UTF-8, with a header line")
    ratings.add_argument("--dry-run", action="store_true", help="change nothing; print what would be imported")
    ratings.set_defaults(run=cmd_import_ratings)


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def known_sources() -> list[str]:
    """Return the sources events may be attributed to: every adapter's name, and `import` (CSV ratings)."""
    from tracker.ingest.import_ratings import DEFAULT_SOURCE
    from webhooks.adapters import ADAPTERS

    return sorted({*ADAPTERS, DEFAULT_SOURCE})


def cmd_replay(args: argparse.Namespace) -> int:
    from tracker.ingest.replay import replay_file

    sources = known_sources()
    if args.source not in sources:
        raise UsageError(f"unknown source {args.source!r}; known sources: {', '.join(sources)}")
    settings = settings_for("store")
    with _open(args.file) as handle:
        report = replay_file(open_store(settings), settings, handle, args.source, sources, dry_run=args.dry_run)
    _print_errors(args.file, report.errors)
    if args.dry_run:
        print(f"Dry run: nothing was changed. {counted(report.appended, 'event')} would be appended "
              f"({report.duplicates} already there, {counted(len(report.errors), 'line')} rejected).")
        for kind, count in sorted(report.by_type.items()):
            print(f"  {kind:<17} {count}")
        print(f"  surveys to schedule      {report.surveys_scheduled}")
        print(f"  surveys too old to send  {report.surveys_too_old} (recorded as skipped: too_old; nobody is mailed)")
        print(f"  answers to count         {report.answers}")
    else:
        print(f"Appended {counted(report.appended, 'event')} to the log, skipped {report.duplicates} already there, "
              f"rejected {counted(len(report.errors), 'line')}. "
              f"{counted(report.surveys_too_old, 'solve is', 'solves are')} too old to survey "
              f"and {counted(report.answers, 'answer')} will count; the workers apply them.")
    return 1 if report.errors else 0


def cmd_export_log(args: argparse.Namespace) -> int:
    from tracker.ingest.export_log import export_log

    settings = settings_for("store")
    store = open_store(settings)
    if args.file == "-":
        report = export_log(store, sys.stdout)
        out = sys.stderr
    else:
        try:
            handle = open(args.file, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.file}: {exc.strerror}") from None
        with handle:
            report = export_log(store, handle)
        out = sys.stdout
    print(f"Wrote {counted(report.events, 'event')}, {counted(report.sent, 'unanswered survey')} and "
          f"{counted(report.answers, 'answer')}"
          + (f"; {counted(report.unreadable, 'unreadable log record')} left out" if report.unreadable else "") + ".",
          file=out)
    return 0


def cmd_import_ratings(args: argparse.Namespace) -> int:
    from tracker.ingest.import_ratings import ImportFileError, import_file

    settings = settings_for("store")
    with _open(args.file) as handle:
        try:
            report = import_file(open_store(settings), settings, handle, dry_run=args.dry_run)
        except ImportFileError as exc:
            raise UsageError(f"{args.file}: {exc}") from None
    _print_errors(args.file, report.errors)
    verb = "would be imported" if args.dry_run else "imported"
    print(("Dry run: nothing was changed. " if args.dry_run else "")
          + f"{counted(report.appended, 'rating')} {verb}, {report.duplicates} already imported, "
          f"{counted(len(report.errors), 'row')} rejected." + ("" if args.dry_run else " The workers count them."))
    return 1 if report.errors else 0


def _print_errors(path: str, errors: list[tuple[int, Any]]) -> None:
    for line, message in errors[:MAX_ERRORS_SHOWN]:
        print(f"{path}:{line}: {message}", file=sys.stderr)
    if len(errors) > MAX_ERRORS_SHOWN:
        print(f"{path}: {len(errors) - MAX_ERRORS_SHOWN} more bad lines not shown", file=sys.stderr)
