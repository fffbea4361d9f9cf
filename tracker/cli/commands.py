"""The `tracker` command: run the processes and manage keys, scores and the event log."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import Any, TextIO, cast

import redis
from redis.exceptions import RedisClusterException

from tracker.cli.base import GuardedOutput, OutputFailed, UsageError, open_store, settings_for
from tracker.cli.cases import register as register_cases
from tracker.cli.dead_letters import register as register_dead_letters
from tracker.cli.help import describe
from tracker.cli.migrate import register as register_migrations
from tracker.cli.notify import register as register_notify
from tracker.cli.privacy import cmd_erase, cmd_export, cmd_suppress
from tracker.cli.scores import cmd_score, cmd_top
from tracker.cli.survey import register as register_survey
from tracker.cli.terminal import ShownStream
from tracker.cli.upgrade import register as register_upgrade
from tracker.config import ConfigError, Settings
from tracker.errors import StorageUnavailable

COMMANDS = ("web", "worker", "beat", "dev", "check", "api-key", "score", "top", "erase", "export", "suppress",
            "alert-secret", "rebuild-scores", "replay", "export-log", "import-ratings", "upgrade-store",
            "cases", "case", "event-secret", "deliveries", "redeliver", "dead-letters", "survey")
# The processes and the streams of records, written as they are: every other command's output is shown()
# (tracker.cli.terminal), as it holds names, ids and comments from outside.
STREAMING = ("web", "worker", "beat", "dev", "export-log")
# The processes: they keep their output, their stores wait for a Redis that does not answer yet. Every other command
# is one an operator waits on (its store says so at once: tracker.store.base.INTERACTIVE), and its output is guarded.
PROCESSES = ("web", "worker", "beat", "dev")
# The exit status when the reader of the output went away (`tracker export-log - | head -1`): what a shell reports
# for a Unix tool that SIGPIPE ended (128 + 13), without a word, as `cat` or `yes` end.
CLOSED_PIPE = 141
__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]


def _settings() -> Settings:
    return settings_for("all")


def _store_settings() -> Settings:
    # Commands that only read and manage what Redis holds need TRACKER_REDIS_URL alone.
    return settings_for("store")


def _logging(settings: Settings) -> None:
    from tracker.logs import configure_logging

    configure_logging(settings.log_level)  # JSON lines unless stderr is a terminal


def cmd_web(args: argparse.Namespace) -> int:
    from tracker.cli.serve import serve_web
    from tracker.web.pages.check import check_page_templates

    settings = _settings()
    check_page_templates(settings)  # the pages a customer sees, with the operator's templates: before serving
    _logging(settings)
    serve_web(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.celery_app import create_celery, run_command

    settings = _settings()
    _logging(settings)
    # Gossip and mingle (workers syncing clocks and revoked tasks) serve nothing here, and Celery's gossip fails to
    # restart with a stack trace when the broker comes back from an outage.
    return run_command(create_celery(settings), ["worker", "--loglevel", settings.log_level, "--without-gossip",
                                                  "--without-mingle", *worker_node(args.celery_args),
                                                  *args.celery_args])


def worker_node(celery_args: list[str]) -> list[str]:
    """Name this worker's Celery node, unless the command line does (-n, --hostname): one of its own per process.

    Celery names every worker celery@<host>, and its remote-control queue (ping, the worker's healthcheck) is
    exclusive on RabbitMQ: a second worker on the same host could not declare it and retried its connection for
    ever, taking no task. `tracker check --process worker` pings every node of this host.
    """
    named = any(arg in ("-n", "--hostname") or arg.startswith(("-n", "--hostname=")) for arg in celery_args)
    return [] if named else ["--hostname", f"worker-{os.getpid()}@%h"]


def cmd_beat(args: argparse.Namespace) -> int:
    from tracker.cli.beat import schedule_path
    from workers.celery_app import create_celery, run_command

    settings = _settings()
    _logging(settings)
    return run_command(create_celery(settings), ["beat", "--loglevel", settings.log_level, "--schedule",
                                                  str(schedule_path(settings.redis_url)), "--scheduler",
                                                  "tracker.cli.beat:HeartbeatScheduler", *args.celery_args])


def cmd_check(args: argparse.Namespace) -> int:
    from tracker.cli.check import run_check, run_probe

    return run_probe(os.environ, args.process, args.node) if args.process else run_check(os.environ)


def cmd_dev(args: argparse.Namespace) -> int:
    from tracker.cli.dev import run_dev

    return run_dev(args.dir)


def _store(settings: Settings) -> Any:
    return open_store(settings)


def cmd_api_key(args: argparse.Namespace) -> int:
    store = _store(_store_settings())
    if args.action == "create":
        args.name = args.name.strip()
        if not args.name:
            raise UsageError("--name must not be empty: name the key after who uses it, e.g. --name ops")
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


def cmd_alert_secret(args: argparse.Namespace) -> int:
    from tracker.alerts.delivery import alert_secret

    print(alert_secret(_settings()))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from tracker.scores.rebuild import rebuild_scores

    settings = _store_settings()
    counted = rebuild_scores(_store(settings), settings)
    print(f"Rebuilt every aggregate from {counted} stored responses.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tracker.cli.check import tracker_version

    parser = argparse.ArgumentParser(
        prog="tracker", description="Satisfaction tracker for support teams: surveys after solved tickets, "
        "running scores per customer, agent, team, source and brand.",
        epilog="Run `tracker COMMAND --help` for what a command does and needs. Settings come from "
        "TRACKER_* environment variables (see .env.example); `tracker check` validates them.")
    parser.add_argument("-V", "--version", action="version", version=f"tracker {tracker_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    describe(sub, "web").set_defaults(run=cmd_web)
    for name, run in (("worker", cmd_worker), ("beat", cmd_beat)):
        p = describe(sub, name)
        p.add_argument("celery_args", nargs=argparse.REMAINDER, help="passed on to Celery")
        p.set_defaults(run=run)
    dev = describe(sub, "dev")
    dev.add_argument("--dir", default=".tracker-dev", help="where dev data lives (default .tracker-dev)")
    dev.set_defaults(run=cmd_dev)
    check = describe(sub, "check")
    check.add_argument("--process", choices=("worker", "beat"),
                       help="only say whether this host's workers (answer a ping) or beat (fresh heartbeat) are alive")
    check.add_argument("--node", help="one worker's Celery node name (tracker worker names its own "
                                      "worker-<pid>@<host>, or what --hostname says; default: every worker of "
                                      "this host)")
    check.set_defaults(run=cmd_check)
    keys = describe(sub, "api-key")
    key_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = describe(key_sub, "api-key create")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. ops (unique, not empty)")
    create.add_argument("--scope", choices=("admin", "read"), default="admin",
                        help="admin (default): read, erase and manage; read: read-only")
    describe(key_sub, "api-key list")
    describe(key_sub, "api-key revoke").add_argument("name", help="the name the key was created with")
    keys.set_defaults(run=cmd_api_key)
    score = describe(sub, "score")
    score.add_argument("email", help="the customer's email address")
    score.add_argument("--json", action="store_true", help="print the card as JSON (the API's shape)")
    score.set_defaults(run=cmd_score)
    top = describe(sub, "top")
    top.add_argument("--at-risk", action="store_true", help="only customers scoring below TRACKER_AT_RISK_SCORE")
    top.add_argument("--limit", type=int, default=20, help="how many customers (default 20)")
    top.set_defaults(run=cmd_top)
    erase = describe(sub, "erase")
    erase.add_argument("email", help="the customer's email address")
    erase.set_defaults(run=cmd_erase)
    export = describe(sub, "export")
    export.add_argument("email", help="the customer's email address")
    export.set_defaults(run=cmd_export)
    suppress = describe(sub, "suppress")
    suppress_sub = suppress.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("add", "remove"):
        describe(suppress_sub, f"suppress {action}").add_argument("email", help="the email address")
    describe(suppress_sub, "suppress list")
    suppress.set_defaults(run=cmd_suppress)
    describe(sub, "alert-secret").set_defaults(run=cmd_alert_secret)
    describe(sub, "rebuild-scores").set_defaults(run=cmd_rebuild)
    register_migrations(sub)  # replay, export-log, import-ratings
    register_upgrade(sub)  # upgrade-store
    register_notify(sub)  # event-secret, deliveries, redeliver
    register_cases(sub)  # cases, case
    register_dead_letters(sub)  # dead-letters
    register_survey(sub)  # survey preview, survey test-send
    return parser


PATH_ARGUMENTS = ("file", "out", "dir")  # file names, which may be any bytes the file system allows


def _undecodable(args: argparse.Namespace, argv: Sequence[str]) -> str | None:
    """Name the first text argument that is not UTF-8 (Python holds such bytes as lone surrogates, which fail
    wherever the text is sent or stored), None when every one is."""
    for dest, value in vars(args).items():
        if dest in PATH_ARGUMENTS or not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            flag = f"--{dest.replace('_', '-')}"
            return flag if any(word == flag or word.startswith(f"{flag}=") for word in argv) else dest
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tracker command line; errors are one line on stderr, never a traceback."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("worker", "beat"):
        args.celery_args = [*extra, *args.celery_args]  # everything after the command goes to Celery
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    undecodable = _undecodable(args, sys.argv[1:] if argv is None else argv)
    if undecodable:  # bytes that are not UTF-8, as the shell passed them: no address or name can hold them
        parser.error(f"argument {undecodable}: not valid UTF-8 text")
    run: Callable[[argparse.Namespace], int] = args.run
    if args.command in PROCESSES:
        return _run(run, args)
    from tracker.store.base import INTERACTIVE, patience

    output = GuardedOutput(sys.stdout)
    with patience(INTERACTIVE), redirect_stdout(output):
        if args.command in STREAMING:
            return _run(run, args, output)
        with redirect_stdout(ShownStream(cast(TextIO, output))), redirect_stderr(ShownStream(sys.stderr)):
            return _run(run, args, output)


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace,
         output: GuardedOutput | None = None) -> int:
    try:
        status = run(args)
        if output is not None:
            output.flush()  # here, not at exit: a full disk or a closed pipe is said so, not a traceback
    except OutputFailed as exc:
        return _output_failed(exc.error)
    except ConfigError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    except StorageUnavailable as exc:
        print(f"tracker: cannot reach Redis ({exc}); is TRACKER_REDIS_URL right?", file=sys.stderr)
        return 3
    except (redis.RedisError, RedisClusterException) as exc:  # not an outage: Redis refused what was asked
        from tracker.store.base import refusal

        print(f"tracker: {refusal(os.environ.get('TRACKER_REDIS_URL', ''), exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if output is not None and output.failed is not None:  # a command that went on after it (an except Exception)
        return _output_failed(output.failed)
    return status


def _output_failed(error: OSError) -> int:
    """End a command whose output could not be written (GuardedOutput has pointed it at /dev/null)."""
    if isinstance(error, BrokenPipeError):
        return CLOSED_PIPE  # quietly: the reader has all it asked for (`| head`)
    print(f"tracker: cannot write the output: {error.strerror or error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
