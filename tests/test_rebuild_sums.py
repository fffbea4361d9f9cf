"""A rebuild sums in place (AggregateSum, rollups.add_into) what `+` and add_rollups would sum copy by copy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tracker.model import Aggregate, AggregateSum
from tracker.store.rollups import add_into, add_rollups

DAYS = ("2026-10-01", "2026-10-02", "2026-10-03")
NAMES = ("2026-10-01|n", "2026-10-01|weight", "x|team=billing|n", "x|team=billing|weight", "2026-10-02|r|csat5|4")

floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=-3, max_value=3)
aggregates = st.builds(
    Aggregate, n=counts, sent=counts, value6=counts, satisfied=counts, promoter=counts, detractor=counts, nps=counts,
    weight=st.one_of(st.just(0.0), floats), weighted=st.one_of(st.just(0.0), floats),
    days=st.dictionaries(st.sampled_from(DAYS), st.tuples(counts, counts), max_size=3))
rollups = st.dictionaries(st.sampled_from(NAMES), st.one_of(counts, floats), max_size=5)


@given(st.lists(aggregates, max_size=12))
def test_aggregates_summed_in_place_equal_their_sum_by_plus(parts):
    expected = Aggregate()
    summed = AggregateSum()
    for part in parts:
        expected += part
        summed.add(part)
    assert summed.total() == expected
    assert summed.total().to_hash() == expected.to_hash()  # the same text in Redis, floats' repr included


@given(st.lists(rollups, max_size=12))
def test_rollups_added_in_place_equal_their_sum_by_add_rollups(parts):
    expected: dict[str, float] = {}
    total: dict[str, float] = {}
    for part in parts:
        expected = add_rollups(expected, part)
        add_into(total, part)
    assert add_rollups(total) == expected


def test_days_and_fields_that_sum_to_nothing_are_left_out_though_added_again():
    summed = AggregateSum()
    for days in ({"2026-10-01": (1, 6)}, {"2026-10-01": (-1, -6)}, {"2026-10-02": (1, 3)}):
        summed.add(Aggregate(n=days[next(iter(days))][0], days=days))
    assert summed.total().days == {"2026-10-02": (1, 3)}
    total: dict[str, float] = {}
    add_into(total, {"2026-10-01|n": 1}, {"2026-10-01|n": -1}, {"2026-10-02|n": 2})
    assert add_rollups(total) == {"2026-10-02|n": 2}
