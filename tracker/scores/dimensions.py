"""Lists and cards of aggregates narrowed by filters (SPEC §12), from the rollups for one filter of another
dimension, from the answers for two or more.

Design: who resolved a ticket splits every entity but the customer into an entity of its own, of kind
"<kind>@human" or "<kind>@bot" (tracker.store.keys.split_kind), which a survey counts for beside the unsplit one
(tracker.store.surveys.aggregate_ids). So `?resolved_by=` reads exactly what the unsplit list reads, O(entities of
the kind) for the counts and O(page + days) for the cards, and rebuild-scores, erasure and retention need nothing
of their own (they go through aggregate_ids like every other entity). The price is on the write side: a survey of a
ticket whose resolver is known has twice the non-customer steps (about 9 more for a ticket with one tag; at most
MAX_TAGS tags count), which the forwarder sums per entity within a batch. Putting resolved_by into the rollup's
field names instead would keep the steps but make a split list read every entity's every day.

A filter by another dimension (an agent's scores on one channel, a tag's within one organisation) reads the
crossed sums each entity's rollup keeps (tracker.store.rollups.cross_into: "x|channel=email|n" and the crossed days
behind the trend): every entity's two crossed counts to order them, then the page, as the unfiltered list read
before its ranked set; no more steps on the write side, only more fields in each step. Two filters of other
dimensions at once (an agent's scores on one channel of one brand) are a cross no rollup holds: they read every
answer and sent survey once. A filter on the list's own dimension (`/channels?channel=email`) is the one entity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from tracker.model import Aggregate, ScoreCard
from tracker.scores.maths import score_card
from tracker.scores.ranking import aggregate_cards, aggregate_counts, aggregate_detail, aggregate_page, kind_of
from tracker.scores.summary import Facets
from tracker.store import Store
from tracker.store.rollups import cross_label
from tracker.store.scores import answer_aggregate_ids
from tracker.store.surveys import aggregate_ids, survey_to_hash

# Filters a list of aggregates takes (beside its page); resolved_by is read from the split kinds.
LIST_FILTERS = ("source", "brand", "team", "agent", "channel", "tag", "organisation", "resolved_by")
SENT_STATUSES = ("sent", "answered")


def implied(filters: Facets) -> Facets | None:
    """Return the filters without a source the agent filter implies (an agent's id starts with its source), or
    None when the two contradict each other (nothing can pass)."""
    if not (filters.agent and filters.source):
        return filters
    return replace(filters, source=None) if filters.agent.startswith(f"{filters.source}:") else None


def _crossed(kind: str, filters: Facets) -> dict[str, str]:
    """Return the filters a list of kind answers from crossed sums or the answers: not its own dimension, not
    resolved_by, and for agents not their source (the prefix of every agent's id, agents_of)."""
    own = (kind, "resolved_by", *(["source"] if kind == "agent" else []))
    return {name: value for name, value in filters.chosen() if name not in own}


def crossing_of(kind: str, filters: Facets) -> tuple[bool, str | None]:
    """Say whether the rollups answer these filters of a list of kind, and the crossed label they read (None: the
    plain sums)."""
    crossed = _crossed(kind, implied(filters) or filters)
    if len(crossed) > 1 or "scale" in crossed:
        return False, None
    return True, next((cross_label(name, value) for name, value in crossed.items()), None)


def agents_of(idents: list[str], filters: Facets) -> list[str]:
    """Narrow agents' ids to the filters' source, which prefixes each id (`<source>:<agent id>`)."""
    return [ident for ident in idents if ident.startswith(f"{filters.source}:")] if filters.source else idents


def filtered_page(store: Store, kind: str, now_ms: int, offset: int, limit: int,
                  filters: Facets) -> tuple[list[ScoreCard], int]:
    """Return a page of a kind's aggregates narrowed by filters, most responses first, and how many rows match."""
    split = kind_of(kind, filters.resolved_by)
    narrowed = implied(filters)
    if narrowed is None:
        return [], 0
    own = getattr(narrowed, kind, None)
    rolled, label = crossing_of(kind, narrowed)
    if not rolled:
        rows = sorted(_from_answers(store, kind, narrowed).items(), key=lambda row: (-row[1].n, row[0]))
        names = store.agent_names([ident for ident, _ in rows[offset:offset + limit]]) if kind == "agent" else {}
        cards = [score_card(ident, sums, now_ms, names.get(ident) if kind == "agent" else ident)
                 for ident, sums in rows[offset:offset + limit]]
        return cards, len(rows)
    if own:
        found = aggregate_counts(store, split, agents_of([own], narrowed) if kind == "agent" else [own],
                                 crossed=label)
        cards = aggregate_cards(store, split, [own], now_ms, crossed=label) if found and offset == 0 else []
        return cards, len(found)
    idents = agents_of(store.ids(split), narrowed) if kind == "agent" and narrowed.source else None
    return aggregate_page(store, kind, now_ms, offset, limit, filters.resolved_by, crossed=label, idents=idents)


def filtered_detail(store: Store, kind: str, ident: str, now_ms: int, filters: Facets) -> ScoreCard | None:
    """Return one entity's card narrowed by filters, None when it counts nothing under them."""
    narrowed = implied(filters)
    own = getattr(narrowed, kind, None) if narrowed else None
    if narrowed is None or (own and own != ident) or (kind == "agent" and not agents_of([ident], narrowed)):
        return None
    rolled, label = crossing_of(kind, narrowed)
    if rolled:
        return aggregate_detail(store, kind, ident, now_ms, filters.resolved_by, crossed=label)
    sums = _from_answers(store, kind, narrowed, ident).get(ident)
    if sums is None:
        return None
    name = store.agent_names([ident]).get(ident) if kind == "agent" else ident
    return score_card(ident, sums, now_ms, name)


def _from_answers(store: Store, kind: str, filters: Facets, only: str | None = None) -> dict[str, Aggregate]:
    """Sum every answer and sent survey passing the filters into the entities of kind they count for (only that
    one when given): the live arithmetic, from what each answer stored."""
    sums: dict[str, Aggregate] = defaultdict(Aggregate)
    where = dict(filters.chosen())
    for answer in store.answers_between("-inf", "+inf", where=where):
        if Facets.of_answer(answer).passes(filters):
            for counted_kind, ident in answer_aggregate_ids(answer):
                if counted_kind == kind and only in (None, ident):
                    sums[ident] += answer.counted
    for survey in store.surveys_between("-inf", "+inf", where=where):
        if survey.status in SENT_STATUSES and Facets.of_survey(survey).passes(filters):
            for counted_kind, ident in aggregate_ids(survey_to_hash(survey)):
                if counted_kind == kind and only in (None, ident):
                    sums[ident] += Aggregate.of_sent()
    return {ident: agg for ident, agg in sums.items() if not agg.empty}
