"""`tracker export-log` then `tracker replay` into an empty Redis carries each unanswered survey's reminder still due:
the new install's sweep sends it at the time it was due (one already past due goes at the next sweep, as the old
install would have sent it), once, with the first mail's links; a survey reminded already, or answered, gets none.
Replaying twice changes nothing, a dry run counts the reminders and writes nothing, and a bad reminder is reported
with its line number."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, drain, links, tracker
from tests.test_export_log_cases import contents
from tests.test_migrations import dry_replay, other_db, replayed
from tracker.config import Settings, load_settings
from tracker.mail.smtp import SmtpSender
from tracker.store import Store, keys
from tracker.store.reminders import reminder_member
from tracker.surveys import due as surveys

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
DUE, OVERDUE, REMINDED, ANSWERED = "due@example.no", "overdue@example.no", "reminded@example.no", "answered@example.no"


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any) -> dict[str, str]:
    """The usual environment, with one reminder three days after a survey is sent."""
    return session_env(redis_url, broker_url, smtp, TRACKER_REMINDER_DAYS="3")


def send_at(store: Store, settings: Settings, at_ms: int) -> list[surveys.Outcome]:
    """Apply the log, then let the sweep send what is due at at_ms."""
    drain(store, settings)
    claimed, members = surveys.sweep(store, at_ms)
    with SmtpSender(settings.smtp_url) as sender:
        return [surveys.send_due(store, settings, sender, member, claimed, at_ms) for member in members]


def mails_to(smtp: Any, email: str) -> list[Any]:
    return [mail for mail in smtp.messages if mail["To"].addresses[0].addr_spec == email]


def is_reminder_of(reminder: Any, first: Any) -> bool:
    """Say whether a mail is the reminder of a survey's first mail: threaded under it, with the same links."""
    def rating_links(mail: Any) -> dict[int, str]:
        return links(mail.get_body(("plain",)).get_content())

    return str(reminder["In-Reply-To"]) == str(first["Message-ID"]) and first["In-Reply-To"] is None \
        and rating_links(reminder) == rating_links(first) != {}


def surveys_with_reminders(world: World, store: Store, settings: Settings, client: Any) -> dict[str, int]:
    """Four customers' surveys: one whose reminder is due in three days, one whose reminder fell due an hour ago and
    was not yet swept, one reminded already and one answered. Return when each one's reminder was due (ms)."""
    now = int(time.time() * 1000)
    world.solve("T-R", REMINDED, seconds_ago=(4 * DAY_MS + HOUR_MS) / 1000)
    world.solve("T-O", OVERDUE, seconds_ago=(3 * DAY_MS + 2 * HOUR_MS) / 1000)
    world.solve("T-A", ANSWERED, seconds_ago=5 * HOUR_MS / 1000)
    world.solve("T-D", DUE, seconds_ago=3 * HOUR_MS / 1000)
    sent = {REMINDED: now - 4 * DAY_MS, OVERDUE: now - 3 * DAY_MS - HOUR_MS, ANSWERED: now - 4 * HOUR_MS,
            DUE: now - 2 * HOUR_MS}
    assert [o.status for o in send_at(store, settings, sent[REMINDED])] == ["sent"]
    assert [o.status for o in send_at(store, settings, sent[OVERDUE])] == ["sent"]
    assert send_at(store, settings, sent[REMINDED] + 3 * DAY_MS) == [surveys.Outcome("reminded")]
    assert [o.status for o in send_at(store, settings, sent[ANSWERED])] == ["sent"]
    world.smtp.wait_for(4)
    world.answer(ANSWERED, 4)
    assert [o.status for o in send_at(store, settings, sent[DUE])] == ["sent"]
    world.smtp.wait_for(5)
    return {email: at + 3 * DAY_MS for email, at in sent.items()}


def export(env: dict[str, str], path: Path) -> str:
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    return exported.stdout


def sent_lines(path: Path) -> dict[str, dict[str, Any]]:
    """The file's survey.sent lines, by customer."""
    return {line["customer"]["email"]: line for line in map(json.loads, path.read_text().splitlines())
            if line["type"] == "survey.sent"}


def test_a_reminder_still_due_is_sent_by_the_new_install_at_its_time_once_and_no_other(
        world, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    due = surveys_with_reminders(world, store, settings, client)
    path = tmp_path / "export.jsonl"
    assert "Wrote 2 reminders still due (with their surveys)" in export(env, path)
    lines = sent_lines(path)
    assert sorted(lines) == [DUE, OVERDUE, REMINDED]
    assert "reminder_at" not in lines[REMINDED]["restore"]  # reminded already: never again
    assert lines[DUE]["restore"]["reminder_at"] < lines[DUE]["restore"]["expires_at"]
    mailed = len(smtp.messages)

    # The replay's first sweep sends the reminder that fell due before the move, as the old install's next one would.
    _, other_settings, other = replayed(env, redis_server, path, 3)
    [overdue] = smtp.messages[mailed:]
    assert overdue["To"].addresses[0].addr_spec == OVERDUE and is_reminder_of(overdue, mails_to(smtp, OVERDUE)[0])
    assert other.survey(other.customer_surveys(OVERDUE)[0].sid).reminded_at_ms is not None

    # The other one is due where it was due, and goes then, once.
    sid = other.customer_surveys(DUE)[0].sid
    assert other.reminder_due_at(sid) == store.reminder_due_at(sid) == due[DUE]
    assert send_at(other, other_settings, due[DUE] - 1) == []
    assert send_at(other, other_settings, due[DUE]) == [surveys.Outcome("reminded")]
    smtp.wait_for(mailed + 2)
    first, reminder = mails_to(smtp, DUE)
    assert is_reminder_of(reminder, first)
    assert send_at(other, other_settings, due[DUE] + DAY_MS) == []
    assert [len(mails_to(smtp, email)) for email in (DUE, OVERDUE, REMINDED, ANSWERED)] == [2, 2, 2, 1]
    assert other.redis.zrange(keys.survey_due(keys.bucket_of(sid)), 0, -1) == []


def test_replaying_the_reminders_twice_changes_nothing_and_a_dry_run_counts_them_and_writes_nothing(
        world, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    surveys_with_reminders(world, store, settings, client)
    path = tmp_path / "export.jsonl"
    export(env, path)
    dry = dry_replay(env, redis_server, path, 4)
    assert "  reminders to schedule    2 (with their surveys)\n" in dry, dry

    other_env, other_settings, other = other_db(redis_server, env, 4)
    replay = tracker(other_env, "replay", str(path))
    assert replay.returncode == 0 and "Scheduled with their surveys: 2 reminders still due." in replay.stdout
    drain(other, other_settings)
    before = contents(other, "t:{s*}:due", "t:{s*}:survey:*")
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0 and "Appended 0 events" in again.stdout and "Scheduled" not in again.stdout
    drain(other, other_settings)
    assert contents(other, "t:{s*}:due", "t:{s*}:survey:*") == before
    assert sum(len(due) for key, due in before.items() if key.endswith(":due")) == 2
    mailed = len(smtp.messages)
    assert World(None, other, other_env, None, None).send() == ["reminded"]  # the overdue one, once
    assert World(None, other, other_env, None, None).send() == []
    assert len(smtp.wait_for(mailed + 1)) == mailed + 1


def test_a_bad_reminder_is_reported_with_its_line_number_and_the_others_still_apply(
        world, store, settings, client, env, redis_server, tmp_path: Path):
    surveys_with_reminders(world, store, settings, client)
    path = tmp_path / "export.jsonl"
    export(env, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    sent = next(n for n, line in enumerate(lines) if line["type"] == "survey.sent"
                and line["customer"]["email"] == DUE)
    answered = next(n for n, line in enumerate(lines) if line["type"] == "survey.answered")
    lines[sent]["restore"]["reminder_at"] = "in three days"
    lines[answered]["restore"]["reminder_at"] = lines[answered]["restore"]["sent_at"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    other_env, other_settings, other = other_db(redis_server, env, 5)
    result = tracker(other_env, "replay", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in errors] == [f"{bad}:{n + 1}" for n in sorted((sent, answered))], errors
    by_line = dict(line.split(": ", 1) for line in errors)
    assert "reminder_at" in by_line[f"{bad}:{sent + 1}"] and "Not a valid datetime" in by_line[f"{bad}:{sent + 1}"]
    assert "belongs to survey.sent lines only" in by_line[f"{bad}:{answered + 1}"]
    drain(other, other_settings)
    assert other.customer_surveys(DUE) == [] and other.customer_surveys(ANSWERED) == []
    overdue = other.customer_surveys(OVERDUE)[0].sid
    assert other.reminder_due_at(overdue) == store.reminder_due_at(overdue)


def test_settings_without_reminders_drop_a_carried_one_as_the_old_install_would(
        world, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    due = surveys_with_reminders(world, store, settings, client)
    path = tmp_path / "export.jsonl"
    export(env, path)
    off = {**env, "TRACKER_REMINDER_DAYS": "0"}
    other_env, _, other = replayed(off, redis_server, path, 6)
    mailed = len(smtp.messages)
    assert send_at(other, load_settings(other_env), due[DUE]) == [surveys.Outcome("none", "reminders_off")]
    assert len(smtp.messages) == mailed
    sid = other.customer_surveys(DUE)[0].sid
    assert other.redis.zscore(keys.survey_due(keys.bucket_of(sid)), reminder_member(sid)) is None
