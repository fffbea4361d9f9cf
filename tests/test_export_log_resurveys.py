"""`tracker export-log` then `tracker replay` into an empty Redis carries a closed case's new survey still to send
(TRACKER_CASE_RESURVEY, held by the customer's throttle): the new install sends it when the old one would have (one
past due at once), once, whether the workers record the case's survey before replay writes the case or after, and
even while they run during the replay. A new survey sent already is never sent again; replaying twice changes
nothing; a dry run counts them and writes nothing; a bad line is reported with its number."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, tracker, wait_until
from tests.test_cases import answer_data, deliver
from tests.test_export_log_cases import contents
from tests.test_export_log_reminders import send_at
from tests.test_migrations import dry_replay, other_db
from tracker.cases.work import update_case
from tracker.config import Settings
from tracker.store import Store, keys
from tracker.surveys import due as surveys

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
HELD, LATE, MAILED, OPEN = "held@example.no", "late@example.no", "mailed@example.no", "open@example.no"


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any) -> dict[str, str]:
    """The usual environment, with re-surveys on and a week's throttle between two surveys to a customer."""
    return session_env(redis_url, broker_url, smtp, TRACKER_CASE_RESURVEY="1", TRACKER_SURVEY_THROTTLE_DAYS="7")


def now_ms() -> int:
    return int(time.time() * 1000)


def due_entry(store: Store, case_id: str) -> int | None:
    member = f"{keys.CASE_DUE}{case_id}"
    score = store.redis.zscore(keys.due_of(member), member)
    return None if score is None else int(score)


def closed_cases(world: World, store: Store, settings: Settings) -> dict[str, str]:
    """Recovery cases: MAILED closed and its new survey mailed; HELD closed, its new survey held for a week by the
    throttle of the survey it answered; LATE closed, its new survey held for half an hour until half an hour ago (not
    swept since); OPEN still open. Return each customer's case id. The sweeps run at chosen times before now."""
    now = now_ms()
    ids = {}
    for ticket, email in (("T-1", MAILED), ("T-2", HELD), ("T-3", LATE), ("T-4", OPEN)):
        sid = world.solved_and_answered(ticket, email, 1, "Slow")
        data = answer_data(sid, email, 1, False, ticket=ticket, at_ms=now - 3 * HOUR_MS)
        assert deliver(store, settings, data).status == "delivered"
        ids[email] = keys.case_id(sid, email)
        if email in (HELD, LATE):  # the answered survey holds the customer's slot
            store.reserve_throttle(email, sid, (7 * DAY_MS) if email == HELD else HOUR_MS // 2)
    update_case(store, settings, ids[MAILED], now - 2 * HOUR_MS, "lead", status="not_recovered")
    update_case(store, settings, ids[LATE], now - 2 * HOUR_MS, "lead", status="recovered")
    assert sorted((o.status, o.reason) for o in send_at(store, settings, now - HOUR_MS)) == [
        ("deferred", "throttled"), ("sent", "")]
    update_case(store, settings, ids[HELD], now - 45 * 60_000, "lead", status="not_recovered", outcome="Lost them")
    assert [(o.status, o.reason) for o in send_at(store, settings, now - 40 * 60_000)] == [("deferred", "throttled")]
    assert due_entry(store, ids[MAILED]) is None
    assert now + 6 * DAY_MS < (due_entry(store, ids[HELD]) or 0) and (due_entry(store, ids[LATE]) or 2 ** 62) < now
    # The sweeps ran at chosen times, the windows' keys expire on the real clock: LATE's ended half an hour ago.
    store.redis.delete(keys.customer(LATE, "throttle"))
    return ids


def export(env: dict[str, str], path: Path) -> list[dict[str, Any]]:
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert "the new surveys of 2 closed cases still to send" in exported.stdout, exported.stdout
    return [json.loads(line) for line in path.read_text().splitlines()]


def new_surveys(smtp: Any, since: int) -> list[str]:
    return [mail["To"].addresses[0].addr_spec for mail in smtp.messages[since:]]


def test_a_held_new_survey_is_sent_by_the_new_install_when_it_was_due_once(
        world, store, settings, smtp, env, redis_server, tmp_path: Path):
    ids = closed_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    lines = export(env, path)
    held = {line["case"]: line["due_at"] for line in lines if line["type"] == "case.resurvey"}
    assert sorted(held) == sorted((ids[HELD], ids[LATE]))
    mailed = len(smtp.messages)

    # The replay writes the cases; their surveys are the workers' to record, so nothing is due until they have.
    other_env, other_settings, other = other_db(redis_server, env, 3)
    assert tracker(other_env, "replay", str(path)).returncode == 0
    assert other.case(ids[HELD]) is not None and other.survey(other.case(ids[HELD]).survey) is None
    assert due_entry(other, ids[HELD]) is None
    # Applied, and swept: the one past due goes at once, as the old install's next sweep would have sent it.
    assert World(None, other, other_env, None, None).send() == ["sent"]
    assert new_surveys(smtp, mailed) == [LATE]
    assert due_entry(other, ids[HELD]) == due_entry(store, ids[HELD])

    due = due_entry(store, ids[HELD]) or 0
    # HELD's one-survey window goes on here (its profile line), ending when it ends there; the new survey is due then.
    window = keys.customer(HELD, "throttle")
    assert other.redis.get(window) == store.redis.get(window)
    assert abs(other.redis.pttl(window) - store.redis.pttl(window)) < 120_000
    assert send_at(other, other_settings, due - 1) == []
    other.redis.delete(window)  # as its expiry will have by then: the sweep runs at a chosen time, the key's TTL not
    assert send_at(other, other_settings, due) == [surveys.Outcome("sent")]
    smtp.wait_for(mailed + 2)
    assert new_surveys(smtp, mailed) == [LATE, HELD]
    assert send_at(other, other_settings, due + 8 * DAY_MS) == []
    assert len(smtp.messages) == mailed + 2  # MAILED's went out before the move: never again
    new = [s for s in other.customer_surveys(HELD) if s.sid != other.case(ids[HELD]).survey]
    assert [(s.status, s.tkey) for s in new] == [("sent", "standard:T-2")]


def test_the_survey_recorded_before_the_line_is_replayed_schedules_it_at_once_and_twice_is_once(
        world, store, settings, env, redis_server, tmp_path: Path):
    ids = closed_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    lines = export(env, path)
    dry = dry_replay(env, redis_server, path, 4)
    assert "  new surveys to schedule  2\n" in dry, dry

    # First without the case.resurvey lines, applied: the surveys are recorded before the lines are read.
    other_env, _, other = other_db(redis_server, env, 4)
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(line) + "\n" for line in lines if line["type"] != "case.resurvey"))
    assert tracker(other_env, "replay", str(first)).returncode == 0
    World(None, other, other_env, None, None).send()
    assert due_entry(other, ids[HELD]) is None
    whole = tracker(other_env, "replay", str(path))
    assert whole.returncode == 0, whole.stderr
    assert "2 new surveys of closed cases" in whole.stdout, whole.stdout
    assert due_entry(other, ids[HELD]) == due_entry(store, ids[HELD])
    assert due_entry(other, ids[LATE]) == due_entry(store, ids[LATE])

    before = contents(other, "t:{k*}:due", "t:{c*")
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0 and "(6 already there)" in again.stdout, again.stdout
    assert contents(other, "t:{k*}:due", "t:{c*") == before


def test_a_past_due_new_survey_is_sent_once_by_workers_and_beat_running_during_the_replay(
        world, store, settings, smtp, env, redis_server, tmp_path: Path, start_worker):
    ids = closed_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    export(env, path)
    mailed = len(smtp.messages)
    other_env, _, other = other_db(redis_server, env, 5)
    start_worker(beat=True, TRACKER_REDIS_URL=other_env["TRACKER_REDIS_URL"])
    assert tracker(other_env, "replay", str(path)).returncode == 0
    smtp.wait_for(mailed + 1)
    wait_until(lambda: due_entry(other, ids[LATE]) is None and due_entry(other, ids[HELD]) is not None,
               what="the past due new survey sent, the held one waiting")
    assert new_surveys(smtp, mailed) == [LATE]


def test_a_bad_new_survey_line_is_reported_with_its_number_and_one_sent_already_is_not_sent_again(
        world, store, settings, smtp, env, redis_server, tmp_path: Path, post_event):
    ids = closed_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    lines = export(env, path)
    late = next(line for line in lines if line["type"] == "case.resurvey" and line["case"] == ids[LATE])
    broken = {**late, "case": "c1-not-a-case"}
    still_open = {**late, "case": ids[OPEN]}
    sent_already = {**late, "case": ids[MAILED]}  # its closing scheduled one, which went out before the move
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(line) + "\n" for line in (late, broken, *lines, still_open, sent_already)))

    other_env, _, other = other_db(redis_server, env, 6)
    result = tracker(other_env, "replay", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in errors] == [f"{bad}:{n}" for n in (1, 2, len(lines) + 3)], errors
    assert f"no case {ids[LATE]} here: its case.recorded line must come before this line" in errors[0]
    assert "not a valid case.resurvey line" in errors[1] and "case" in errors[1]
    assert f"the case {ids[OPEN]} here scheduled no new survey" in errors[2]
    mailed = len(smtp.messages)
    assert World(None, other, other_env, None, None).send() == ["sent"]  # LATE's, from its own line in the file
    assert new_surveys(smtp, mailed) == [LATE]
    assert due_entry(other, ids[MAILED]) is None and due_entry(other, ids[HELD]) is not None

    length = store.lag().length
    response = post_event("standard", late)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert store.lag().length == length
