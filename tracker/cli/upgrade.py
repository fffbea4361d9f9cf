"""`tracker upgrade-store`: bring a Redis written with the previous key layout over to this one, in place."""

from __future__ import annotations

import argparse

from tracker.cli.base import OLD_LAYOUT, open_store, settings_for
from tracker.cli.help import describe
from tracker.config import ConfigError

PAGES: dict[str, tuple[str, str, str]] = {
    "upgrade-store": ("fold every answer of the previous key layout into its survey (run once, web/worker/beat "
                      "stopped)",
                      "Bring a Redis written by the version before this one over to this key layout: every answer "
                      "hash of that layout (t:{s<b>}:resp:<sid>) is folded into its survey's hash and deleted, one "
                      "answer at a time, then the Redis is marked as this layout's (t:layout). Until then web, "
                      "worker and beat refuse to start on it. Stop them first (nothing may write answers the old "
                      "way meanwhile). Safe to run again, also after it was stopped halfway: a second run changes "
                      "nothing. On a Redis Cluster it scans every master. Needs only TRACKER_REDIS_URL.",
                      "example:\n  tracker upgrade-store && tracker check"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add upgrade-store to the `tracker` command."""
    describe(sub, "upgrade-store", PAGES).set_defaults(run=cmd_upgrade_store)


def cmd_upgrade_store(args: argparse.Namespace) -> int:
    from tracker.store.layout import CURRENT, EMPTY, PRE_CLUSTER, UNMARKED

    store = open_store(settings_for("store"), layout_checked=False)
    state = store.noted_layout or store.note_layout()
    if state == PRE_CLUSTER:
        raise ConfigError(OLD_LAYOUT)
    if state not in (CURRENT, EMPTY, UNMARKED):
        raise ConfigError(f"TRACKER_REDIS_URL holds key layout {state}, which this version cannot upgrade")
    folded = store.fold_layout2_answers()
    copies = store.rebuild_card_copies()  # layout 2 had no card copy: the card reads it in one round trip after this
    store.mark_layout()
    print(f"Folded {folded.folded} answers into their surveys"
          + (f" ({folded.superseded} old answer hashes dropped: their surveys held a newer answer)"
             if folded.superseded else "")
          + f"; {copies} score cards' copies of the newest answer written"
          + ("; the store was on this key layout already." if state == CURRENT and not folded.folded
             else "; the store is on this key layout now."))
    return 0
