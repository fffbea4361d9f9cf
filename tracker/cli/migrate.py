"""The migration commands: `tracker replay`, `tracker export-log` and `tracker import-ratings`."""

from __future__ import annotations

import argparse
import errno
import os
import re
import stat
import sys
import tempfile
from typing import IO, TYPE_CHECKING, Any

from tracker.cli.base import UsageError, counted, open_store, settings_for
from tracker.cli.help import describe

if TYPE_CHECKING:
    from tracker.ingest.export_log import ExportReport

MAX_ERRORS_SHOWN = 50
DESCRIPTOR = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")  # open files' names
NEVER_MAILS = ("A solved ticket whose survey would have been due more than TRACKER_SURVEY_EXPIRY_DAYS ago gets no "
               "survey: it is recorded as skipped (too_old). ")
PAGES: dict[str, tuple[str, str, str]] = {
    "replay": ("re-ingest events and answers from a JSON-lines file (e.g. from export-log)",
               "Append the standard events of a JSON-lines file to the event log, one event a line (a line may "
               "name its own \"source\", as export-log writes); the workers apply them. Events already "
               "replayed are skipped by source and id. survey.answered lines count like answers given on the "
               "survey page, once per ticket, and mail no one; a survey.sent line's reminder still due is scheduled "
               "with its survey. export-log's recovery cases and their new surveys still to send, opt-outs, what "
               "retention retired and API keys (case.recorded, cases.retired, case.resurvey, optout.unsubscribed, "
               "optout.suppressed, scores.retired, scores.first_activity, apikey.recorded) are written back as they "
               "are read, each unless it is there, and tell no one; so are customers' profiles (customer.profile: "
               "names, ids and orders), merged with what is there. " + NEVER_MAILS + "--dry-run changes nothing "
               "and prints what would change. Bad lines are reported with their number (exit status 1); "
               "the others still apply.",
               "examples:\n  tracker replay events.jsonl --dry-run\n  tracker replay events.jsonl --source zendesk"),
    "export-log": ("write every stored event and answer as JSON lines for replay",
                   "Write every event of the event log, then every sent survey (survey.sent, with its reminder "
                   "when one is still due), every answer (survey.answered) and every skipped or failed survey "
                   "(survey.skipped), then every recovery case (case.recorded) and each closed case's new survey "
                   "still to send (case.resurvey), what retention retired (scores.retired, scores.first_activity), "
                   "every unsubscribe and suppression (optout.unsubscribed, optout.suppressed), every customer's "
                   "profile (customer.profile: name, ids and orders, which the trimmed log no longer says) and every "
                   "API key that works (apikey.recorded: its digest, never the key), as JSON lines that `tracker "
                   "replay` reads back into an empty Redis to the same scores, cases, opt-outs and keys. Dashboard "
                   "sessions are not carried. Use - for standard output. An earlier FILE is replaced only once the "
                   "export is whole. Needs only TRACKER_REDIS_URL; with TRACKER_SECRET_KEY, the opt-outs kept as a "
                   "keyed hash name its key by a fingerprint, so the replay can check it holds the same key.",
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
    store = _unchanged_store(settings) if args.dry_run else open_store(settings)
    with _open(args.file) as handle:
        report = replay_file(store, settings, handle, args.source, sources, dry_run=args.dry_run)
    _print_errors(args.file, report.errors)
    if args.dry_run:
        print(f"Dry run: nothing was changed. {counted(report.appended, 'event')} would be appended "
              f"({report.duplicates} already there, {counted(len(report.errors), 'line')} rejected).")
        for kind, count in sorted(report.by_type.items()):
            print(f"  {kind:<17} {count}")
        print(f"  surveys to schedule      {report.surveys_scheduled}")
        print(f"  surveys too old to send  {report.surveys_too_old} (recorded as skipped: too_old; nobody is mailed)")
        print(f"  answers to count         {report.answers}")
        print(f"  reminders to schedule    {report.reminders} (with their surveys)")
        for label, title in RESTORED:
            print(f"  {title:<24} {report.restored[label]}")
        print(f"  already held             {report.restored_already} (cases, new surveys, opt-outs, retired sums and "
              "API keys there: left as they are)")
        print(f"  profiles to restore      {report.restored['profile']} ({report.profiles_held} held as they are)")
    else:
        print(f"Appended {counted(report.appended, 'event')} to the log, skipped {report.duplicates} already there, "
              f"rejected {counted(len(report.errors), 'line')}. "
              f"{counted(report.surveys_too_old, 'solve is', 'solves are')} too old to survey "
              f"and {counted(report.answers, 'answer')} will count; the workers apply them.")
        if report.reminders:
            print(f"Scheduled with their surveys: {counted(report.reminders, 'reminder')} still due.")
        if set(report.restored) - {"profile"} or report.restored_already:
            print(f"Restored {_restored(report)} ({report.restored_already} already there).")
        if report.restored["profile"] or report.profiles_held:
            print(f"Restored the profiles of {counted(report.restored['profile'], 'customer')} (names, ids and "
                  f"orders; {report.profiles_held} held as they are).")
    if report.unverified:
        print(f"tracker: {counted(report.unverified, 'opt-out is', 'opt-outs are')} kept only as a hash keyed with the "
              "exporting install's TRACKER_SECRET_KEY, which could not be compared with this one's (no "
              "TRACKER_SECRET_KEY here, or none where it was exported): they hold only if this install runs with "
              "the same key (or has it in TRACKER_SECRET_KEY_PREVIOUS).", file=sys.stderr)
    return 1 if report.errors else 0


# What replay restores besides events, as it prints them: (ReplayReport.restored label, dry-run title).
RESTORED = (("case", "cases to restore"), ("retired", "retired counts to carry"),
            ("resurvey", "new surveys to schedule"),
            ("unsubscribed", "unsubscribes to restore"), ("suppressed", "suppressions to restore"),
            ("kept by hash", "hashed opt-outs to keep"), ("retired sums", "retired sums to carry"),
            ("first activity", "first activity to keep"), ("api key", "API keys to restore"))


def _restored(report: Any) -> str:
    """Say what a replay restored besides events: "2 recovery cases, 1 unsubscribe and 0 …"."""
    nouns = {"case": ("recovery case", None), "retired": ("count of retired cases", "counts of retired cases"),
             "resurvey": ("new survey of a closed case", "new surveys of closed cases"), "api key": ("API key", None),
             "unsubscribed": ("unsubscribe", None), "suppressed": ("suppressed address", "suppressed addresses"),
             "kept by hash": ("opt-out kept by hash", "opt-outs kept by hash")}
    parts = [counted(report.restored[label], *nouns[label]) for label, _ in RESTORED
             if label in nouns and (report.restored[label] or label in ("case", "unsubscribed", "suppressed"))]
    if report.restored["retired sums"]:
        parts.append(f"the retired sums of {counted(report.restored['retired sums'], 'entity', 'entities')}")
    if report.restored["first activity"]:
        parts.append("the first activity")
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _unchanged_store(settings: Any) -> Any:
    """Open the store as open_store does, refusing an earlier layout, but without marking an empty Redis as this
    layout's: a dry run writes nothing."""
    from tracker.cli.base import layout_problem
    from tracker.config import ConfigError
    from tracker.store import Store
    from tracker.store.base import connect

    store = Store(connect(settings.redis_url))
    if problem := layout_problem(store.layout_state()):
        raise ConfigError(problem)
    return store


def cmd_export_log(args: argparse.Namespace) -> int:
    from tracker.ingest.optout_lines import key_fingerprints

    settings = settings_for("store")
    store = open_store(settings)
    fingerprints = key_fingerprints(settings)
    if args.file == "-":
        report = _export_to_stdout(store, fingerprints)
        out = sys.stderr
    else:
        report = _export_to_file(store, args.file, fingerprints)
        out = sys.stdout
    print(f"Wrote {counted(report.events, 'event')}, {counted(report.sent, 'unanswered survey')}, "
          f"{counted(report.skipped, 'skipped survey')}, {counted(report.failed, 'failed survey')} "
          f"and {counted(report.answers, 'answer')}"
          + (f"; {counted(report.unreadable, 'unreadable log record')} left out" if report.unreadable else "") + ".",
          file=out)
    if report.cases or report.retired or report.unsubscribed or report.suppressed or report.kept_by_hash:
        print(f"Wrote {counted(report.cases, 'recovery case')}"
              + (" (and what the cases retention deleted still count)" if report.retired else "")
              + f", {counted(report.unsubscribed, 'unsubscribe')}, "
              f"{counted(report.suppressed, 'suppressed address', 'suppressed addresses')} "
              f"and {counted(report.kept_by_hash, 'opt-out', 'opt-outs')} kept by hash.", file=out)
    if report.reminders or report.resurveys or report.api_keys:
        print(f"Wrote {counted(report.reminders, 'reminder')} still due (with their surveys), the new surveys of "
              f"{counted(report.resurveys, 'closed case')} still to send and {counted(report.api_keys, 'API key')} "
              "(as stored: a digest, never the key).", file=out)
    retired = [f"the retired sums of {counted(report.retired_sums, 'entity', 'entities')}"] * bool(report.retired_sums)
    retired += ["the first activity"] * report.first_activity
    if retired:
        print(f"Wrote {' and '.join(retired)} (what retention deleted still counts).", file=out)
    if report.beyond_log:
        print(f"Wrote the profiles of {counted(report.profiles, 'customer')} with {counted(report.orders, 'order')} "
              f"({report.beyond_log} holding what the trimmed log no longer says: names, ids, orders).", file=out)
    if report.kept_by_hash and not fingerprints:
        print("tracker: TRACKER_SECRET_KEY is not set, so the opt-outs kept by hash name no key: the install they are "
              "replayed into needs this one's TRACKER_SECRET_KEY for them to hold, and cannot check it.",
              file=sys.stderr)
    return 0


def _export_to_stdout(store: Any, fingerprints: list[str]) -> ExportReport:
    """Stream the export to standard output (a pipe or a redirect: there is no earlier file to keep)."""
    from tracker.ingest.export_log import OutputError, export_log

    try:
        report = export_log(store, sys.stdout, fingerprints)
        sys.stdout.flush()
    except OutputError as exc:
        raise _cannot_write("standard output", exc.error) from None
    except OSError as exc:
        raise _cannot_write("standard output", exc) from None
    return report


def _export_to_file(store: Any, path: str, fingerprints: list[str]) -> ExportReport:
    """Export into a temporary file beside path and rename it over path only once the export is whole.

    Opening path for writing would empty an earlier export before Redis has answered: an unreachable Redis left a
    0-byte file, and a Redis that went away mid-export a shorter file that looks whole and replays without a
    complaint. So nothing at path changes unless the export finished, and the temporary file goes on any failure.
    A path that is not a regular file (a device, a named pipe) holds nothing to keep and is written in place, as is
    the name of an open descriptor (/dev/stdout: renaming over the file it points at would not write to it).
    """
    if not path or path.endswith(os.sep) or os.path.isdir(path):
        raise UsageError(f"cannot write {path}: {os.strerror(errno.EISDIR if path else errno.ENOENT)}")
    if DESCRIPTOR.fullmatch(path) or (os.path.exists(path) and not os.path.isfile(path)):
        return _export_in_place(store, path, fingerprints)
    target = os.path.realpath(path)  # through a symlink, so the link keeps pointing at the export
    handle, temporary = _temporary_beside(path, target)
    try:
        with handle:
            report = _export_into(store, handle, path, fingerprints)
            _synced(handle, path)
        os.replace(temporary, target)
    except OSError as exc:  # closing (the last buffered write) or renaming
        _remove(temporary)
        raise _cannot_write(path, exc) from None
    except BaseException:  # Redis went away, a write failed, ^C: the earlier export stays as it was
        _remove(temporary)
        raise
    _sync_folder(os.path.dirname(target))
    return report


def _temporary_beside(path: str, target: str) -> tuple[IO[str], str]:
    """Open a new temporary file in target's folder (so the rename stays on one file system), with the mode target
    has, or a new file's mode (the umask's) when there is no target yet."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f"{os.path.basename(target)}.tmp-",
                                                 dir=os.path.dirname(target))
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        os.fchmod(descriptor, _mode_for(target))
        return os.fdopen(descriptor, "w", encoding="utf-8"), temporary
    except BaseException:
        os.close(descriptor)
        _remove(temporary)
        raise


def _mode_for(target: str) -> int:
    """Return the permission bits the export gets: those of the file it replaces, else a new file's."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _export_in_place(store: Any, path: str, fingerprints: list[str]) -> ExportReport:
    """Write straight into a device or named pipe (nothing there to keep, and no folder to rename in)."""
    try:
        handle = open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with handle:
            report = _export_into(store, handle, path, fingerprints)
            handle.flush()
    except OSError as exc:  # closing flushes what is left, and /dev/full refuses it only then
        raise _cannot_write(path, exc) from None
    return report


def _export_into(store: Any, handle: IO[str], path: str, fingerprints: list[str]) -> ExportReport:
    from tracker.ingest.export_log import OutputError, export_log

    try:
        return export_log(store, handle, fingerprints)
    except OutputError as exc:
        raise _cannot_write(path, exc.error) from None


def _synced(handle: IO[str], path: str) -> None:
    """Flush the export and have it on disk before it replaces the earlier one (a crash must not leave it empty)."""
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def _sync_folder(folder: str) -> None:
    """Have the rename itself on disk; a file system that cannot sync a folder still holds the whole export."""
    try:
        descriptor = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _cannot_write(path: str, error: OSError) -> Exception:
    """Say in one line that path could not be written; a closed pipe stays what it is (a reader that stopped
    reading, `export-log - | head`, is no error of ours) for the command line to end quietly on."""
    if isinstance(error, BrokenPipeError):
        return error
    return UsageError(f"cannot write {path}: {error.strerror or error}")


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
