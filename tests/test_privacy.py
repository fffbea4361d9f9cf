"""Privacy beyond erasure: opt-outs that outlive it, the data-access export, retention, tokens kept out of logs."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import ROOT, World, drain, iso, solved_event, tracker, wait_until
from tracker.answers.record import record_answer
from tracker.cli.dev import free_port
from tracker.config import ConfigError, load_settings
from tracker.mail.smtp import SmtpSender
from tracker.model import COUNTS, SUMS
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.scores.rebuild import rebuild_scores
from tracker.scores.summary import Facets, summary
from tracker.store import keys
from tracker.surveys import due, optout

GONE = "gone@example.no"
DAY_MS = 86_400_000


def _values(store: Any, log: bool = True) -> str:
    """Return every key and value in Redis as one lower-cased text, to look for an address in."""
    chunks = []
    for key in store.redis.scan_iter(count=1000):
        if not log and key.startswith("t:{log"):
            continue
        kind = store.redis.type(key)
        chunks.append(key)
        if kind == "string":
            chunks.append(store.redis.get(key) or "")
        elif kind == "hash":
            chunks += [x for pair in store.redis.hgetall(key).items() for x in pair]
        elif kind == "set":
            chunks += list(store.redis.smembers(key))
        elif kind == "zset":
            chunks += store.redis.zrange(key, 0, -1)
        elif kind == "stream":
            chunks += [x for _, fields in store.redis.xrange(key) for pair in fields.items() for x in pair]
    return "\n".join(chunks).lower()


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


# --- opt-outs survive erasure -----------------------------------------------------------------------------

def _unsubscribe_link(message: Any) -> str:
    return message["List-Unsubscribe"].strip("<>").split("8000", 1)[1]


def test_an_unsubscribed_customer_who_is_erased_gets_no_survey_when_they_come_back(world, store, settings, client,
                                                                                  env):
    world.solved_and_answered("T-U1", GONE, 4, "fine")
    assert client.post(_unsubscribe_link(world.mail_to(GONE))).status_code == 200
    assert tracker(env, "erase", GONE).returncode == 0
    assert GONE not in _values(store)  # the plain address itself does not survive
    world.solve("T-U2", GONE)
    assert world.send() == ["skipped"]
    (survey,) = store.customer_surveys(GONE)
    assert survey.reason == "unsubscribed"


def test_a_suppressed_address_stays_suppressed_after_erasure_and_can_still_be_lifted(world, store, env):
    world.solved_and_answered("T-S1", GONE, 2)
    added = tracker(env, "suppress", "add", GONE.upper())
    assert added.returncode == 0, added.stderr
    kept = tracker(env, "suppress", "add", "kept@example.no")
    assert kept.returncode == 0
    assert tracker(env, "erase", GONE).returncode == 0
    assert GONE not in _values(store)
    listed = tracker(env, "suppress", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["kept@example.no"]  # plain addresses only, one a line
    assert "1 erased address is suppressed too" in listed.stderr
    world.solve("T-S2", GONE)
    assert world.send() == ["skipped"]
    assert store.customer_surveys(GONE)[0].reason == "suppressed"
    lifted = tracker(env, "suppress", "remove", GONE)
    assert lifted.returncode == 0, lifted.stderr
    assert "1 erased" not in tracker(env, "suppress", "list").stderr
    world.solve("T-S3", GONE, seconds_ago=30)
    assert world.send() == ["sent"]


def test_an_address_refused_by_the_mail_server_stays_suppressed_after_erasure(world, store, settings):
    optout.suppress(store, settings, GONE, int(time.time() * 1000))  # as a permanent bounce does
    erase_customer(store, settings, GONE)
    world.solve("T-B1", GONE)
    assert world.send() == ["skipped"]


# --- the data-access export -------------------------------------------------------------------------------

@pytest.fixture
def exported(world: World, store: Any, settings: Any, client: Any, post_event: Any) -> World:
    """A customer with a ticket, an order, an answer with a comment and a reason, and an unsubscribe."""
    world.solved_and_answered("T-X1", GONE, 1, "Nobody called back")
    sid = store.customer_surveys(GONE)[0].sid
    record_answer(store, settings, store.survey(sid), 1, "Nobody called back", int(time.time() * 1000), reason="slow")
    world.order("O-X1", GONE, "149.50")
    drain(store, settings)
    client.post(_unsubscribe_link(world.mail_to(GONE)))
    return world


def _check_export(body: dict[str, Any]) -> None:
    assert body["customer"] == GONE
    assert body["profile"]["name"] == "Gone"
    assert {"source": "standard", "id": "c-gone"} in body["profile"]["aliases"]
    (ticket,) = body["tickets"]
    assert (ticket["ticket"], ticket["status"], ticket["subject"]) == ("standard:T-X1", "solved", "Card declined")
    assert ticket["agent"]["name"] == "Ola" and ticket["history"][-1]["status"] == "solved"
    (order,) = body["orders"]
    assert (order["order"], order["total"], order["currency"]) == ("standard:O-X1", "149.50", "NOK")
    (survey,) = body["surveys"]
    assert survey["status"] == "answered" and survey["sent_at"].endswith("Z")
    (answer,) = body["answers"]
    assert (answer["rating"], answer["comment"], answer["reason"]) == (1, "Nobody called back", "slow")
    assert {entry["kind"] for entry in body["timeline"]} >= {"ticket.solved", "order.created"}
    assert body["opt_out"]["unsubscribed"] is True and body["opt_out"]["suppressed"] is False


def test_export_prints_everything_held_about_a_customer_as_json(exported, env):
    result = tracker(env, "export", GONE.upper())
    assert result.returncode == 0, result.stderr
    _check_export(json.loads(result.stdout))
    unknown = tracker(env, "export", "nobody@example.no")
    assert unknown.returncode == 1 and "no customer 'nobody@example.no' is known" in unknown.stderr
    typo = tracker(env, "export", "not-an-email")
    assert typo.returncode == 1 and "is not an email address" in typo.stderr


def test_the_api_export_returns_the_same_to_an_admin_key_only(exported, client, store, env):
    admin = {"Authorization": f"Bearer {store.create_key('dpo')}"}
    reader = {"Authorization": f"Bearer {store.create_key('lead', ('read',))}"}
    response = client.get(f"/api/v1/customers/{GONE}/export", headers=admin)
    assert response.status_code == 200, response.json
    _check_export(response.json)
    assert response.json == json.loads(tracker(env, "export", GONE).stdout)
    assert client.get(f"/api/v1/customers/{GONE}/export", headers=reader).status_code == 403
    missing = client.get("/api/v1/customers/nobody@example.no/export", headers=admin)
    assert missing.status_code == 404 and missing.json["message"]
    assert "/api/v1/customers/{email}/export" in client.get("/api/openapi.json").json["paths"]


# --- retention --------------------------------------------------------------------------------------------

def test_retention_days_is_read_from_the_environment_and_checked(env):
    assert load_settings(env).retention_days is None
    assert load_settings({**env, "TRACKER_RETENTION_DAYS": "30"}).retention_days == 30
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ConfigError, match="TRACKER_RETENTION_DAYS"):
            load_settings({**env, "TRACKER_RETENTION_DAYS": bad})


def _answered_long_ago(world: World, store: Any, settings: Any, ticket: str, email: str, rating: int,
                       days_ago: int, comment: str = "") -> None:
    """Solve, survey and answer a ticket days_ago, through the real send and answer paths."""
    then = int(time.time() * 1000) - days_ago * DAY_MS
    body = solved_event(ticket=ticket, email_address=email, at=iso(days_ago * 86400 + 120))
    body["customer"] = {"id": f"c-{email.split('@')[0]}", "email": email, "name": "Old"}
    world.event(body)
    # Applied with a long expiry: a solve this old is otherwise skipped as too old to survey.
    drain(store, load_settings({**world.env, "TRACKER_SURVEY_EXPIRY_DAYS": str(days_ago + 20)}))
    claimed, members = due.sweep(store, then)
    with SmtpSender(settings.smtp_url) as sender:
        assert [due.send_due(store, settings, sender, m, claimed, then).status for m in members] == ["sent"]
    world.answer_at(email, rating, then + 60_000, comment)


def _aggregates(store: Any) -> dict[tuple[str, str], Any]:
    return {(kind, ident): store.aggregate(kind, ident) for kind in keys.AGGREGATE_KINDS for ident in store.ids(kind)}


def _same(left: dict[tuple[str, str], Any], right: dict[tuple[str, str], Any]) -> None:
    assert left.keys() == right.keys()
    for ident, agg in left.items():
        for field in (*COUNTS, *SUMS):
            assert math.isclose(getattr(agg, field), getattr(right[ident], field), rel_tol=1e-9, abs_tol=1e-9), \
                (ident, field)
        assert {d: nv for d, nv in agg.days.items() if nv != (0, 0)} == \
               {d: nv for d, nv in right[ident].days.items() if nv != (0, 0)}, ident


@pytest.fixture
def aged(world: World, store: Any, env: dict[str, str]) -> dict[str, Any]:
    """Two answers 40 days old (one customer has nothing newer) and one answered today."""
    settings = load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "0", "TRACKER_RETENTION_DAYS": "30"})
    _answered_long_ago(world, store, settings, "T-OLD-1", "old@example.no", 1, 40, "Ancient complaint")
    _answered_long_ago(world, store, settings, "T-OLD-2", "both@example.no", 2, 40, "Old but not forgotten")
    world.solved_and_answered("T-NEW-1", "both@example.no", 5, "Fresh praise")
    return {"settings": settings, "before": _aggregates(store)}


def test_retention_deletes_old_answers_surveys_and_tickets_but_every_aggregate_keeps_its_numbers(aged, store, env):
    settings = aged["settings"]
    removed = retire_old_records(store, settings, int(time.time() * 1000))
    # The old tickets went when their surveys could no longer be answered (ticket state expires then);
    # retention finds them gone and only forgets them in their customers' ticket lists.
    assert (removed.surveys, removed.answers, removed.tickets) == (2, 2, 0)
    assert store.redis.zrange(keys.customer("old@example.no", "tickets"), 0, -1) == []
    text = _values(store, log=False)  # the log keeps what was appended since the cutoff (this test's events)
    assert "ancient complaint" not in text and "old but not forgotten" not in text and "t-old-1" not in text
    assert "fresh praise" in text and "t-new-1" in text
    _same(_aggregates(store), aged["before"])
    again = retire_old_records(store, settings, int(time.time() * 1000))
    assert (again.surveys, again.answers, again.tickets) == (0, 0, 0)
    # A rebuild counts the retired answers too, so the numbers stay what they were.
    assert rebuild_scores(store, settings) == 1
    _same(_aggregates(store), aged["before"])
    score = tracker({**env, "TRACKER_RETENTION_DAYS": "30"}, "score", "old@example.no")
    assert score.returncode == 0 and "1 of 1 surveys sent" in score.stdout


def test_an_open_range_still_starts_at_the_first_activity_after_retention_deleted_it(aged, store):
    # The aggregates keep what retention deletes; an open range (the summary's default, "all time") kept starting at
    # the oldest answer still stored, and so lost the retired days' numbers.
    settings, now = aged["settings"], int(time.time() * 1000)

    def everything() -> Any:
        return summary(store, settings, now, date_from=None, date_to=None, filters=Facets())

    before = everything()
    assert retire_old_records(store, settings, now).answers == 2
    after = everything()
    assert after.date_from == before.date_from
    assert (after.card.responses, after.card.surveys_sent, after.card.score, after.distribution) == \
        (before.card.responses, before.card.surveys_sent, before.card.score, before.distribution) != (1, 1, None, {})
    assert {k: v.responses for k, v in after.by_source.items()} == {k: v.responses for k, v in before.by_source.items()}


def test_retention_trims_the_event_log_but_never_an_entry_not_yet_applied(store, settings, post_event):
    later = int(time.time() * 1000) + DAY_MS
    assert post_event("standard", solved_event(ticket="T-LOG-1", at=iso(60))).status_code == 202
    assert store.trim_log(later) == 0  # appended but not applied yet
    drain(store, settings)
    assert post_event("standard", solved_event(ticket="T-LOG-2", at=iso(30))).status_code == 202
    assert store.trim_log(later) == 1  # the applied one goes, the waiting one stays
    assert drain(store, settings) == 1


def test_retention_is_off_unless_set(aged, store, env):
    kept = retire_old_records(store, load_settings(env), int(time.time() * 1000))
    assert (kept.surveys, kept.answers, kept.tickets) == (0, 0, 0)
    assert "ancient complaint" in _values(store)


def test_erasing_a_customer_after_retention_leaves_no_trace_and_a_rebuild_agrees(aged, store):
    settings = aged["settings"]
    retire_old_records(store, settings, int(time.time() * 1000))
    erase_customer(store, settings, "old@example.no")
    assert "old@example.no" not in _values(store)
    live = _aggregates(store)
    rebuild_scores(store, settings)
    _same(_aggregates(store), live)


def test_a_worker_runs_retention_on_beat_s_schedule(aged, store, env, start_worker):
    from workers.celery_app import create_celery

    retained = {**env, "TRACKER_RETENTION_DAYS": "30"}
    assert "retire-old-records" in create_celery(load_settings(retained)).conf.beat_schedule
    assert "retire-old-records" not in create_celery(load_settings(env)).conf.beat_schedule
    start_worker(**{"TRACKER_RETENTION_DAYS": "30"})
    create_celery(load_settings(retained)).send_task("tracker.retire_old_records")
    wait_until(lambda: "ancient complaint" not in _values(store), what="the retention task")
    _same(_aggregates(store), aged["before"])


# --- tokens stay out of the access log --------------------------------------------------------------------

def test_the_access_log_of_tracker_web_shows_no_survey_token_or_address(env: dict[str, str], tmp_path: Path):
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log_file:
        web = subprocess.Popen([sys.executable, "-m", "tracker", "web"], cwd=ROOT, stdout=log_file,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, **env, "TRACKER_BIND": f"127.0.0.1:{port}",
                                    "TRACKER_WEB_WORKERS": "1"})
    base = f"http://127.0.0.1:{port}"
    secrets = ("aaaatoken1-bbbbsig1", "ccccunsub2-ddddsig2", "eeeereason3-ffffsig3", "ggggquery4", "hhhhreply5")
    paths = [f"/s/{secrets[0]}?rating=5", f"/u/{secrets[1]}", f"/s/{secrets[2]}/reason",
             f"/inbound/postmark?token={secrets[3]}", f"/api/v1/customers/reply+{secrets[4]}@reply.acme.test",
             "/readyz"]
    try:
        def up() -> bool:
            try:
                return requests.get(base + "/healthz", timeout=5).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout=60, what="tracker web")
        for path in paths:
            requests.get(base + path, timeout=5)
        wait_until(lambda: '"GET /readyz"' in log_path.read_text(), what="the access log lines")
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    log = log_path.read_text()
    assert not [s for s in secrets if s in log], log
    assert '"GET /s/<token>"' in log and '"GET /u/<token>"' in log and '"GET /s/<token>/reason"' in log, log
