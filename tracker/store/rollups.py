"""What an answer or a sent survey adds to an entity's rollup (its per-day sums), and the same sums crossed by each
value of the survey's other dimensions: the one place the rollup's fields are named and made, for the outbox's
entries, its forwarder and the rebuild alike.

Fields: "<day>|<sum>" (n, sent, value6, satisfied, promoter, detractor, nps, weight, weighted), "<day>|r|<scale>|
<rating>" (answers of a rating), "<day>|why|<reason>" (unsatisfied answers of a follow-up reason), and crossed by a
value ("<dimension>=<value>", cross_label): "x|<label>|<sum>" in all, "<day>|<label>|<sum>" per day (CROSSED_DAY,
every sum when crossed by source).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

from tracker.model import Aggregate, day_of

ROLLUP_INTS = ("n", "value6", "satisfied", "promoter", "detractor", "nps")
ROLLUP_FLOATS = ("weight", "weighted")
REASON_MARK = "why|"  # a rollup day's count of unsatisfied answers by follow-up reason: "<day>|why|<reason>"

Rollup = dict[str, float]


# What an answer or a sent survey adds to a rollup ---------------------------------------------------------------

def answer_rollup(counted: Aggregate, scale: str, rating: int | str, reason: str | None = None) -> Rollup:
    """Return the rollup fields one answer adds on its day: sums, one answer of its rating on its scale, and for
    an unsatisfied answer with a follow-up reason one answer of that reason (reason_field)."""
    if not counted.days:
        return {}
    ((day, _),) = counted.days.items()
    fields: Rollup = {f"{day}|{name}": getattr(counted, name) for name in (*ROLLUP_INTS, *ROLLUP_FLOATS)
                      if getattr(counted, name)}
    fields[f"{day}|r|{scale}|{rating}"] = counted.n
    if reason and counted.n and not counted.satisfied:
        fields[f"{day}|{reason_field(reason)}"] = counted.n
    return fields


def reason_field(reason: str) -> str:
    """Name an unsatisfied answer's follow-up reason in a rollup day: "why|<reason, escaped>" (the dashboard's
    reasons breakdown reads the range's days of these)."""
    return f"{REASON_MARK}{quote(reason, safe='')}"


def reasons_in(rollup: Mapping[str, float]) -> set[str]:
    """Return the follow-up reasons a rollup counts (its reason_field days)."""
    marker = f"|{REASON_MARK}"
    return {unquote(name.partition(marker)[2]) for name, count in rollup.items() if marker in name and count}


def sent_rollup(sent_ms: int) -> Rollup:
    """Return the rollup field one sent survey adds on its send day."""
    return {f"{day_of(sent_ms)}|sent": 1}


def add_rollups(*parts: Mapping[str, float]) -> Rollup:
    """Sum rollups field by field into a new one, leaving out what sums to zero."""
    total: Rollup = {}
    add_into(total, *parts)
    return {name: value for name, value in total.items() if value}


def add_into(total: Rollup, *parts: Mapping[str, float]) -> None:
    """Add rollups to total in place, field by field; a field that sums to zero stays until add_rollups(total) leaves
    it out. What a rebuild's millions of additions into one entity need: add_rollups makes a new sum each time."""
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value


def negated(rollup: Mapping[str, float]) -> Rollup:
    return {name: -value for name, value in rollup.items()}


def is_float_field(name: str) -> bool:
    """Say whether a rollup field is a float sum (weight, weighted) rather than a count (of a rating, a reason)."""
    return name.rpartition("|")[2] in ROLLUP_FLOATS and "|r|" not in name and f"|{REASON_MARK}" not in name


def rollup_from_hash(raw: Mapping[str, str]) -> Rollup:
    """Read a rollup hash (or the rollup fields kept in a retired hash: those holding a '|')."""
    return {name: float(value) if is_float_field(name) else int(value) for name, value in raw.items() if "|" in name}


# Crossed sums: an entity's numbers narrowed to one value of another dimension ----------------------------------

# What a crossing keeps of the rollup fields an answer or sent survey adds: every sum, in all ("x|<label>|<name>",
# what a list filtered by another dimension orders by and shows) and per day, the day's answers, their values and
# the satisfied ones ("<day>|<label>|n", "|value6", "|satisfied": a crossed card's trend, the dashboard's weekly
# CSAT) and, crossed by source, every sum of the day (the summary's per-source split under a filter).
CROSSED_SUMS = (*("n", "sent", "value6", "satisfied", "promoter", "detractor", "nps"), *ROLLUP_FLOATS)
CROSSED_DAY = ("n", "value6", "satisfied")
CROSSED_TOTAL = "x"  # the "day" of a crossing's all-time sums: sorts after every day, so no read of days sees it
_CROSSED_SET = frozenset(CROSSED_SUMS)
UNCROSSED = ("customer", "overall")  # a customer has no rollup; overall crossed by a value is that value's entity


@lru_cache(maxsize=8192)
def cross_label(dimension: str, value: str) -> str:
    """Name one value of a dimension in a crossed field: "channel=email", "agent=zendesk%3A42" (the value escaped,
    so no '|' or ':' of it can be taken for a separator). Remembered: every step of every entry names the same few
    agents, teams and tags again."""
    return f"{dimension}={quote(value, safe='')}"


def dimensions_of(entities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the (dimension, value) pairs a survey counts for, from the entities it counts for (aggregate_ids):
    its source, agent, team, brand, channel, organisation and tags."""
    return [(kind, ident) for kind, ident in entities if kind not in UNCROSSED and "@" not in kind]


def crossed_lists(kind: str, dimensions: Sequence[tuple[str, str]],
                  rollup: Mapping[str, float]) -> tuple[list[list[Any]], list[list[Any]]]:
    """Return cross_into's fields as [name, count] and [name, float sum] pairs (in no particular order): what an
    outbox step sends, counts and floats apart."""
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    cross_into(counts, sums, kind, dimensions, rollup)
    return ([[name, int(value)] for name, value in counts.items() if value],
            [[name, float(value)] for name, value in sums.items() if value])


def cross_into(counts: Rollup, sums: Rollup, kind: str, dimensions: Sequence[tuple[str, str]],
               rollup: Mapping[str, float]) -> None:
    """Add the crossed fields an entity of kind adds for a rollup delta of a survey of these dimensions to counts
    and to float sums (one dict may take both), in place, zeros included: for each value of every other dimension
    (an agent's source aside), the sums in all and per day (CROSSED_SUMS, CROSSED_DAY).

    Linear in the delta (a re-rating's difference, an erasure's negation cross like the answer did), and the same
    whether the forwarder (crossed_lists) or a rebuild (into the entity's running rollup) adds it: the one place
    crossed fields are made. A crossed field is a float sum when the sum it crosses is one (ROLLUP_FLOATS), else a
    count.
    """
    own = kind.partition("@")[0]
    if own in UNCROSSED or not rollup:
        return
    # An agent is of one source (its id's prefix): crossed by it, it would only repeat its own sums.
    skipped = (own, "source") if own == "agent" else (own,)
    labels = [(dimension == "source", cross_label(dimension, value)) for dimension, value in dimensions
              if dimension not in skipped]
    for name, value in rollup.items():
        day, _, field_name = name.partition("|")
        if field_name not in _CROSSED_SET:
            continue
        per_day = field_name in CROSSED_DAY
        into = sums if field_name in ROLLUP_FLOATS else counts
        for by_source, label in labels:
            total = f"{CROSSED_TOTAL}|{label}|{field_name}"
            into[total] = into.get(total, 0) + value
            if by_source or per_day:
                daily = f"{day}|{label}|{field_name}"
                into[daily] = into.get(daily, 0) + value
