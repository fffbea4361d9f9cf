"""Recompute every aggregate from the stored answers and sent surveys, with the live path's arithmetic."""

from __future__ import annotations

from collections import defaultdict

from tracker.config import Settings
from tracker.model import Aggregate
from tracker.scales import SCALES
from tracker.store import Store, keys
from tracker.store.scores import Rebuilt, answer_aggregate_ids
from tracker.store.surveys import aggregate_ids


def compute_aggregates(store: Store, settings: Settings) -> Rebuilt:
    """Sum every sent survey and every answer, and the sums retention retired, into fresh aggregates."""
    aggregates: dict[tuple[str, str], Aggregate] = defaultdict(Aggregate)
    answers: dict[str, Aggregate] = {}
    for survey in store.iter_hashes(keys.SENT, "survey"):
        if survey.get("status") in ("sent", "answered"):
            for ident in aggregate_ids(survey):
                aggregates[ident] += Aggregate.of_sent()
    for answer in store.iter_answers():
        counted = Aggregate.of_answer(SCALES[answer.scale], answer.rating, answer.at_ms, settings.score_half_life_days)
        answers[answer.sid] = counted
        for ident in answer_aggregate_ids(answer):
            aggregates[ident] += counted
    # What retention deleted still counts (TRACKER_RETENTION_DAYS), with the weights it had then.
    for ident, retired in store.retired_aggregates():
        aggregates[ident] += retired
    return dict(aggregates), answers


def rebuild_scores(store: Store, settings: Settings, attempts: int = 10) -> int:
    """Swap in recomputed aggregates, retrying while answers keep arriving; return answers counted."""
    for _ in range(attempts):
        rebuilt = store.rebuild(lambda: compute_aggregates(store, settings))
        if rebuilt is not None:
            return len(rebuilt[1])
    raise RuntimeError("answers kept arriving during the rebuild; try again in a quieter moment")
