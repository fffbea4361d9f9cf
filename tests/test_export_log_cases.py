"""`tracker export-log` then `tracker replay` into an empty Redis carries the recovery cases and the opt-outs: every
case keeps its id, notes, status and times (its dashboard and alert links open), the summary's case numbers stay,
nothing is told or mailed again, and nobody who unsubscribed or was suppressed (erased or not) is mailed by the new
install. Replaying twice changes nothing; a hash kept under another secret key is refused, not lost in silence."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, drain, send_all, tracker, wait_until
from tests.test_cases import answer_data, deliver, notices
from tests.test_dashboard import sign_in
from tests.test_migrations import dry_replay, other_db, replayed
from tests.test_privacy import _unsubscribe_link
from tracker.cases.stats import case_numbers
from tracker.cases.work import update_case
from tracker.config import Settings, load_settings
from tracker.model import Case
from tracker.store import Store, keys
from tracker.surveys import optout
from tracker.surveys.optout import opt_out
from tracker.web.app import create_app

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
LATE, NOTED, BACK, CLOSED = "late@example.no", "noted@example.no", "back@example.no", "closed@example.no"
UNSUB, SUPP, GONE_U, GONE_S = "unsub@example.no", "supp@example.no", "gone-u@example.no", "gone-s@example.no"
RETIRED_SID = "defghijklmnopqrstuvw"
CASE_FIELDS = ("cases_open", "cases_overdue", "recovered_rate", "first_contact_hours")


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any) -> dict[str, str]:
    """The usual environment, with re-surveys on (a closed case's new survey must not be sent again)."""
    return session_env(redis_url, broker_url, smtp, TRACKER_CASE_RESURVEY="1", TRACKER_SURVEY_THROTTLE_DAYS="0")


def now_ms() -> int:
    return int(time.time() * 1000)


def every_case(store: Store) -> dict[str, Case]:
    return {case.id: case for batch in store.iter_cases() for case in batch}


def contents(store: Store, *patterns: str) -> dict[str, Any]:
    """Every key the patterns match, with what it holds: to see that a second replay wrote nothing."""
    held: dict[str, Any] = {}
    for pattern in patterns:
        for key in store.redis.scan_iter(pattern):
            kind = store.redis.type(key)
            held[key] = (store.redis.hgetall(key) if kind == "hash" else sorted(store.redis.smembers(key))
                         if kind == "set" else store.redis.get(key) if kind == "string"
                         else store.redis.zrange(key, 0, -1, withscores=True))
    return held


def told(store: Store) -> list[Any]:
    """What the install told: notices to event URLs, notes to helpdesks and the cases target, and held alerts."""
    return [*(entry for bucket in range(keys.BUCKETS) for entry in store.redis.xrange(keys.notices(bucket))),
            *store.alerts_held_before(2 ** 62, 100)]


def open_cases(world: World, store: Store, settings: Settings) -> dict[str, str]:
    """Answers on the survey page that open cases of every kind; return each customer's case id.

    late: open and past due; noted: contacted, with an owner and a lead's note; back: recovered by the customer's
    next, satisfied, answer; closed: closed by a lead, its new survey mailed; and one closed long ago that
    retention deleted (its numbers still count in the summary)."""
    now = now_ms()
    ids = {}
    for ticket, email, rating, at in (("T-1", LATE, 1, now - 60 * HOUR_MS), ("T-2", NOTED, 2, now),
                                      ("T-3", BACK, 1, now - HOUR_MS), ("T-4", CLOSED, 2, now)):
        sid = world.solved_and_answered(ticket, email, rating, "Nobody called back")
        assert deliver(store, settings, answer_data(sid, email, rating, False, at_ms=at, ticket=ticket)).status \
            == "delivered"
        ids[email] = keys.case_id(sid, email)
    update_case(store, settings, ids[NOTED], now_ms() + 1, "lead", note="Called, refund offered",
                owner="ola@acme.test", status="contacted")
    again = world.solved_and_answered("T-5", BACK, 5, "Sorted")
    assert deliver(store, settings, answer_data(again, BACK, 5, True, ticket="T-5")).status == "delivered"
    update_case(store, settings, ids[CLOSED], now_ms(), "lead", status="not_recovered", outcome="Lost them")
    mailed = len(world.smtp.messages)
    assert [outcome.status for outcome in send_all(store, settings)] == ["sent"]  # the closed case's new survey
    world.smtp.wait_for(mailed + 1)
    old = answer_data(RETIRED_SID, "old@example.no", 1, False, at_ms=now - 100 * DAY_MS)
    deliver(store, settings, old)
    update_case(store, settings, keys.case_id(RETIRED_SID, "old@example.no"), now - 90 * DAY_MS, "lead",
                note="Wrote back", status="recovered")
    assert store.retire_closed_cases(now - 30 * DAY_MS) == 1
    return ids


def test_every_recovery_case_moves_with_its_id_notes_and_status_and_the_summary_keeps_its_case_numbers(
        world, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    ids = open_cases(world, store, settings)
    cases = every_case(store)
    assert {case.status for case in cases.values()} == {"open", "contacted", "recovered", "not_recovered"}
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert "4 recovery cases" in exported.stdout, exported.stdout
    mailed = len(smtp.messages)

    _, other_settings, other = replayed(env, redis_server, path, 6)
    assert every_case(other) == cases  # each whole: notes, owner, times, outcome, rev, the new survey's mark
    now = now_ms()
    assert case_numbers(other, now) == case_numbers(store, now)
    assert case_numbers(store, now)["cases_overdue"] == 1 and case_numbers(store, now)["recovered_rate"] == 66.67
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    other_client = create_app(other_settings, other, enqueue=lambda *args: None).test_client()
    other_auth = {"Authorization": f"Bearer {other.create_key('lead')}"}
    for url in ("/api/v1/cases", "/api/v1/summary", *(f"/api/v1/cases/{cid}" for cid in ids.values())):
        assert other_client.get(url, headers=other_auth).json == client.get(url, headers=auth).json, url
    assert sign_in(other_client, other.create_key("desk")).status_code == 303
    page = other_client.get(f"/dashboard/cases/{ids[NOTED]}")  # the link alerts and notes carried
    assert page.status_code == 200 and "Called, refund offered" in page.get_data(as_text=True)
    # Restored, a case told nothing: no case.opened, no note on the ticket, no alert, and no second new survey.
    assert told(other) == []
    assert send_all(other, other_settings) == [] and len(smtp.messages) == mailed

    # A case is once per survey: the answer's notice finds the restored case and tells nothing again ...
    assert deliver(other, other_settings, answer_data(ids[LATE].split("-")[1], LATE, 1, False)).status == "delivered"
    assert every_case(other) == cases and told(other) == []
    # ... and a lead's next change is announced under the next rev, never one a receiver saw from the old install.
    update_case(other, other_settings, ids[LATE], now, "lead", status="contacted")
    assert [n.id for n in notices(other, LATE)] == [f"case.updated:{ids[LATE]}:{cases[ids[LATE]].rev + 1}"]


def test_replaying_the_cases_twice_changes_nothing_and_a_dry_run_counts_them(
        world, store, settings, env, redis_server, tmp_path: Path):
    open_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    dry = dry_replay(env, redis_server, path, 7)
    assert "  cases to restore         4\n" in dry and "  retired counts to carry  1\n" in dry, dry

    other_env, _, other = replayed(env, redis_server, path, 7)
    before = contents(other, "t:{c*")
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr
    assert "Restored 0 recovery cases, 0 unsubscribes and 0 suppressed addresses (5 already there)." in again.stdout
    assert contents(other, "t:{c*") == before
    now = now_ms()
    assert case_numbers(other, now) == case_numbers(store, now)


def opt_outs(world: World, store: Store, env: dict[str, str], client: Any) -> None:
    """An unsubscribe and a suppression in plain, and one of each whose customer was erased since (kept only by
    hash); then a solve of each customer's, applied but not yet swept, and one of a customer who may be mailed."""
    for n, email in enumerate((UNSUB, GONE_U)):
        world.solved_and_answered(f"U-{n}", email, 4)
        assert client.post(_unsubscribe_link(world.mail_to(email))).status_code == 200
    for n, email in enumerate((SUPP, GONE_S)):
        world.solved_and_answered(f"S-{n}", email, 4)
        assert tracker(env, "suppress", "add", email).returncode == 0
    for email in (GONE_U, GONE_S):
        assert tracker(env, "erase", email).returncode == 0
    for n, email in enumerate((UNSUB, GONE_U, SUPP, GONE_S, "new@example.no")):
        world.solve(f"N-{n}", email, seconds_ago=30)
    drain(store, world.settings)


def test_no_one_who_opted_out_is_mailed_by_the_install_a_replay_moved_them_to(
        world, store, settings, smtp, client, env, redis_server, tmp_path: Path, start_worker):
    opt_outs(world, store, env, client)
    listed = tracker(env, "suppress", "list")
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert "1 unsubscribe, 1 suppressed address and 4 opt-outs kept by hash" in exported.stdout, exported.stdout
    mailed = len(smtp.messages)

    # The workers and beat of the new install run while the file is replayed: every opt-out holds before the sweep.
    other_env, other_settings, other = other_db(redis_server, env, 8)
    dry = tracker(other_env, "replay", str(path), "--dry-run")  # the file's opt-outs count, though not yet written
    assert dry.returncode == 0 and "  surveys to schedule      1\n" in dry.stdout, dry.stdout + dry.stderr
    start_worker(beat=True, TRACKER_REDIS_URL=other_env["TRACKER_REDIS_URL"])
    replay = tracker(other_env, "replay", str(path))
    assert replay.returncode == 0, replay.stderr
    assert "Restored 0 recovery cases, 1 unsubscribe, 1 suppressed address and 4 opt-outs kept by hash" \
        in replay.stdout, replay.stdout
    smtp.wait_for(mailed + 1)
    wait_until(lambda: len([s for s in other.iter_customer_surveys() if s.status == "skipped"]) == 4,
               what="the surveys of the four who opted out skipped")
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages[mailed:]] == ["new@example.no"]
    for email, reason in ((UNSUB, "unsubscribed"), (GONE_U, "unsubscribed"), (SUPP, "suppressed"),
                          (GONE_S, "suppressed")):
        assert opt_out(other, other_settings, email) == opt_out(store, settings, email)  # what the sender reads
        assert [(s.status, s.reason) for s in other.customer_surveys(email) if s.ticket_id.startswith("N-")] \
            == [("skipped", reason)], email
    moved = tracker(other_env, "suppress", "list")
    assert (moved.stdout, moved.stderr) == (listed.stdout, listed.stderr)
    assert "1 erased address is suppressed too" in moved.stderr

    before = contents(other, "t:optout:*", keys.SUPPRESSED, "t:cust:*profile*")
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr
    assert "(6 already there)" in again.stdout, again.stdout
    assert contents(other, "t:optout:*", keys.SUPPRESSED, "t:cust:*profile*") == before


def test_an_opt_out_kept_by_hash_under_a_secret_key_the_new_install_lacks_is_refused_with_its_line(
        world, store, settings, env, client, redis_server, tmp_path: Path):
    opt_outs(world, store, env, client)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    lines = path.read_text().splitlines()
    hashed = [n for n, line in enumerate(lines, 1) if "digest" in json.loads(line)]
    assert len(hashed) == 4

    other_env, other_settings, other = other_db(redis_server, {**env, "TRACKER_SECRET_KEY": "another-key-" * 3}, 9)
    refused = tracker(other_env, "replay", str(path))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert [line.split(": ")[0] for line in refused.stderr.splitlines()] == [f"{path}:{n}" for n in hashed]
    assert "does not hold" in refused.stderr
    assert opt_out(other, other_settings, UNSUB).unsubscribed and opt_out(other, other_settings, SUPP).suppressed
    assert other.kept_opt_outs("suppressed", [])[0] == 0  # no hash that would never match

    with_old = {**other_env, "TRACKER_SECRET_KEY_PREVIOUS": env["TRACKER_SECRET_KEY"]}
    kept = tracker(with_old, "replay", str(path))
    assert kept.returncode == 0, kept.stderr
    rotated = load_settings(with_old)  # the new key, and the exporting install's as the previous one
    assert opt_out(other, rotated, GONE_U).unsubscribed and opt_out(other, rotated, GONE_S).suppressed


def test_a_bad_case_or_opt_out_line_is_reported_with_its_number_and_the_others_still_apply(
        world, store, settings, env, redis_server, tmp_path: Path):
    ids = open_cases(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    good = [line for line in lines if line["type"] == "case.recorded"]
    stolen = json.loads(json.dumps(good[0]))
    owner = good[0]["case"]["customer"]
    # The id names the customer's case bucket: a customer of another bucket cannot own it.
    stolen["case"]["customer"] = next(email for n in range(99) if keys.bucket_of(email := f"x{n}@example.no")
                                      != keys.bucket_of(owner))
    broken = {"type": "case.recorded", "case": {"id": "c1-not-a-case"}}
    both = {"type": "optout.suppressed", "email": "x@example.no", "digest": "0" * 64}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(line) for line in (stolen, broken, *good, both, "x")) + "\n{\n")

    other_env, _, other = other_db(redis_server, env, 10)
    result = tracker(other_env, "replay", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in errors] == [f"{bad}:{n}" for n in (1, 2, len(good) + 3,
                                                                             len(good) + 4, len(good) + 5)]
    assert "not a valid case.recorded line" in errors[0] and "customer's case about its survey" in errors[0]
    assert set(every_case(other)) == set(ids.values())


def test_a_webhook_carrying_a_case_or_an_opt_out_line_is_ignored_as_survey_sent_is(
        world, store, settings, env, post_event, tmp_path: Path):
    open_cases(world, store, settings)
    optout.unsubscribe(store, settings, LATE, now_ms())  # as the unsubscribe page does
    optout.suppress(store, settings, NOTED, now_ms())  # as `tracker suppress add` does
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    kinds = {}
    for line in map(json.loads, path.read_text().splitlines()):
        kinds.setdefault(line["type"], line)
    assert {"case.recorded", "cases.retired", "optout.unsubscribed", "optout.suppressed", "survey.sent"} <= set(kinds)
    length = store.lag().length
    for kind in ("case.recorded", "cases.retired", "optout.unsubscribed", "optout.suppressed", "survey.sent"):
        response = post_event("standard", kinds[kind])
        assert (response.status_code, response.json) == (200, {"status": "ignored"}), kind
    assert store.lag().length == length
