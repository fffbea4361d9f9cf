"""The dashboard's reasons breakdown from the rollups: each unsatisfied answer's follow-up reason counts on its day
for every entity it counts for, moves when the reason or the rating changes, leaves with an erasure, stays with
retention, equals the answers' count and a rebuild."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import World
from tests.test_dimensions import answered
from tests.test_outbox import _answered_long_ago, assert_equals_a_rebuild
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.scores.rebuild import rebuild_scores
from tracker.scores.summary import Facets
from tracker.store import keys
from tracker.web.dashboard.data import REASON_SCAN, reasons_of

pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def now_ms() -> int:
    return int(time.time() * 1000)


def _give_reason(store: Any, settings: Any, email: str, reason: str) -> None:
    """Pick a follow-up reason for the customer's newest answer, its rating kept (the follow-up page's post)."""
    (survey,) = store.customer_surveys(email)
    answer = store.response(survey.sid)
    assert record_answer(store, settings, survey, answer.rating, answer.comment or "", now_ms(), reason=reason) == 1


def _by_answers(store: Any, first: Any, last: Any, filters: Facets) -> Any:
    """The breakdown counted from the answers, as two filters of other dimensions read it."""
    crossed = Facets(**{**{name: value for name, value in filters.chosen()}, "scale": "csat5"})
    return reasons_of(store, first, last, crossed, limit=REASON_SCAN)


def _rows(reasons: Any) -> tuple[Any, ...]:
    return ([(reason, count) for reason, _, count in reasons.rows], reasons.unhappy, reasons.without_reason)


def test_reasons_come_from_the_rollups_and_follow_every_change(world, store, settings, env):
    answered(world, "T-1", "kari@acme.no", 1, channel="chat", tags=["vip"])
    _give_reason(store, settings, "kari@acme.no", "slow")
    answered(world, "T-2", "ola@acme.no", 2, channel="email", tags=["vip"])
    _give_reason(store, settings, "ola@acme.no", "slow")
    _give_reason(store, settings, "ola@acme.no", "Wrong size")  # a changed reason moves its count
    answered(world, "T-3", "per@acme.no", 1, channel="email")  # unhappy, no reason
    answered(world, "T-4", "liv@acme.no", 2, channel="chat")
    _give_reason(store, settings, "liv@acme.no", "unclear")
    world.answer("liv@acme.no", 5)  # now satisfied: her reason no longer counts
    answered(world, "T-5", "siv@acme.no", 1, channel="chat", tags=["vip"])
    _give_reason(store, settings, "siv@acme.no", "not_solved")
    erase_customer(store, settings, "siv@acme.no")  # an erasure takes its count off
    retention = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    _answered_long_ago(world, "T-OLD", "old@acme.no", 1, 40)
    (old,) = store.customer_surveys("old@acme.no")
    record_answer(store, settings, old, 1, "", store.response(old.sid).at_ms, reason="slow")
    assert not store.outbox_waiting()

    today = datetime.now(UTC).date()
    first = today - timedelta(days=60)
    overall = reasons_of(store, first, today, Facets())
    assert overall.complete and overall.read == 5  # every answer of the range, from one rollup
    assert _rows(overall) == ([("slow", 2), ("Wrong size", 1)], 4, 1)
    for filters in (Facets(), Facets(channel="chat"), Facets(channel="email"), Facets(tag="vip"),
                    Facets(organisation="acme.no"), Facets(channel="chat", resolved_by="human")):
        assert _rows(reasons_of(store, first, today, filters)) == _rows(_by_answers(store, first, today, filters))
    assert _rows(reasons_of(store, first, today, Facets(channel="email"))) == ([("Wrong size", 1), ("slow", 1)], 3, 1)
    assert _rows(reasons_of(store, first, today, Facets(channel="chat"))) == ([("slow", 1)], 1, 0)
    assert_equals_a_rebuild(store, settings)

    removed = retire_old_records(store, retention, now_ms())
    assert removed.answers == 1
    assert _rows(reasons_of(store, first, today, Facets())) == ([("slow", 2), ("Wrong size", 1)], 4, 1)
    store.redis.delete(keys.REASONS)
    rebuild_scores(store, settings)  # brings back the names of the reasons its answers and retired sums hold
    assert set(store.reasons()) == {"slow", "Wrong size"}
    assert _rows(reasons_of(store, first, today, Facets())) == ([("slow", 2), ("Wrong size", 1)], 4, 1)
    assert_equals_a_rebuild(store, settings)
