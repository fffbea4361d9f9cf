"""Notices produced where what they tell became true: once each, also when the work that emits them runs again."""

from __future__ import annotations

import json
from typing import Any

from tests.support import World, drain, indexed, iso, solved_event
from tracker.ingest.apply import apply_entries
from tracker.model import DAY_MS
from tracker.notify.events import Notice, notice_from_entry
from tracker.notify.expiry import emit_expired
from tracker.store import Store, keys
from tracker.store.survey_codes import coded
from tracker.surveys.send import tell_skipped
from workers.celery_app import create_celery


def notices(store: Store, email: str, type_: str | None = None) -> list[Notice]:
    """Read a customer's notices back from their bucket's stream, in order."""
    rows = store.redis.xrange(keys.notices(keys.bucket_of(email)))
    told = [notice_from_entry(entry_id, fields) for entry_id, fields in rows]
    return [n for n in told if n.customer == email and (type_ is None or n.type == type_)]


def forward_again(store: Store, sid: str, entries: list[tuple[int, dict[str, Any]]]) -> None:
    """Put a bucket's forwarded entries back in its outbox, as a forwarder that died before removing them leaves
    them, and forward them again."""
    bucket = keys.bucket_of(sid)
    store.redis.zadd(keys.outbox(bucket), {f"{seq}|{json.dumps(body, separators=(',', ':'))}": seq
                                            for seq, body in entries})
    store.forward_outbox(bucket)


def test_a_sent_survey_and_its_answer_are_told_once_each(world: World) -> None:
    store = world.store
    world.solve("T-1", "kari@example.no", subject="Printer on fire", team="billing",
                agent={"id": "a-7", "name": "Ola", "email": "a-7@acme.test"})
    assert world.send() == ["sent"]
    sid = world.answer("kari@example.no", 4, "Fine")
    told = notices(store, "kari@example.no")
    assert [n.type for n in told] == ["survey.sent", "survey.answered"]
    sent, answered = told
    survey = answered.data["survey"]
    assert survey["id"] == sid and survey["ticket"] == "T-1" and survey["source"] == "standard"
    assert survey["agent"] == {"id": "a-7", "name": "Ola"} and survey["team"] == "billing"
    assert survey["subject"] == "Printer on fire" and survey["sent_at"].endswith("Z")
    assert answered.data["answer"] == {"rating": 4, "scale": "csat5", "label": "Satisfied", "satisfied": True,
                                       "comment": "Fine", "reason": None, "extra": None,
                                       "answered_at": answered.data["answer"]["answered_at"]}
    assert answered.data["customer"] == {"email": "kari@example.no", "name": "Kari"}
    assert sent.data == {"survey": survey, "customer": answered.data["customer"]}
    # Named by the store (its id), the survey's bucket and the entry's place in its outbox: a store made from an
    # export, whose places start again, names its notices apart from the store it came from.
    origin = store.redis.get(keys.STORE_ID)
    assert origin and len(origin) == 16
    assert sent.id.startswith(f"survey.sent:{origin}:{keys.bucket_of(sid)}:")
    assert answered.id.startswith(f"survey.answered:{origin}:{keys.bucket_of(sid)}:")


def test_a_changed_answer_is_told_with_its_previous_rating_and_the_score_crossing_once(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    world.answer(email, 4)
    world.answer(email, 2, "Worse on second thought")  # 25 < 50: the customer is at risk now
    world.answer(email, 1)  # still at risk: no second customer.at_risk
    told = notices(store, email)
    assert [n.type for n in told] == ["survey.sent", "survey.answered", "survey.changed", "customer.at_risk",
                                      "survey.changed"]
    changed, risk, again = told[2:]
    assert changed.data["answer"]["previous_rating"] == 4 and changed.data["answer"]["rating"] == 2
    assert changed.data["answer"]["comment"] == "Worse on second thought"
    assert again.data["answer"]["previous_rating"] == 2
    assert risk.data == {"customer": {"email": email, "name": "Kari", "score": 25.0, "responses": 1},
                         "threshold": world.settings.at_risk_score, "survey": {"id": changed.data["survey"]["id"]}}
    assert risk.id == changed.id.replace("survey.changed", "customer.at_risk")


def test_an_outbox_entry_forwarded_again_after_a_crash_tells_nothing_twice(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    survey = store.customer_surveys(email)[0]
    bucket = keys.bucket_of(survey.sid)
    with store.forwarding_later():
        world.answer_at(email, 1, 1_700_000_000_000)
        entries = store.outbox_entries(bucket)
    assert [body["op"] for _, body in entries] == ["answer"]
    once = [(n.id, n.type) for n in notices(store, email)]
    assert [t for _, t in once] == ["survey.sent", "survey.answered", "customer.at_risk"]
    forward_again(store, survey.sid, entries)
    assert [(n.id, n.type) for n in notices(store, email)] == once
    # A forwarder that died after the steps and before its notices: the entry forwarded again tells them.
    store.redis.delete(keys.notices(keys.bucket_of(email)),
                       *(keys.notice_mark(keys.bucket_of(email), ident) for ident, _ in once[1:]))
    forward_again(store, survey.sid, entries)
    assert [(n.id, n.type) for n in notices(store, email)] == once[1:]
    assert store.aggregate("customer", email).n == 1  # counted once all the same


def test_entries_written_before_the_flag_still_tell_first_answers_from_changes(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    survey = store.customer_surveys(email)[0]
    bucket = keys.bucket_of(survey.sid)
    for rating, at_ms in ((5, 1_700_000_000_000), (1, 1_700_000_060_000)):
        with store.forwarding_later():
            world.answer_at(email, rating, at_ms)
            ((seq, body),) = store.outbox_entries(bucket)
            store.redis.delete(keys.outbox(bucket))  # the entry as an older version wrote it: no prev, no risk
            old = {name: value for name, value in body.items() if name not in ("prev", "risk")}
            store.redis.zadd(keys.outbox(bucket), {f"{seq}|{json.dumps(old, separators=(',', ':'))}": seq})
    told = notices(store, email)
    assert [n.type for n in told] == ["survey.sent", "survey.answered", "survey.changed"]
    assert told[2].data["answer"]["previous_rating"] is None and told[2].data["answer"]["rating"] == 1


def test_a_skipped_survey_is_told_once_with_its_reason(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email, tags=["no-survey"])
    assert world.send() == ["skipped"]
    assert world.send() == []  # nothing due any more
    (skipped,) = notices(store, email)
    assert skipped.type == "survey.skipped" and skipped.id.startswith("survey.skipped:")
    assert skipped.data == {"ticket": {"id": "T-1", "source": "standard", "key": "standard:T-1"},
                            "customer": {"email": email, "name": "Kari"}, "reason": "tagged_no_survey"}
    # A sender that died after telling and before recording the skip decides it again: still one notice.
    survey = store.survey(skipped.id.partition(":")[2])
    assert survey is not None and survey.status == "skipped"
    tell_skipped(store, survey, "Kari", "tagged_no_survey", 1)
    assert len(notices(store, email)) == 1


def test_the_expiry_pass_tells_each_unanswered_survey_once_a_bounded_page_at_a_time(world: World) -> None:
    store, settings = world.store, world.settings
    people = ["ann@example.no", "bo@example.no", "cy@example.no"]
    for n, email in enumerate(people):
        world.solve(f"T-{n}", email)
    assert world.send() == ["sent"] * 3
    world.answer("bo@example.no", 5)
    sent = max(s.sent_at_ms or 0 for email in people for s in store.customer_surveys(email))
    expiry = settings.survey_expiry_days * DAY_MS
    assert emit_expired(store, settings, sent + expiry - 60_000) == 0  # none has expired yet
    later = sent + expiry + 60_000
    answered = store.customer_surveys("bo@example.no")[0].sid
    in_order = [(at, sid) for sid, at in indexed(store, "sent")]
    for k in range(2):  # one survey looked at per run, no more
        assert emit_expired(store, settings, later, limit=1) == int(in_order[k][1] != answered)
        assert store.expiry_cursor() == in_order[k]
    emit_expired(store, settings, later)
    expired = [n for email in people for n in notices(store, email, "survey.expired")]
    assert sorted(n.customer for n in expired) == ["ann@example.no", "cy@example.no"]
    for notice in expired:
        survey = store.customer_surveys(notice.customer)[0]
        assert notice.id == f"survey.expired:{survey.sid}" and notice.at_ms == survey.expires_at_ms
        assert notice.data == {"survey": notice.data["survey"], "customer": {"email": notice.customer,
                                                                             "name": notice.customer.split("@")[0]
                                                                             .title()}}
        assert notice.data["survey"]["id"] == survey.sid
    # Run again, and again from where a run that died before moving its cursor left it: nothing more.
    assert emit_expired(store, settings, later + 60_000) == 0
    store.redis.delete(keys.EXPIRY_CURSOR)
    assert emit_expired(store, settings, later) == 0
    assert len([n for email in people for n in notices(store, email, "survey.expired")]) == 2


def test_beat_runs_the_expiry_pass_every_minute(settings: Any) -> None:
    app = create_celery(settings)
    assert app.conf.beat_schedule["expire-surveys"] == {"task": "tracker.expire_surveys", "schedule": 60.0}
    assert "tracker.expire_surveys" in app.tasks


def test_a_new_ticket_of_a_customer_at_risk_is_told_once_before_the_log_moves_on(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    world.answer(email, 1)  # score 0: at risk
    opened = solved_event(ticket="T-2", email_address=email, kind="ticket.created", at=iso(5))
    opened["ticket"]["subject"] = "Still broken"
    world.event(opened)
    world.event(solved_event(ticket="T-2", email_address=email, kind="ticket.updated", at=iso(4)))
    world.event(solved_event(ticket="T-3", email_address=email, at=iso(3)))  # first seen solved: no note needed
    drain(store, world.settings)
    (told,) = notices(store, email, "ticket.at_risk")
    assert told.id == "ticket.at_risk:standard:T-2"
    assert told.data == {"ticket": {"id": "T-2", "source": "standard", "key": "standard:T-2",
                                    "subject": "Still broken"},
                         "customer": {"email": email, "name": "Kari", "score": 0.0}}
    # The same log batch applied again (an applier that died before moving the cursor): nothing more.
    shard_entries = [(shard, store.read_log(shard, "0-0", 100)) for shard in range(keys.BUCKETS)]
    for shard, entries in shard_entries:
        if entries:
            apply_entries(store, world.settings, shard, entries)
    assert len(notices(store, email, "ticket.at_risk")) == 1


def test_a_new_ticket_of_a_happy_customer_is_not_told(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    world.answer(email, 5)
    world.event(solved_event(ticket="T-2", email_address=email, kind="ticket.created", at=iso(5)))
    drain(store, world.settings)
    assert notices(store, email, "ticket.at_risk") == []


def test_an_answer_collected_elsewhere_is_told_once_also_when_its_log_batch_is_applied_again(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.event({"type": "survey.answered", "id": "evt-a-1", "occurred_at": iso(30),
                 "ticket": {"id": "T-9", "team": "billing", "agent": {"id": "a-7", "name": "Ola"}},
                 "customer": {"email": email, "name": "Kari"}, "answer": {"rating": 2, "scale": "csat5",
                                                                          "comment": "Meh"}})
    drain(store, world.settings)
    told = notices(store, email)
    assert [n.type for n in told] == ["survey.sent", "survey.answered", "customer.at_risk"]
    answer = told[1].data["answer"]
    assert (answer["rating"], answer["label"], answer["comment"], answer["satisfied"]) == (2, "Dissatisfied", "Meh",
                                                                                          False)
    assert told[1].data["survey"]["ticket"] == "T-9" and told[1].data["survey"]["team"] == "billing"
    for shard in range(keys.BUCKETS):
        if entries := store.read_log(shard, "0-0", 100):
            apply_entries(store, world.settings, shard, entries)
    assert [n.id for n in notices(store, email)] == [n.id for n in told]


def test_each_answer_is_told_with_the_comment_it_came_with_though_both_are_forwarded_later(world, monkeypatch):
    # Two answers collected elsewhere for one ticket, recorded before their bucket is forwarded (a forwarder busy
    # elsewhere): the first used to be told with the second's comment, which the survey's hash holds by then.
    store, email = world.store, "kari@example.no"
    for n, (rating, comment) in enumerate(((4, "First comment A"), (2, "Second comment B")), 1):
        world.event({"type": "survey.answered", "id": f"evt-mix-{n}", "occurred_at": iso(3600 * (3 - n)),
                     "ticket": {"id": "MIX-1"}, "customer": {"email": email, "name": "Kari"},
                     "answer": {"rating": rating, "scale": "csat5", "comment": comment}})
    with monkeypatch.context() as held:
        held.setattr(type(store), "forward_written", lambda self, bucket, seq: None)
        drain(store, world.settings)
    assert notices(store, email, "survey.answered") == []
    for bucket in range(keys.BUCKETS):
        store.forward_outbox(bucket)
    told = [(n.type, n.data["answer"]["rating"], n.data["answer"]["comment"]) for n in notices(store, email)
            if n.type in ("survey.answered", "survey.changed")]
    assert told == [("survey.answered", 4, "First comment A"), ("survey.changed", 2, "Second comment B")]


def test_a_sent_entry_forwarded_again_tells_nothing_twice(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    with store.forwarding_later():
        assert world.send() == ["sent"]
        entries = {bucket: store.outbox_entries(bucket) for bucket in range(keys.BUCKETS)}
    ((sent_bucket, sent),) = [(bucket, rows) for bucket, rows in entries.items() if rows]
    assert [body["op"] for _, body in sent] == ["sent"]
    once = [(n.id, n.type) for n in notices(store, email)]
    assert once == [(f"survey.sent:{store.redis.get(keys.STORE_ID)}:{sent_bucket}:{sent[0][0]}", "survey.sent")]
    forward_again(store, sent[0][1]["sid"], sent)
    assert [(n.id, n.type) for n in notices(store, email)] == once
    assert store.aggregate("customer", email).sent == 1


def test_an_entry_that_cannot_be_told_still_counts_and_leaves_its_outbox(world: World) -> None:
    store, email = world.store, "kari@example.no"
    world.solve("T-1", email)
    assert world.send() == ["sent"]
    survey = store.customer_surveys(email)[0]
    bucket = keys.bucket_of(survey.sid)
    with store.forwarding_later():
        world.answer_at(email, 4, 1_700_000_000_000)
        ((seq, body),) = store.outbox_entries(bucket)
        store.redis.delete(keys.outbox(bucket))
        del body["c"]["card"]  # an entry older than the card's copy, whose survey lost its rating meanwhile
        store.redis.zadd(keys.outbox(bucket), {f"{seq}|{json.dumps(body, separators=(',', ':'))}": seq})
        store.redis.hdel(keys.survey(survey.sid), coded("rating"))
    assert store.outbox_waiting() == {}
    assert store.aggregate("customer", email).n == 1
    assert [n.type for n in notices(store, email)] == ["survey.sent"]


def test_erasure_and_retention_take_the_notices_that_name_a_customer(world: World) -> None:
    store = world.store
    for n, email in enumerate(("ann@example.no", "bo@example.no")):
        world.solve(f"T-{n}", email)
    assert world.send() == ["sent", "sent"]
    world.answer_at("bo@example.no", 5, 1_700_000_000_000)  # answered long ago, as retention sees it
    assert store.erase_notices("ann@example.no") == 1
    assert notices(store, "ann@example.no") == []
    assert [n.type for n in notices(store, "bo@example.no")] == ["survey.sent", "survey.answered"]
    assert store.retire_old_notices(1_700_000_000_001) == 1
    assert [n.type for n in notices(store, "bo@example.no")] == ["survey.sent"]
