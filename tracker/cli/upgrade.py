"""`tracker upgrade-store`: bring a Redis written with the previous key layout over to this one, in place."""

from __future__ import annotations

import argparse

from tracker.cli.base import OLD_LAYOUT, open_store, settings_for
from tracker.cli.help import describe
from tracker.config import ConfigError

PAGES: dict[str, tuple[str, str, str]] = {
    "upgrade-store": ("bring a Redis of an earlier key layout over to this one (run once, web/worker/beat stopped)",
                      "Bring a Redis written by an earlier version over to this key layout: every answer hash of "
                      "layout 2 (t:{s<b>}:resp:<sid>) is folded into its survey's hash and deleted, one answer at "
                      "a time; every survey's hash has the fields layout 4 and earlier stored by name renamed to "
                      "their short codes (bytes per survey); from layout 3 or earlier the scores are then rebuilt "
                      "from the answers (rebuild-scores), which writes what layout 3 lacks (each rollup's sums "
                      "crossed by the other dimensions, the follow-up reasons' counts); every survey that can no "
                      "longer be answered is settled (its fields packed into one and, unless it has an expiry, "
                      "filed in a hash it shares with other settled surveys of its bucket, t:{s<b>}:filed:<n>, "
                      "as beat's expiry pass settles them from now on); the ranked sets of customers are moved "
                      "under their new names, the at-risk ranking is filled for TRACKER_AT_RISK_SCORE and the "
                      "indexes of answers and sent surveys by time are moved into chunks (t:{ix:resp}, t:{ix:sent}); "
                      "each entity's high-water marks are moved into its sums hash and each customer's sums and "
                      "marks into their profile; the keys of a customer whose address begins with } (layout 10 "
                      "named them with an empty hash tag, which put them in different slots of a cluster) are "
                      "renamed; "
                      "every customer's day "
                      "buckets written without an expiry are trimmed to the days their score card's trend can still "
                      "read and given one (60 days after the newest); and the Redis is "
                      "marked as this layout's (t:layout). Until then web, worker and "
                      "beat refuse to start on it. Stop them first (nothing may write the old way meanwhile). Safe "
                      "to run again, also after it was stopped halfway: a second run changes nothing. On a Redis "
                      "Cluster it scans every master. Needs only TRACKER_REDIS_URL.",
                      "example:\n  tracker upgrade-store && tracker check"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add upgrade-store to the `tracker` command."""
    describe(sub, "upgrade-store", PAGES).set_defaults(run=cmd_upgrade_store)


def cmd_upgrade_store(args: argparse.Namespace) -> int:
    import time

    from tracker.notify.expiry import settle_expired
    from tracker.scores.rebuild import rebuild_scores
    from tracker.store import keys
    from tracker.store.layout import BEHIND, CURRENT, EMPTY, PRE_CLUSTER, UNMARKED

    settings = settings_for("store")
    store = open_store(settings, layout_checked=False)
    state = store.noted_layout or store.note_layout()
    if state == PRE_CLUSTER:
        raise ConfigError(OLD_LAYOUT)
    if state not in (CURRENT, EMPTY, UNMARKED, BEHIND):
        raise ConfigError(f"TRACKER_REDIS_URL holds key layout {state}, which this version cannot upgrade")
    # Layouts 4 to 10 hold this layout's rollups: nothing to rebuild.
    rollups_current = store.redis.get(keys.LAYOUT) in (keys.LAYOUT_RENAMED, keys.LAYOUT_CODED, keys.LAYOUT_SETTLED,
                                                       keys.LAYOUT_RANKED, keys.LAYOUT_CHUNKED, keys.LAYOUT_FILED,
                                                       keys.LAYOUT_SUMMED)
    renamed_tags = store.rename_empty_tags()  # first: everything after reads a customer's keys by their names now
    moved = store.move_ranks()  # first: a rebuild writes the ranked sets under their new names
    summed = store.move_sums_and_marks()  # first too: a rebuild reads the marks and writes the sums where they go now
    indexed = store.move_time_indexes()  # before the rebuild and the settling, which read the surveys by them
    folded = store.fold_layout2_answers()
    renamed = store.code_survey_fields()  # after the fold, which writes the answers' fields by name
    copies = store.rebuild_card_copies()  # layout 2 had no card copy: the card reads it in one round trip after this
    rebuild = (state in (UNMARKED, BEHIND) and not rollups_current) or folded.folded
    rebuilt = rebuild_scores(store, settings) if rebuild else None
    settled = settle_expired(store, settings, int(time.time() * 1000))  # after the rebuild, which reads them all
    at_risk = store.fill_risk_ranking(settings.at_risk_score)  # after the rebuild: placed from the ranked sets
    trimmed = store.trim_customer_days()  # after the rebuild, which writes them trimmed
    commented = store.fill_comment_index()  # again after a rolling upgrade: an older forwarder did not keep it
    store.mark_layout()
    print(f"Folded {folded.folded} answers into their surveys"
          + (f" ({folded.superseded} old answer hashes dropped: their surveys held a newer answer)"
             if folded.superseded else "")
          + f"; {renamed} surveys' fields renamed"
          + f"; {settled} closed surveys settled or filed"
          + f"; {moved} places in the ranked sets moved"
          + f"; {indexed} entries of the time indexes moved into chunks"
          + f"; {summed} hashes of marks and customers' sums moved"
          + f"; {renamed_tags} keys of customers whose address begins with }} renamed"
          + f"; {trimmed} customers' day buckets trimmed to what their trend reads"
          + ("; the at-risk ranking is being filled by another process" if at_risk is None
             else f"; {at_risk} customers at risk ranked")
          + ("; the commented answers are being indexed by another process" if commented is None
             else f"; {commented} commented answers indexed")
          + f"; {copies} score cards' copies of the newest answer written"
          + (f"; scores rebuilt from {rebuilt} answers" if rebuilt is not None else "")
          + ("; the store was on this key layout already." if state == CURRENT and not (folded.folded or renamed
                                                                               or settled or moved or indexed
                                                                               or trimmed or summed
                                                                               or renamed_tags)
             else "; the store is on this key layout now."))
    return 0
