"""`tracker export-log` then `tracker replay` into an empty Redis gives every survey back as it was stored: failed
surveys stay failed and unmailed, a closed case's second survey keeps its id and its mailed link, and every answer
keeps its reason, extra answers, how it arrived and its customer's name and id. `--dry-run` counts what the real run
would mail and writes nothing. (Recovery cases and opt-outs: tests/test_export_log_cases.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, send_all, survey_link, tracker
from tests.test_cases import answer_data, deliver
from tests.test_migrations import answered_event, dry_replay, other_db, replayed, scores
from tracker.answers.by_email import InboundReply, handle_reply
from tracker.cases.work import update_case
from tracker.config import Settings
from tracker.ingest.apply import apply_entries
from tracker.store import Store, keys
from tracker.store.log import entry_key
from tracker.surveys.tokens import make_token
from tracker.web.app import create_app

SURVEYS = """
[[surveys]]
brand = "acme"

[[surveys.extra_questions]]
id = "first_contact"
type = "choice"
question = "Was this your first contact?"
choices = ["yes", "no"]
"""
KARI, PER, ZOE, IMP = "kari@corp.example", "per@gmail.com", "zoe@zcorp.example", "imp@corp.example"
LISTS = ("summary", "customers", "agents", "teams", "sources", "brands", "channels", "tags", "organisations")


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any, tmp_path: Path) -> dict[str, str]:
    """The usual environment, with a surveys file whose acme surveys ask one extra question, and re-surveys on."""
    path = tmp_path / "surveys.toml"
    path.write_text(SURVEYS)
    return session_env(redis_url, broker_url, smtp, TRACKER_SURVEYS_FILE=str(path), TRACKER_CASE_RESURVEY="1",
                       TRACKER_SURVEY_THROTTLE_DAYS="0")


def now_ms() -> int:
    return int(time.time() * 1000)


def build(world: World, store: Store, settings: Settings, smtp: Any, client: Any) -> str:
    """Answers on the page (with reason and extra answers), by e-mail and imported, a failed survey and a closed
    case's second survey, sent and unanswered; return the path of the link mailed for that second survey."""
    world.solve("T-1", KARI)
    assert world.send() == ["sent"]
    path = survey_link(smtp.wait_for(1)[-1], 2)
    assert client.post(path, data={"rating": "2"}).status_code == 200
    assert client.post(f"{path}/reason", data={"reason": "slow", "comment": "Waited"}).status_code == 200
    assert client.post(f"{path}/extra", data={"extra-first_contact": "yes"}).status_code == 200
    sid = path.split("/")[2].split("-")[0]

    smtp.refuse, smtp.refuse_code = 1, "554 5.7.1 Message refused"
    world.solve("T-2", PER)
    assert world.send() == ["failed"]
    [failed] = store.customer_surveys(PER)
    assert (failed.status, failed.reason) == ("failed", "undeliverable") and not store.is_suppressed(PER)

    world.solve("T-3", ZOE, channel="chat", tags=["login"], resolved_by="bot")
    assert world.send() == ["sent"]
    [zoe] = store.customer_surveys(ZOE)
    reply = InboundReply(recipients=(f"reply+{make_token(settings.secret_key, zoe.sid)}@replies.example.com",),
                         sender=ZOE, subject="Re: survey", text="4\n")
    assert handle_reply(store, settings, reply, now_ms()) == "answered"

    imported = answered_event("X-9", 1, "2026-11-20T10:00:00Z", "ans-x9", email=IMP, comment="elsewhere")
    imported["customer"] = {"email": IMP, "id": "imp-7", "name": "Imp", "organisation": "Imp AS"}
    imported["ticket"] |= {"tags": ["legacy"], "channel": "phone", "resolved_by": "human"}
    world.event(imported)
    world.send()

    deliver(store, settings, answer_data(sid, KARI, 2, False))  # opens the case, as the event stream's target does
    update_case(store, settings, keys.case_id(sid, KARI), now_ms(), "lead", status="not_recovered")
    mails = len(smtp.messages)
    assert [outcome.status for outcome in send_all(store, settings)] == ["sent"]
    return survey_link(smtp.wait_for(mails + 1)[-1], 4)


def api(client: Any, store: Store, emails: list[str]) -> dict[str, Any]:
    """What leads read over the API: every list and the summary, each customer's card and answers."""
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    read = {name: client.get(f"/api/v1/{name}", headers=auth).json for name in LISTS}
    for email in emails:
        read[email] = client.get(f"/api/v1/customers/{email}", headers=auth).json
        read[f"{email} responses"] = client.get(f"/api/v1/customers/{email}/responses", headers=auth).json
    return read


def test_export_log_and_replay_keep_failed_surveys_second_surveys_and_every_answers_details(
        post_event, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    world = World(post_event, store, env, smtp, client)
    second_link = build(world, store, settings, smtp, client)
    mailed = len(smtp.messages)
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert "1 failed survey" in exported.stdout and "3 answers" in exported.stdout
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    [fail] = [line for line in lines if line["type"] == "survey.skipped" and line["customer"]["email"] == PER]
    assert fail["restore"]["status"] == "failed" and "refused" in fail["restore"]["error"]

    _, other_settings, other = replayed(env, redis_server, path, 3)
    assert len(smtp.messages) == mailed  # nobody mailed: not the customer whose survey failed, nor anyone else
    now = now_ms()
    assert scores(other, other_settings, now) == scores(store, settings, now)
    emails = [KARI, PER, ZOE, IMP]
    other_client = create_app(other_settings, other, enqueue=lambda *args: None).test_client()
    original, restored = api(client, store, emails), api(other_client, other, emails)
    for name in original:
        assert restored[name] == original[name], name
    assert original[PER]["surveys_sent"] == 0 and original[KARI]["surveys_sent"] == 2
    [kari] = original[f"{KARI} responses"]["responses"]
    assert (kari["reason"], kari["comment"], kari["extra"]) == ("slow", "Waited", {"first_contact": "yes"})
    [zoe] = original[f"{ZOE} responses"]["responses"]
    assert (zoe["answered_via"], zoe["channel"], zoe["tags"], zoe["resolved_by"]) == ("email", "chat", ["login"], "bot")
    [imp] = original[f"{IMP} responses"]["responses"]
    assert original[IMP]["name"] == "Imp" and (imp["tags"], imp["organisation"]) == (["legacy"], "Imp AS")
    # The customer known only through the imported answer keeps their id in its source: later events naming only
    # that id still find them.
    assert other.profile(IMP).aliases == store.profile(IMP).aliases == (("standard", "imp-7"),)
    [per] = other.customer_surveys(PER)
    assert (per.status, per.reason, per.error) == ("failed", "undeliverable", store.customer_surveys(PER)[0].error)
    assert other.stats().get("failed:undeliverable") == store.stats().get("failed:undeliverable") == 1
    # The second survey of kari's ticket kept its id: the link mailed before the move still opens it, and counts.
    assert other_client.get(f"{second_link}?rating=4").status_code == 200
    assert other_client.post(second_link, data={"rating": "4"}).status_code == 200
    assert [a.rating for a in other.customer_responses(KARI)] == [4, 2]


def test_replay_dry_run_counts_only_the_surveys_the_real_run_mails_and_writes_nothing(
        post_event, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    world = World(post_event, store, env, smtp, client)
    build(world, store, settings, smtp, client)
    world.solve("T-9", "new@example.no")  # solved, its survey not sent yet: the new install sends it
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    mailed = len(smtp.messages)

    dry = dry_replay(env, redis_server, path, 4)
    assert "surveys to schedule      1" in dry, dry

    replayed(env, redis_server, path, 4)
    assert [m["To"].addresses[0].addr_spec for m in smtp.wait_for(mailed + 1)[mailed:]] == ["new@example.no"]


def test_replayed_by_workers_as_it_is_appended_a_solve_the_file_settles_is_never_mailed_nor_told_again(
        post_event, store, settings, smtp, client, env, redis_server, tmp_path: Path):
    # Workers apply a replay while it is appended, and the sweep runs meanwhile: export-log writes the surveys'
    # outcomes after the events, so a solve used to be applied (and its survey mailed again) before the line that
    # says its survey went out. Here each entry is applied in the order it was appended, the sweep after each.
    world = World(post_event, store, env, smtp, client)
    for n in range(3):
        world.solve(f"R-{n}", f"r{n}@example.no")
    assert world.send() == ["sent"] * 3
    world.event(answered_event("R-0", 1, "2026-12-01T10:00:00Z", "ans-r0", email="r0@example.no", comment="Slow"))
    world.send()
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    mailed = len(smtp.messages)

    other_env, other_settings, other = other_db(redis_server, env, 5)
    assert tracker(other_env, "replay", str(path)).returncode == 0
    appended = sorted(((entry_key(entry_id), shard, entry_id, payload) for shard in range(keys.BUCKETS)
                       for entry_id, payload in other.read_log(shard, "0-0", 1000)))
    assert len(appended) > 3
    for _, shard, entry_id, payload in appended:
        apply_entries(other, other_settings, shard, [(entry_id, payload)])
        assert "sent" not in [outcome.status for outcome in send_all(other, other_settings)], payload
    assert len(smtp.messages) == mailed
    at = now_ms()
    assert scores(other, other_settings, at) == scores(store, settings, at)
    # What the history told (survey.sent and .answered to event URLs, notes on tickets, alerts, cases) the install
    # it came from told already: replayed, it tells nothing again.
    told = [entry for bucket in range(keys.BUCKETS) for entry in other.redis.xrange(keys.notices(bucket))]
    assert told == []
