"""`tracker dead-letters`: what the applier parked, and putting it back on the event log once its cause is gone.

An entry is parked (tracker.ingest.apply) when it can never apply as it stands: a malformed record, a customer named
by no email and no alias, a look-up down for longer than its retries, or an apply that raised. Once the cause is
fixed (the look-up is back, the alias arrived by other means, a bug is fixed and deployed), --requeue appends the
entries to the end of their shards again, where the workers apply them like any other; applying is idempotent, so
an event counted before counts once.
"""

from __future__ import annotations

import argparse
from collections import Counter, deque

from tracker.cli.base import UsageError, open_store, settings_for
from tracker.cli.help import describe

PAGES: dict[str, tuple[str, str, str]] = {
    "dead-letters": (
        "list the events the workers parked, or put them back on the log",
        "List the events the workers parked because they could not be applied (a malformed record, a customer "
        "named by no email and no known id, a look-up down for longer than its retries, an apply that raised), "
        "counted by reason, and the newest of them. With --requeue, put them back on the event log once their "
        "cause is fixed (only those whose reason holds --reason, when given): the workers apply them again, and an "
        "event applied before counts once. Needs only TRACKER_REDIS_URL.",
        "examples:\n  tracker dead-letters\n  tracker dead-letters --requeue --reason 'look-up unavailable'"),
}
PAGE = 500
NEWEST = 10  # parked entries the listing shows one by one


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dead-letters` to the `tracker` command."""
    page = describe(sub, "dead-letters", PAGES)
    page.add_argument("--requeue", action="store_true", help="put the parked events back on the event log")
    page.add_argument("--reason", default="", help="only those whose reason holds this text (case-insensitive)")
    page.set_defaults(run=cmd_dead_letters)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    wanted = args.reason.strip().lower()
    if args.reason and not wanted:
        raise UsageError("--reason: give the text a reason holds, e.g. --reason 'look-up'")
    store = open_store(settings_for("store"))
    reasons: Counter[str] = Counter()
    newest: deque[tuple[str, str, str]] = deque(maxlen=NEWEST)
    requeued = skipped = 0
    after = "-"
    while page := store.dead_letter_page(after, PAGE):
        after = page[-1][0]
        for entry_id, fields in page:
            reason = fields.get("reason", "")
            if wanted and wanted not in reason.lower():
                continue
            if args.requeue:
                if store.requeue_dead_letter(entry_id, fields):
                    requeued += 1
                else:
                    skipped += 1
                continue
            reasons[reason] += 1
            newest.append((entry_id, fields.get("shard", "?"), reason))
    if args.requeue:
        held = f"; {skipped} hold no record and stay" if skipped else ""
        print(f"Put {requeued} parked event{'' if requeued == 1 else 's'} back on the event log{held}. The workers "
              "apply them (beat drains every shard every few seconds).")
        return 0
    total = sum(reasons.values())
    held = f" whose reason holds {args.reason!r}" if wanted else ""
    print(f"{total} parked event{'' if total == 1 else 's'}{held}")
    for reason, count in reasons.most_common():
        print(f"  {count:>6}  {reason}")
    if newest:
        print("newest:")
        for entry_id, shard, reason in reversed(newest):
            print(f"  {entry_id}  shard {shard}  {reason}")
    return 0
