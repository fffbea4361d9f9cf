"""The `tracker` command as an operator types it: real processes against the test's Redis."""

from __future__ import annotations

import json

import pytest

from tests.support import drain, send_all, solved_event, survey_link, tracker
from tracker.ingest import apply as ingest


def test_api_key_create_prints_the_key_alone_on_the_last_line_and_it_works(env, client):
    created = tracker(env, "api-key", "create", "--name", "ops")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("trk_") and " " not in key
    assert client.get("/api/v1/customers/x@example.no", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    listed = tracker(env, "api-key", "list")
    assert "ops" in listed.stdout and key not in listed.stdout
    again = tracker(env, "api-key", "create", "--name", "ops")
    assert again.returncode == 1 and "exists already" in again.stderr and "Traceback" not in again.stderr
    assert tracker(env, "api-key", "revoke", "ops").returncode == 0
    assert client.get("/api/v1/customers/x@example.no", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    missing = tracker(env, "api-key", "revoke", "ops")
    assert missing.returncode == 1 and "no API key named 'ops'" in missing.stderr


@pytest.mark.parametrize(("change", "named"), [
    ({"TRACKER_REDIS_URL": ""}, "TRACKER_REDIS_URL"),
    ({"TRACKER_SECRET_KEY": ""}, "TRACKER_SECRET_KEY"),
    ({"TRACKER_SURVEY_DELAY": "soon"}, "TRACKER_SURVEY_DELAY"),
    ({"TRACKER_SMTP_URL": "http://mail"}, "TRACKER_SMTP_URL"),
    ({"TRACKER_SURVEY_SCALE": "stars"}, "TRACKER_SURVEY_SCALE"),
])
@pytest.mark.parametrize("command", [["web"], ["worker"], ["beat"], ["score", "a@b.c"], ["rebuild-scores"]])
def test_a_bad_setting_stops_every_command_with_one_line_naming_it(env, change, named, command):
    result = tracker({**env, **change}, *command)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr


def test_an_unknown_command_or_option_gets_usage_not_a_traceback(env):
    for args in (["frobnicate"], ["score"], ["score", "a@b.c", "--bogus"], ["api-key"]):
        result = tracker(env, *args)
        assert result.returncode == 2 and "usage:" in result.stderr and "Traceback" not in result.stderr


def test_a_read_only_key_reads_but_cannot_erase(env, client, store):
    created = tracker(env, "api-key", "create", "--name", "viewer", "--scope", "read")
    key = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/customers/x@example.no", headers=auth).status_code == 404
    assert client.delete("/api/v1/customers/x@example.no", headers=auth).status_code == 403
    assert "scopes read" in tracker(env, "api-key", "list").stdout


def test_redis_unreachable_is_one_clear_line(env):
    result = tracker({**env, "TRACKER_REDIS_URL": "redis://127.0.0.1:1/0"}, "api-key", "list")
    assert result.returncode == 3 and "cannot reach Redis" in result.stderr and "Traceback" not in result.stderr


def test_score_prints_the_card_and_rebuild_scores_keeps_the_numbers(env, post_event, store, settings, smtp, client):

    assert post_event("standard", solved_event(ticket="C-1", at="2026-11-22T10:00:00Z")).status_code == 202
    drain(store, settings)
    send_all(store, settings)
    client.post(survey_link(smtp.wait_for(1)[0], 4), data={"rating": "4"})
    before = json.loads(tracker(env, "score", "kari@example.no", "--json").stdout)
    assert before["responses"] == 1 and before["average"] == 75.0
    text = tracker(env, "score", "Kari@Example.no").stdout
    assert "kari@example.no (Kari)" in text and "75.0" in text
    rebuilt = tracker(env, "rebuild-scores")
    assert rebuilt.returncode == 0 and "1 stored responses" in rebuilt.stdout
    after = json.loads(tracker(env, "score", "kari@example.no", "--json").stdout)
    assert after == before
    unknown = tracker(env, "score", "nobody@example.no")
    assert unknown.returncode == 1 and "no customer" in unknown.stderr


def test_replay_ingests_a_json_lines_file_once_and_reports_bad_lines(env, tmp_path, store, settings):
    lines = [json.dumps(solved_event(ticket=f"R-{n}", email_address=f"r{n}@example.no")) for n in range(3)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*lines, "not json", json.dumps({"type": "ticket.solved"}), ""]))
    first = tracker(env, "replay", str(path))
    assert first.returncode == 1
    assert "Appended 3 events" in first.stdout and "rejected 2 lines" in first.stdout
    assert f"{path}:4: not valid JSON" in first.stderr and f"{path}:5: not a valid event" in first.stderr
    second = tracker(env, "replay", str(path))
    assert "Appended 0 events" in second.stdout and "skipped 3 already there" in second.stdout
    assert ingest.drain(store, settings, "test")[0] == 3
    assert store.ticket("standard:R-2")["customer"] == "r2@example.no"
    missing = tracker(env, "replay", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_the_suppression_list_stops_surveys_until_the_address_is_removed(env, post_event, store, settings, smtp):

    assert tracker(env, "suppress", "add", "Kari@Example.no").returncode == 0
    assert tracker(env, "suppress", "list").stdout.split() == ["kari@example.no"]
    assert post_event("standard", solved_event(ticket="S-1", at="2026-11-22T10:00:00Z")).status_code == 202
    drain(store, settings)
    assert [o.reason for o in send_all(store, settings)] == ["suppressed"]
    assert tracker(env, "suppress", "remove", "kari@example.no").returncode == 0
    assert post_event("standard", solved_event(ticket="S-2", at="2026-11-22T11:00:00Z")).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    again = tracker(env, "suppress", "remove", "kari@example.no")
    assert again.returncode == 1 and "not on the suppression list" in again.stderr
