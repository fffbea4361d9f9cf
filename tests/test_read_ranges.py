"""Reads that cost the page and the days: a range of a long history, the trends of a list, the at-risk walk."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.ranked_data import NOW_MS, fill_forty, rank_every_customer
from tests.support import drain, tracker
from tracker.config import Settings
from tracker.scores import ranking
from tracker.scores import summary as summaries
from tracker.scores.at_risk import risk_page
from tracker.scores.maths import score_card
from tracker.store import Store, keys, queries

LAST = date(2025, 11, 30)
FIRST = LAST - timedelta(days=699)


@pytest.fixture
def long_history(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings) -> None:
    """Seven hundred days of answers to agent ola (a rollup and daily buckets bigger than a compact hash holds),
    a few to kari, on two sources."""
    rows = ["email,rating,scale,answered_at,ticket,source,agent,team,comment"]
    for offset in range(700):
        day = FIRST + timedelta(days=offset)
        source = ("zendesk", "freshdesk")[offset % 2]
        rows.append(f"c{offset % 37}@example.no,{offset % 5 + 1},csat5,{day}T09:00:00Z,T-{offset},{source},ola,"
                    f"billing,")
        if offset % 50 == 0:
            rows.append(f"k{offset}@example.no,{offset % 3 + 1},csat3,{day}T11:00:00Z,K-{offset},zendesk,kari,,")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = tracker(env, "import-ratings", str(path))
    assert done.returncode == 0, done.stderr
    while drain(store, settings):
        pass


def _cards(totals: Any) -> tuple[Any, ...]:
    return (score_card("all", totals.total, NOW_MS),
            {source: score_card(source, sums, NOW_MS) for source, sums in totals.per_source.items()},
            {day: n for day, n in totals.satisfied_by_day.items() if n}, totals.distribution, totals.total.days)


RANGES = [(LAST, LAST), (LAST - timedelta(days=9), LAST), (FIRST, LAST),
          (FIRST - timedelta(days=30), FIRST + timedelta(days=40)), (date(2024, 2, 20), date(2024, 3, 10))]


def test_a_range_of_a_long_history_sums_what_its_answers_do(long_history: None, store: Store) -> None:
    # Both ways of reading a range are taken: a big hash asked for the range's names, a small one read whole.
    assert store.redis.object("encoding", keys.rollup("overall", "all")) == "hashtable"
    assert store.redis.object("encoding", keys.rollup("agent", "zendesk:kari")) in ("listpack", "ziplist")
    for filters in (summaries.Facets(), summaries.Facets(source="zendesk"), summaries.Facets(agent="zendesk:kari")):
        for first, last in RANGES:
            rolled = summaries._from_rollups(store, filters, first, last)
            assert rolled is not None
            assert _cards(rolled) == _cards(summaries._from_answers(store, filters, first, last)), (filters, first)


def test_lists_show_the_trends_and_sums_every_day_gives(long_history: None, store: Store) -> None:
    assert store.redis.object("encoding", keys.daily("agent", "zendesk:ola")) == "hashtable"
    assert store.redis.object("encoding", keys.daily("agent", "zendesk:kari")) in ("listpack", "ziplist")
    for now in (NOW_MS, NOW_MS - 3 * 86_400_000, NOW_MS - 400 * 86_400_000):
        for kind in ("agent", "team", "source"):
            names = store.agent_names(store.ids(kind)) if kind == "agent" else {}
            whole = [score_card(ident, agg, now, names.get(ident) if kind == "agent" else ident)
                     for ident, agg in store.aggregates(kind, store.ids(kind)) if not agg.empty]
            whole.sort(key=lambda card: (-card.responses, card.id))
            assert any(card.trend is not None for card in whole)
            assert ranking.aggregate_list(store, kind, now) == whole
            assert ranking.aggregate_page(store, kind, now, 1, 1) == (whole[1:2], len(whole))
            assert [ranking.aggregate_detail(store, kind, card.id, now) for card in whole] == whole
    assert ranking.aggregate_detail(store, "agent", "zendesk:nobody", NOW_MS) is None


@pytest.mark.parametrize("direct", [0, queries.DIRECT_FIELDS], ids=["days_of.lua", "hmget"])
def test_a_rollup_names_its_days_as_python_does_across_leap_years_and_centuries(store: Store, direct: int,
                                                                                monkeypatch: Any) -> None:
    # Both ways a short range is read: the script naming the days from their numbers, and one HMGET named here.
    monkeypatch.setattr(queries, "DIRECT_FIELDS", direct)
    days = [date(1970, 1, 1), date(1969, 12, 31), date(2000, 2, 29), date(2000, 3, 1), date(2024, 2, 29),
            date(2100, 2, 28), date(2100, 3, 1), date(1, 1, 1), date(9999, 12, 31)]
    key = keys.rollup("source", "edge")
    store.redis.hset(key, mapping={f"{day.isoformat()}|n": str(i + 1) for i, day in enumerate(days)})
    # Ask day by day: the hash is compact (read whole and filtered) and the range one day.
    for i, day in enumerate(days):
        assert store.rollups([("source", "edge", ("n",))], day, day) == [{day.isoformat(): {"n": str(i + 1)}}]
    # A hash bigger than the range asks for each name of the range, which it builds from the day numbers.
    store.redis.hset(key, mapping={f"1900-01-{d:02d}|x{k}": "1" for d in range(1, 29) for k in range(30)})
    assert store.redis.object("encoding", key) == "hashtable"
    for day in days:
        first = day - timedelta(days=1) if day.year > 1 else day
        expected = {d.isoformat(): {"n": str(i + 1)} for i, d in enumerate(days) if first <= d <= day}
        assert store.rollups([("source", "edge", ("n",))], first, day) == [expected]


def test_a_crossed_trend_summed_from_one_hmget_equals_what_days_of_lua_sums(store: Store) -> None:
    # crossed_parts reads a short range of a rollup by one HMGET and sums it here; days_of.lua sums it in Redis.
    key = keys.rollup("agent", "edge")
    names = ["chat|n", "chat|value6"]
    start = date(2024, 2, 1)
    store.redis.hset(key, mapping={f"{(start + timedelta(days=d)).isoformat()}|{name}": str(d * 3 + k + 1)
                                   for d in range(0, 70, 3) for k, name in enumerate(names)})
    for big in (False, True):
        if big:  # a rollup bigger than a compact hash, as a busy entity's is
            store.redis.hset(key, mapping={f"1900-01-{d:02d}|x{k}": "1" for d in range(1, 29) for k in range(30)})
        for first, last, split in [(start, start + timedelta(days=59), start + timedelta(days=30)),
                                   (start + timedelta(days=5), start + timedelta(days=64), start),
                                   (start - timedelta(days=20), start + timedelta(days=9), start + timedelta(days=90)),
                                   (start, start, start),
                                   (start + timedelta(days=3), start + timedelta(days=3), start)]:
            pipe = store.redis.pipeline(transaction=False)
            store._queue_days(pipe, key, first, last, split, "|", names)
            in_redis = [int(value) for value in pipe.execute()[0]]
            direct = queries.split_reader(first, last, split, "|", names)
            assert direct is not None
            fields, summed = direct
            assert summed(store.redis.hmget(key, fields)) == in_redis, (big, first, last, split)
            assert any(in_redis) or first == last
    assert queries.split_reader(start, start + timedelta(days=queries.DIRECT_FIELDS), start, "|", names) is None


def test_weeks_summed_from_one_hmget_equal_the_days_rollups_reads(store: Store) -> None:
    # The dashboard's sparklines (store.span_sums) against the days store.rollups returns, summed per span.
    start = date(2024, 2, 26)
    names = ["n", "satisfied"]
    for ident, crossed in (("edge", ""), ("cross", "channel=chat|")):
        store.redis.hset(keys.rollup("agent", ident), mapping={
            f"{(start + timedelta(days=d)).isoformat()}|{crossed}{name}": str(d + k + 1)
            for d in range(0, 40, 2) for k, name in enumerate(names)})
    entities = [("agent", "edge", names), ("agent", "cross", [f"channel=chat|{name}" for name in names]),
                ("agent", "none", names)]
    for first, last in [(start, start + timedelta(days=29)), (start + timedelta(days=3), start + timedelta(days=3)),
                        (start - timedelta(days=10), start + timedelta(days=5))]:
        spans, day = [], first
        while day <= last:  # spans of 1 to 7 days, as calendar weeks cut to a range give
            end = min(day + timedelta(days=(day.toordinal() % 7)), last)
            spans.append((day, end))
            day = end + timedelta(days=1)
        summed = store.span_sums(entities, first, last, spans)
        assert summed is not None
        by_day = store.rollups(entities, first, last)
        for (_, _, wanted), days, weeks in zip(entities, by_day, summed, strict=True):
            expected = [[sum(int(fields.get(name, 0)) for day_name, fields in days.items()
                             if low.isoformat() <= day_name <= high.isoformat()) for name in wanted]
                        for low, high in spans]
            assert weeks == expected, (first, last, wanted)
        assert not any(any(week) for week in summed[2])  # no rollup: nothing
        if first == start:
            assert any(any(week) for week in summed[0]) and any(any(week) for week in summed[1])
    year = [("agent", "edge", names)]
    assert store.span_sums(year, start, start + timedelta(days=365), [(start, start + timedelta(days=365))]) is None


def _pages(strategy: Any, sort: str, order: str) -> list[str]:
    got: list[str] = []
    after = None
    for _ in range(100):
        ranked = strategy(sort, order, after, 4)
        page = ranked[:4]
        got += [email for _, email in page]
        if len(ranked) <= 4:
            break
        after = page[-1][0]
    return got


@pytest.fixture
def filled(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings, post_event: Any) -> list[str]:
    return fill_forty(env, tmp_path, store, settings, post_event)


@pytest.mark.parametrize("sort", ranking.SORTS)
@pytest.mark.parametrize("order", ranking.ORDERS)
def test_at_risk_pages_are_the_same_walked_or_read_whole(filled: list[str], store: Store,
                                                         settings: Settings, sort: str, order: str) -> None:
    expected = rank_every_customer(store, settings, filled, sort, order, True)
    assert expected

    def walked(sort: str, order: str, after: Any, limit: int) -> list[Any]:
        return ranking._Walk(store, settings, sort, order, True, after, limit).run()

    def whole(sort: str, order: str, after: Any, limit: int) -> list[Any]:
        return ranking._at_risk_page(store, settings, sort, order, after, limit)

    def from_ranking(sort: str, order: str, after: Any, limit: int) -> list[Any]:
        page = risk_page(store, settings.at_risk_score, order, after, limit)
        assert page is not None
        return page

    assert _pages(walked, sort, order) == expected
    assert _pages(whole, sort, order) == expected
    if sort == "value":  # the at-risk ranking, kept by the writers since beat filled it on the empty Redis
        assert store.risk_ranking_ready(settings.at_risk_score)
        assert _pages(from_ranking, sort, order) == expected


def test_an_at_risk_walk_gives_up_past_its_budget(filled: list[str], store: Store,
                                                  settings: Settings) -> None:
    with pytest.raises(ranking.OverBudget):
        ranking._Walk(store, settings, "value", "asc", True, None, 4, budget=3).run()
