"""A page of the customers at risk ranked by value, read from the at-risk ranking (tracker.store.risk): the page and
its ties, whatever share of the customers is at risk.

The ranking holds the customers at risk with an order value (above 0) by that value, and after them the value-less
ones by their newest unsatisfied answer (within (-1, 0), newest highest; -1 without one). Walked in the ranks the
value list uses (rank tuple (0, ±value, no unhappiness, -unhappy ms, email)): descending, the valued part from the
top, then the value-less part; ascending, the value-less part first (still newest unhappiness first, as the rank
says), then the valued part from the bottom. Ties of a place are read whole once the page is full.
"""

from __future__ import annotations

from typing import Any

from tracker.store import Store
from tracker.store.risk import unhappy_place

Rank = tuple[Any, ...]
BATCH = 200  # at most this many read at once
SMALLEST = 8  # and at least this many: what the page still needs, or its ties
# Reading from a little before the cursor's place costs a few rows and is always right: places are floats.
_MARGIN = 1e-9


def rank_of(email: str, value: float, unhappy: float | None, sign: int) -> Rank:
    """Rank a customer as the value list does (see tracker.scores.ranking._Walk.rank)."""
    return (0, sign * int(value), int(unhappy is None), -int(unhappy or 0), email)


def _before(after: Rank | None, desc: bool) -> tuple[str, str] | None:
    """Return the ZCOUNT bounds of the places that stand before the cursor within its own part (None: from its
    start): in the valued part the values before it, in the value-less part the newer unhappiness."""
    if after is None:
        return None
    value = abs(int(after[1]))
    if value > 0:
        return (f"({value}", "+inf") if desc else ("(0", f"({value}")
    if after[2]:  # no unhappy answer: every value-less one with one stands before
        return "(-1", "0"
    place = unhappy_place(-int(after[3]))
    return f"({place + _MARGIN!r}", "0"


def risk_page(store: Store, threshold: float, order: str, after: Rank | None,
              limit: int) -> list[tuple[Rank, str]] | None:
    """Return up to limit + 1 (rank, email) of the customers at risk by value after the cursor, in rank order; None
    when the at-risk ranking is not filled for this threshold (the caller walks the value ranking instead)."""
    desc = order == "desc"
    sign = -1 if desc else 1
    view = store.risk_view(threshold, _before(after, desc))
    if view is None:
        return None
    valueless = view.total - view.valued
    # Each part as (first index, end index, read reversed): indices count from the top when reversed.
    valued_part = (0, view.valued, True) if desc else (valueless, view.total, False)
    valueless_part = (view.valued, view.total, True)
    parts = [valued_part, valueless_part] if desc else [valueless_part, valued_part]
    if after is not None:
        in_valued = int(after[1]) != 0
        own = valued_part if in_valued else valueless_part
        parts = parts[parts.index(own):]
        parts[0] = (own[0] + view.before, own[1], own[2])
    found: list[tuple[Rank, str]] = []
    ties: float | None = None  # once the page is full, the place whose ties are still read
    tie_batch = SMALLEST  # ties are read a few first, more at a time while they go on
    for start, end, reverse in parts:
        while start < end:
            if ties is None:
                wanted = min(BATCH, max(limit + 1 - len(found), SMALLEST))
            else:
                wanted, tie_batch = tie_batch, min(BATCH, tie_batch * 4)
            read = store.rank_slice("risk", start, min(wanted, end - start), reverse)
            if not read:
                break  # the ranking shrank since it was counted
            start += len(read)
            rows = read if ties is None else [row for row in read if row[1] == ties]
            unhappy = store.rank_values("unhappy", [email for email, _ in rows])
            for (email, place), bad in zip(rows, unhappy, strict=True):
                rank = rank_of(email, place if place > 0 else 0, bad, sign)
                if after is None or rank > after:
                    found.append((rank, email))
            if ties is not None and len(rows) < len(read):
                return sorted(found)[:limit + 1]  # past the last tie
            if ties is None and len(found) > limit:
                ties = read[-1][1]
        if ties is not None:
            break  # the next part ranks after every tie of this one
    return sorted(found)[:limit + 1]
