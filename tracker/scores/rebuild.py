"""Recompute every aggregate from the stored responses and sent surveys."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tracker.config import Settings
from tracker.scores.maths import contribution
from tracker.store import Store, keys
from tracker.store.scores import Rebuilt
from tracker.store.surveys import aggregate_ids

COUNTED = ("value6", "satisfied", "promoter", "detractor", "nps")


def compute_aggregates(store: Store, settings: Settings) -> Rebuilt:
    """Sum every sent survey and every response into fresh aggregates, as the live path would."""
    aggregates: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    dailies: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    weights: dict[str, tuple[float, float]] = {}
    for survey in store.iter_hashes(keys.SENT, "survey"):
        if survey.get("status") in ("sent", "answered"):
            for ident in aggregate_ids(survey):
                agg = aggregates[ident]
                agg["sent"] = agg.get("sent", 0) + 1
    for response in store.iter_hashes(keys.RESPONSES, "resp"):
        part = contribution(response["scale"], int(response["rating"]), int(response["at"]),
                            settings.score_half_life_days)
        weights[response["sid"]] = (part.weight, part.weighted)
        for ident in aggregate_ids(response):
            agg = aggregates[ident]
            agg["n"] = agg.get("n", 0) + 1
            for name in COUNTED:
                agg[name] = agg.get(name, 0) + getattr(part, name)
            agg["weight"] = agg.get("weight", 0.0) + part.weight
            agg["weighted"] = agg.get("weighted", 0.0) + part.weighted
            daily = dailies[ident]
            daily[f"{part.day}:n"] = daily.get(f"{part.day}:n", 0) + 1
            daily[f"{part.day}:v"] = daily.get(f"{part.day}:v", 0) + part.value6
    return dict(aggregates), dict(dailies), weights


def rebuild_scores(store: Store, settings: Settings, attempts: int = 10) -> int:
    """Swap in recomputed aggregates, retrying while answers keep arriving; return responses counted."""
    for _ in range(attempts):
        rebuilt = store.rebuild(lambda: compute_aggregates(store, settings))
        if rebuilt is not None:
            return len(rebuilt[2])
    raise RuntimeError("answers kept arriving during the rebuild; try again in a quieter moment")
