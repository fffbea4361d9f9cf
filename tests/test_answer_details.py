"""What follows a rating: a later comment, reason or extra answers are told (survey.changed) and reach the ticket's
note; a test survey's answer counts nowhere and tells no one."""

from __future__ import annotations

import time
from dataclasses import replace

import requests

from tests.support import World, indexed
from tracker.answers.record import record_answer
from tracker.model import Survey
from tracker.notify.events import Notice, notice_from_entry
from tracker.notify.targets import DispatchContext
from tracker.store import Store, keys
from tracker.writeback.base import note_for


def notices(store: Store, email: str, type_: str | None = None) -> list[Notice]:
    rows = store.redis.xrange(keys.notices(keys.bucket_of(email)))
    told = [notice_from_entry(entry_id, fields) for entry_id, fields in rows]
    return [n for n in told if n.customer == email and (type_ is None or n.type == type_)]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_comment_added_after_the_rating_is_told_once_as_changed_with_the_same_rating(world: World) -> None:
    store = world.store
    world.solve("T-1", "kari@example.no")
    assert world.send() == ["sent"]
    sid = world.answer("kari@example.no", 2)
    survey = store.survey(sid)
    assert survey is not None
    assert record_answer(store, world.settings, survey, 2, "It took three days", now_ms(), reason="slow") == 1
    changed = notices(store, "kari@example.no", "survey.changed")
    assert len(changed) == 1
    answer = changed[0].data["answer"]
    assert answer["rating"] == 2 and answer["previous_rating"] == 2
    assert answer["comment"] == "It took three days" and answer["reason"] == "slow"
    # The same words again change nothing and tell nothing.
    assert record_answer(store, world.settings, survey, 2, "It took three days", now_ms(), reason="slow") == 0
    store.forward_all()
    assert len(notices(store, "kari@example.no", "survey.changed")) == 1
    # The scores counted the answer once: a comment is no second answer.
    assert store.aggregate("customer", "kari@example.no").n == 1


def test_extra_answers_are_stored_with_the_answer_told_and_written_in_the_note(world: World) -> None:
    store = world.store
    world.solve("T-2", "ola@example.no")
    assert world.send() == ["sent"]
    sid = world.answer("ola@example.no", 5, "Quick")
    survey = store.survey(sid)
    assert survey is not None
    extra = {"first_contact": "yes", "tell_more": "Ola was great ✓"}
    assert record_answer(store, world.settings, survey, 5, "Quick", now_ms(), extra=extra) == 1
    answer = store.response(sid)
    assert answer is not None and answer.extra == extra and answer.comment == "Quick"
    # None keeps them (the comment page does not know them), {} clears them.
    assert record_answer(store, world.settings, survey, 5, "Quick!", now_ms()) == 1
    kept = store.response(sid)
    assert kept is not None and kept.extra == extra
    (told, _again) = notices(store, "ola@example.no", "survey.changed")
    assert told.data["answer"]["extra"] == extra
    ctx = DispatchContext(store, world.settings, now_ms(), requests.Session())
    note = note_for(told, ctx)
    assert note is not None
    assert note.text.startswith("CSAT feedback updated")
    assert "first_contact: yes" in note.text and "tell_more: Ola was great ✓" in note.text
    assert note.tags == ("csat-5",) and note.stale_tags == ("csat-unsatisfied",)
    assert record_answer(store, world.settings, survey, 5, "Quick!", now_ms(), extra={}) == 1
    cleared = store.response(sid)
    assert cleared is not None and cleared.extra is None


def test_a_test_survey_is_answered_and_stored_but_counts_nowhere_and_tells_no_one(world: World) -> None:
    store = world.store
    email = "tester@acme.test"
    before = store.aggregate("overall", "all")
    sent_at = now_ms()
    survey = store.create_survey(Survey(sid="test-probe-1", tkey="test:probe-1", kind="ticket", scale="csat5",
                                        customer=email, source="standard", status="sending", ticket_id="probe-1",
                                        created_at_ms=sent_at, test="1"))
    assert survey.test == "1"
    assert store.mark_sent(survey, sent_at, sent_at + 86_400_000)
    sent = store.survey(survey.sid)
    assert sent is not None and sent.status == "sent"
    # In no index, so erasure and retention never find it: it leaves by itself a week after it expires.
    left_ms = store.redis.pttl(keys.survey(survey.sid))  # PTTL, not PEXPIRETIME: Redis 6.2 has no PEXPIRETIME
    assert 8 * 86_400_000 - 60_000 < left_ms <= 8 * 86_400_000
    assert record_answer(store, world.settings, replace(sent), 1, "just testing", now_ms(), extra={"q": "a"}) == 2
    answer = store.response(survey.sid)
    assert answer is not None and answer.rating == 1 and answer.extra == {"q": "a"}
    store.forward_all()
    assert store.aggregate("overall", "all") == before
    assert store.aggregate("customer", email).n == 0
    assert store.outbox_waiting() == {}
    assert notices(store, email) == []
    assert survey.sid not in dict(indexed(store, "resp"))
