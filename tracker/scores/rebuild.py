"""Recompute every aggregate from the stored answers and sent surveys, with the live path's arithmetic.

No transaction spans the data (it lives in many slots): the rebuild forwards every outbox, notes every
bucket's sequence number, computes, and looks again; when any number moved (an answer, a send, an erasure
came in meanwhile) it computes again. Each entity is then written in one script of its own slot, which
refuses when the entity already took a newer entry; the ranked sets follow from the customers' states. Last,
each profile's copy of what the score card shows of the newest answer is set from that answer.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace

from tracker.config import Settings
from tracker.model import Aggregate, AggregateSum
from tracker.scales import SCALES
from tracker.store import Store
from tracker.store.customer_days import kept_days
from tracker.store.rollups import (
    add_into,
    add_rollups,
    answer_rollup,
    cross_into,
    dimensions_of,
    reasons_in,
    sent_rollup,
)
from tracker.store.scores import Rebuilt, answer_aggregate_ids
from tracker.store.surveys import aggregate_ids


def compute_rebuild(store: Store, settings: Settings) -> Rebuilt:
    """Sum every sent survey and every answer, and the sums retention retired, into fresh aggregates and rollups."""
    rebuilt = Rebuilt()
    # Summed in place: an entity such as overall takes every answer, and a copy of its sums so far per answer
    # made the rebuild grow with the square of the answers.
    aggregates: dict[tuple[str, str], AggregateSum] = defaultdict(AggregateSum)
    rollups: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)

    def count(ident: tuple[str, str], delta: Aggregate, rollup: dict[str, float],
              dimensions: list[tuple[str, str]] | None = None) -> None:
        """Add a delta to an entity; its rollup's crossed fields (rollups.cross_into) come from the survey's
        dimensions, or with the rollup when it is one already crossed (the retired sums)."""
        aggregates[ident].add(delta)
        if ident[0] != "customer":
            total = rollups[ident]
            add_into(total, rollup)
            cross_into(total, total, ident[0], dimensions or [], rollup)

    for survey in store.iter_hashes("sent", "survey"):
        if survey.get("status") in ("sent", "answered") and survey.get("sent_at"):
            ids = aggregate_ids(survey)
            for ident in ids:
                count(ident, Aggregate.of_sent(), sent_rollup(int(survey["sent_at"])), dimensions_of(ids))
    for answer in store.iter_answers():
        counted = Aggregate.of_answer(SCALES[answer.scale], answer.rating, answer.at_ms, settings.score_half_life_days)
        rebuilt.answers += 1
        if (counted.weight, counted.weighted) != (answer.counted.weight, answer.counted.weighted):
            rebuilt.reweighted[answer.sid] = counted
        ids = answer_aggregate_ids(answer)
        for ident in ids:
            count(ident, counted, answer_rollup(counted, answer.scale, answer.rating, answer.reason),
                  dimensions_of(ids))
        if answer.reason:
            rebuilt.reasons.add(answer.reason)
        if not counted.satisfied:
            rebuilt.unhappy.setdefault(answer.customer, {})[answer.sid] = answer.at_ms
    # What retention deleted still counts (TRACKER_RETENTION_DAYS), with the weights it had then.
    for ident, retired, retired_rollup in store.retired_aggregates():
        count(ident, retired, retired_rollup)
        rebuilt.reasons.update(reasons_in(retired_rollup))
    # A customer's day buckets keep only the days a trend can still read (tracker.store.customer_days).
    now = int(time.time() * 1000)
    totals = {ident: summed.total() for ident, summed in aggregates.items()}
    rebuilt.aggregates = {ident: replace(agg, days=kept_days(agg.days, now)) if ident[0] == "customer" else agg
                          for ident, agg in totals.items()}
    rebuilt.rollups = {ident: kept for ident, rollup in rollups.items() if (kept := add_rollups(rollup))}
    return rebuilt


def compute_aggregates(store: Store, settings: Settings) -> dict[tuple[str, str], Aggregate]:
    """Return every entity's aggregate as a rebuild computes it."""
    return compute_rebuild(store, settings).aggregates


def rebuild_scores(store: Store, settings: Settings, attempts: int = 10) -> int:
    """Swap in recomputed aggregates, retrying while answers keep arriving; return answers counted."""
    for _ in range(attempts):
        store.forward_all(wait=True)
        snapshot = store.outbox_snapshot()
        if snapshot is None:
            continue  # a forwarder elsewhere is at work: its entries are not in the indexes yet
        rebuilt = compute_rebuild(store, settings)
        if store.outbox_seqs() != snapshot:
            continue
        if store.write_rebuilt(rebuilt, snapshot):
            store.rebuild_card_copies()  # the score cards' copies of each customer's newest answer
            store.rebuild_name_index()  # the dashboard's name search, from the profiles' names
            store.note_reasons(rebuilt.reasons)  # the names the reasons breakdown reads
            return rebuilt.answers
    raise RuntimeError("answers kept arriving during the rebuild; try again in a quieter moment")
