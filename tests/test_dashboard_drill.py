"""The dashboard's drill-down (issue 12 item 2): customer search by email and name, the customer page, date
presets, the reasons breakdown, revenue at risk, and the session-authenticated CSV downloads."""

from __future__ import annotations

from tracker.privacy.erase import erase_customer
from tracker.scores.rebuild import rebuild_scores
from tracker.store import keys


def test_search_by_email_prefix_and_by_name_and_erased_customers_vanish(scored, store, settings):
    assert store.find_by_email("bj", 10) == ["bjorn@example.no"]
    assert store.find_by_email("", 10) == ["anna@example.no", "bjorn@example.no"]
    assert store.find_by_email("zz", 10) == []
    assert store.find_by_name("bjø", 10) == [("bjorn@example.no", "bjørn")]
    assert store.find_by_name("AN", 10) == [("anna@example.no", "anna")]
    assert store.find_by_email("", 1) == ["anna@example.no"]  # bounded
    erase_customer(store, settings, "bjorn@example.no")
    assert store.find_by_name("bj", 10) == [] and store.find_by_email("bj", 10) == []
    # rebuild-scores writes the index from the profiles again: the same entries
    store.redis.delete(keys.NAME_INDEX, keys.NAME_INDEXED)
    assert store.find_by_name("an", 10) == []
    rebuild_scores(store, settings)
    assert store.find_by_name("an", 10) == [("anna@example.no", "anna")]
