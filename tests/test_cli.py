"""The `tracker` command as an operator types it: real processes against the test's Redis."""

from __future__ import annotations

import argparse
import json
import os
import re
import shelve
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from importlib import metadata

import pytest

from tests.conftest import Process
from tests.signing import SECRETS
from tests.support import drain, iso, send_all, solved_event, survey_link, tracker, wait_until
from tracker.cli.beat import schedule_path
from tracker.cli.commands import build_parser
from tracker.cli.dev import free_port
from tracker.ingest import apply as ingest
from tracker.store.expiry import filing_sample


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


MALFORMED = [
    ({"TRACKER_REDIS_URL": ""}, "TRACKER_REDIS_URL"),
    ({"TRACKER_SURVEY_DELAY": "soon"}, "TRACKER_SURVEY_DELAY"),
    ({"TRACKER_SMTP_URL": "http://mail"}, "TRACKER_SMTP_URL"),
    ({"TRACKER_SURVEY_SCALE": "stars"}, "TRACKER_SURVEY_SCALE"),
    ({"TRACKER_SECRET_KEY": "change-me-in-production-please-0123456789"}, "TRACKER_SECRET_KEY"),
    # Bytes that are not UTF-8 (as Python holds them): every check of its shape passes such a list of names.
    ({"TRACKER_FOLLOWUP_REASONS": os.fsdecode(b"price,qu\xe4lity")}, "TRACKER_FOLLOWUP_REASONS is not valid UTF-8"),
]
# What only the processes need: a store-only command runs without it.
MISSING = [
    ({"TRACKER_SECRET_KEY": ""}, "TRACKER_SECRET_KEY"),
    ({"TRACKER_SECRET_KEY": "0123456789abcdef0123456789abcde"}, "TRACKER_SECRET_KEY"),  # 31 characters
    ({"TRACKER_SMTP_URL": ""}, "TRACKER_SMTP_URL"),
]


def one_line_naming(result, named):
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(("change", "named"), MALFORMED + MISSING)
@pytest.mark.parametrize("command", [["web"], ["worker"], ["beat"], ["alert-secret"]])
def test_a_bad_setting_stops_every_process_with_one_line_naming_it(env, change, named, command):
    assert one_line_naming(tracker({**env, **change}, *command), named)


@pytest.mark.parametrize(("change", "named"), MALFORMED)
@pytest.mark.parametrize("command", [["score", "a@b.c"], ["rebuild-scores"], ["api-key", "list"]])
def test_a_malformed_setting_stops_store_commands_too(env, change, named, command):
    assert one_line_naming(tracker({**env, **change}, *command), named)


def only(**variables: str) -> dict[str, str]:
    """An environment holding no TRACKER_ variable but these (PATH and the like stay)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}, **variables}


def run_bare(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env=environ, capture_output=True, text=True,
                          timeout=60)


def test_store_commands_need_only_the_redis_url(redis_url, env, post_event, store, settings, smtp, client):
    assert post_event("standard", solved_event(ticket="B-1", at=iso(7200))).status_code == 202
    drain(store, settings)
    send_all(store, settings)
    client.post(survey_link(smtp.wait_for(1)[0], 4), data={"rating": "4"})
    bare = only(TRACKER_REDIS_URL=redis_url)
    for args in (["score", "kari@example.no"], ["top"], ["api-key", "create", "--name", "ops"], ["api-key", "list"],
                 ["rebuild-scores"]):
        result = run_bare(bare, *args)
        assert result.returncode == 0, (args, result.stderr)
    # Opt-outs are kept by a hash keyed with the secret, so these need it too, and say so.
    for args in (["suppress", "add", "x@example.no"], ["suppress", "list"], ["erase", "nobody@example.no"],
                 ["export", "kari@example.no"]):
        assert one_line_naming(run_bare(bare, *args), "TRACKER_SECRET_KEY"), args
        keyed = run_bare({**bare, "TRACKER_SECRET_KEY": env["TRACKER_SECRET_KEY"]}, *args)
        assert keyed.returncode == 0, (args, keyed.stderr)  # and no mail settings
    assert "75.0" in run_bare(bare, "score", "kari@example.no").stdout
    # The processes still need everything.
    assert one_line_naming(run_bare(bare, "worker"), "TRACKER_SECRET_KEY")


@pytest.mark.parametrize("name", ["", "   "])
def test_an_api_key_without_a_name_is_refused(env, name):
    result = tracker(env, "api-key", "create", "--name", name)
    assert result.returncode == 1 and "--name must not be empty" in result.stderr
    assert "Traceback" not in result.stderr and "trk_" not in result.stdout
    assert "No API keys" in tracker(env, "api-key", "list").stdout


def test_version_prints_the_installed_version():
    result = tracker({}, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"tracker {metadata.version('satisfaction-tracker')}"


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield f"{prefix}{name}", child
                yield from subcommands(child, f"{prefix}{name} ")


def test_every_subcommand_help_explains_what_it_does_and_each_option():
    pages = list(subcommands(build_parser()))
    assert {"check", "api-key create", "suppress add", "score", "worker"} <= {name for name, _ in pages}
    for name, parser in pages:
        assert parser.description and len(parser.description) >= 40, f"`tracker {name} --help` says too little"
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction) and action.dest != "help":
                assert action.help, f"`tracker {name} --help` does not explain {action.dest}"
    page = tracker({}, "check", "--help")
    assert page.returncode == 0 and "EHLO" in page.stdout and "--process" in page.stdout


VOLATILE = "keeps nothing on disk"  # the note every check of the session's Redis gets (started without persistence)


def redis_notes(stdout: str) -> list[str]:
    """The notes of a check's output but the two every test's gets: its TRACKER_PUBLIC_URL (http://127.0.0.1:8000),
    and its Redis, which keeps nothing on disk."""
    return [line for line in stdout.splitlines() if line.lstrip().startswith("note")
            and "TRACKER_PUBLIC_URL is http://127.0.0.1:8000" not in line and VOLATILE not in line]


def test_check_notes_a_redis_that_keeps_nothing_on_disk(env, store):
    # A restart of such a Redis loses everything acknowledged; nothing said so, and /readyz stayed 200 after it.
    result = tracker(env, "check")
    assert result.returncode == 0 and result.stderr == "", result.stderr  # advice: a test's Redis is such a one
    notes = [line for line in result.stdout.splitlines() if VOLATILE in line]
    assert notes == ["  note  Redis keeps nothing on disk (appendonly no, no save rule): a restart of it loses "
                     "everything the tracker acknowledged; set appendonly yes (README: Running it for real)"]
    store.redis.config_set("save", "3600 1")  # snapshots: a restart loses at most the last hour, no longer all
    try:
        assert VOLATILE not in tracker(env, "check").stdout
    finally:
        store.redis.config_set("save", "")


def test_check_reaches_redis_broker_and_smtp_and_prints_what_is_enabled(env):
    result = tracker({**env, "TRACKER_ALERT_URLS": "https://hooks.slack.com/services/T0/B0/secret-path"}, "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith(f"tracker {metadata.version('satisfaction-tracker')}")
    for line in ("ok  settings", "ok  Redis", "ok  broker", "ok  SMTP server"):
        assert line in out
    assert re.search(rf"sources +{', '.join(sorted(SECRETS))}\n", out)
    assert re.search(r"alert URLs +1: hooks.slack.com\n", out) and "secret-path" not in out
    assert re.search(r"mail transport +smtp via smtp://127.0.0.1:", out)
    assert re.search(r"sign-in limit +10 failed a client address in 15 minutes\n", out)
    assert re.search(r"trusted proxies +127\.0\.0\.1, ::1\n", out)


def test_check_notes_a_redis_that_keeps_hashes_compact_only_up_to_short_values(env, store):
    store.redis.config_set("hash-max-ziplist-value", 64)  # Redis's default (the 6.2 name; 7.x knows it too)
    result = tracker(env, "check")
    assert result.returncode == 0 and result.stderr == "", result.stderr  # advice, not a problem
    notes = redis_notes(result.stdout)
    assert len(notes) == 1 and "at most 64 bytes" in notes[0] and "hash-max-listpack-value to 512" in notes[0]
    store.redis.config_set("hash-max-ziplist-value", 512)  # as docker-compose.yml and tracker dev start Redis
    assert redis_notes(tracker(env, "check").stdout) == []


def test_check_fails_on_a_redis_that_deletes_keys_when_full_and_notes_one_near_its_maxmemory(env, store):
    store.redis.config_set("maxmemory-policy", "allkeys-lru")  # a policy without a maxmemory evicts nothing
    assert tracker(env, "check").returncode == 0
    try:
        store.redis.config_set("maxmemory", 10 * 1024 ** 3)
        result = tracker(env, "check")
        problems = result.stderr.splitlines()
        assert result.returncode == 1 and len(problems) == 1, result.stderr
        assert "maxmemory-policy allkeys-lru" in problems[0] and "Set maxmemory-policy noeviction" in problems[0]
        store.redis.config_set("maxmemory-policy", "noeviction")
        assert tracker(env, "check").returncode == 0
        used = int(store.redis.info("memory")["used_memory"])
        store.redis.config_set("maxmemory", int(used / 0.92))  # room left, near full
        result = tracker(env, "check")
        notes = [line for line in result.stdout.splitlines() if "maxmemory" in line]
        assert result.returncode == 0 and len(notes) == 1 and "near its maxmemory" in notes[0], result.stdout
    finally:
        store.redis.config_set("maxmemory", 0)
        store.redis.config_set("maxmemory-policy", "noeviction")


@pytest.fixture
def composed_redis(store):
    """The session's Redis set as compose and tracker dev start it (hash-max-listpack-value 512), so a check notes
    only what its test changes, whichever test ran before it."""
    store.redis.config_set("hash-max-ziplist-value", 512)  # the 6.2 name; 7.x knows it too
    return store


def test_check_notes_a_redis_that_keeps_sorted_sets_compact_only_below_a_time_index_chunk(env, composed_redis):
    store = composed_redis
    store.redis.config_set("zset-max-ziplist-entries", 64)  # the 6.2 name; 7.x knows it too
    try:
        result = tracker(env, "check")
    finally:
        store.redis.config_set("zset-max-ziplist-entries", 128)  # Redis's default, which the chunks stay under
    assert result.returncode == 0 and result.stderr == "", result.stderr  # advice, not a problem
    notes = redis_notes(result.stdout)
    assert len(notes) == 1 and "at most 64 entries" in notes[0] and "zset-max-listpack-entries to 128" in notes[0]
    assert redis_notes(tracker(env, "check").stdout) == []


def test_check_notes_filing_hashes_holding_more_surveys_than_redis_keeps_in_a_compact_hash(env, composed_redis):
    store = composed_redis
    fullest = filing_sample()[0]
    store.redis.hset(fullest, mapping={f"sid-{n}": "2:st8:answered" for n in range(5)})  # five filed surveys
    (held,) = store.redis.config_get("hash-max-ziplist-entries").values()  # 512 unless set: Redis's default
    store.redis.config_set("hash-max-ziplist-entries", 4)  # the 6.2 name; 7.x knows it too
    try:
        result = tracker(env, "check")
    finally:
        store.redis.config_set("hash-max-ziplist-entries", held)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # advice, not a problem
    notes = redis_notes(result.stdout)
    assert len(notes) == 1 and "hold up to 5 surveys, more than the 4 fields" in notes[0]
    assert "hash-max-listpack-entries to 512" in notes[0]
    assert redis_notes(tracker(env, "check").stdout) == []


def test_check_gives_one_line_per_problem_and_still_probes_the_rest(env):
    result = tracker({**env, "TRACKER_SECRET_KEY": "please-change-me-0123456789abcdefghij",
                      "TRACKER_BROKER_URL": "amqp://guest:hunter2@127.0.0.1:1//",
                      "TRACKER_SMTP_URL": f"smtp://mailer:hunter2@127.0.0.1:{free_port()}"}, "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    problems = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in problems] == [
        "TRACKER_SECRET_KEY looks like a placeholder, not a random key; generate one",
        "TRACKER_BROKER_URL", "TRACKER_SMTP_URL"]
    assert "ok  Redis" in result.stdout and "hunter2" not in result.stdout + result.stderr


def test_check_logs_in_to_smtp_when_the_url_has_credentials(env, smtp):
    # The test server offers no AUTH, so a login is refused: check reports it as the sender would fail.
    result = tracker({**env, "TRACKER_SMTP_URL": f"smtp://mailer:hunter2@127.0.0.1:{smtp.port}"}, "check")
    assert result.returncode == 1
    assert result.stderr.startswith("tracker check: TRACKER_SMTP_URL: cannot reach the SMTP server: SMTPNotSupported")
    assert smtp.messages == []


def wait_until_probe_passes(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 30
    while True:
        result = tracker(environ, "check", "--process", *args)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result


def test_the_worker_healthcheck_pings_this_hosts_workers_or_the_node_named(env, start_worker):
    down = tracker(env, "check", "--process", "worker")
    assert down.returncode == 1 and f"no worker on {socket.gethostname()} answered a ping" in down.stderr
    worker = start_worker()
    up = wait_until_probe_passes(env, "worker")
    assert up.returncode == 0 and "is alive" in up.stdout, up.stderr
    node = up.stdout.split()[1]  # "worker worker-<pid>@<host> is alive": tracker worker named its own node
    assert node == f"worker-{worker.process.pid}@{socket.gethostname()}", up.stdout
    assert wait_until_probe_passes(env, "worker", "--node", node).returncode == 0
    named = tracker(env, "check", "--process", "worker", "--node", f"celery@{socket.gethostname()}")
    assert named.returncode == 1 and "did not answer a ping" in named.stderr


def test_the_worker_healthcheck_is_done_at_the_first_reply_of_a_node_it_asked(env, settings, start_worker,
                                                                               monkeypatch):
    from tracker.cli import check
    from workers.celery_app import create_celery

    worker = start_worker()
    host = socket.gethostname()
    node = f"worker-{worker.process.pid}@{host}"
    assert wait_until_probe_passes(env, "worker", "--node", node).returncode == 0
    # Waiting for the timeout would take a minute; the nodes asked answer at once, and only they answer.
    monkeypatch.setattr(check, "TIMEOUT", 60.0)
    celery = create_celery(settings)
    for named in (None, node):
        started = time.monotonic()
        replies = check.ping_worker(celery, host, named)
        assert time.monotonic() - started < 30, named
        assert [list(reply) for reply in replies] == [[node]], replies
    monkeypatch.setattr(check, "TIMEOUT", 1.0)
    assert check.ping_worker(celery, "elsewhere.example", None) == []
    assert check.ping_worker(celery, host, f"celery@{host}") == []


def test_the_beat_healthcheck_reads_its_heartbeat(env, start_worker, tmp_path):
    beat_env = {**env, "TMPDIR": str(tmp_path)}
    down = tracker(beat_env, "check", "--process", "beat")
    assert down.returncode == 1 and "no heartbeat" in down.stderr
    start_worker(beat=True, TMPDIR=str(tmp_path))
    up = wait_until_probe_passes(beat_env, "beat")
    assert up.returncode == 0 and "beat is alive" in up.stdout, up.stderr


def test_web_opens_no_gunicorn_control_socket_another_installation_would_share(env, tmp_path):
    """gunicorn 25.1+ puts one control socket per user at $XDG_RUNTIME_DIR/gunicorn.ctl (or ~/.gunicorn/): a second
    `tracker web` on the host took it over, and gunicornc then reloaded or stopped the wrong installation."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    port = free_port()
    web = Process(["web"], {**env, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime),
                            "TRACKER_BIND": f"127.0.0.1:{port}", "TRACKER_WEB_WORKERS": "1"}, ready="Listening at")
    try:
        wait_until(lambda: "Booting worker" in web.output(), what="a gunicorn worker")
        assert not (runtime / "gunicorn.ctl").exists() and not (tmp_path / ".gunicorn").exists()
        assert "Control socket" not in web.output(), web.output()
    finally:
        web.stop()


def test_beats_of_two_stores_on_one_host_keep_their_own_schedule_and_heartbeat(env, start_worker, tmp_path):
    """Staging beside production, or `make run` beside a beat in service: the healthcheck of one installation must
    not call its beat alive because the other's beat touches a heartbeat file both would share."""
    start_worker(beat=True, TMPDIR=str(tmp_path))
    assert wait_until_probe_passes({**env, "TMPDIR": str(tmp_path)}, "beat").returncode == 0
    other = {**env, "TMPDIR": str(tmp_path), "TRACKER_REDIS_URL": env["TRACKER_REDIS_URL"].rsplit("/", 1)[0] + "/9"}
    down = tracker(other, "check", "--process", "beat")
    assert down.returncode == 1 and "no heartbeat" in down.stderr, (down.stdout, down.stderr)
    # A new password names the same store: beat keeps its schedule across the change.
    assert schedule_path("redis://:old@cache:6379/0") == schedule_path("redis://:new@cache:6379/0")


def test_beat_whose_schedule_says_its_tasks_last_ran_in_the_future_runs_them_as_the_clock_went_back(
        env, start_worker, tmp_path):
    """The schedule file was written while the host's clock ran a year ahead (then corrected), or was restored from
    another host: Celery alone would wait until then before sweeping, draining or forwarding again, with a fresh
    heartbeat. Beat takes each such last run as now, says so in one line each, and runs its tasks on time."""
    beat_env = {**env, "TMPDIR": str(tmp_path)}
    first = Process(["beat"], beat_env, ready="beat: Starting")
    wait_until(lambda: "Sending due task sweep-due-surveys" in first.output(), what="beat's first sweep")
    first.stop()
    schedule = tmp_path / schedule_path(env["TRACKER_REDIS_URL"]).name
    with shelve.open(str(schedule)) as stored:  # noqa: S301 - the file this test's own beat wrote
        entries = stored["entries"]
        for entry in entries.values():
            entry.last_run_at += timedelta(days=365)
        stored["entries"] = entries
    again = Process(["beat"], beat_env, ready="beat: Starting")
    try:
        wait_until(lambda: again.output().count("Sending due task sweep-due-surveys") >= 2, timeout=30,
                   what="two sweeps by the beat restarted on a schedule a year ahead")
    finally:
        again.stop()
    assert "the clock went back" in again.output() and "Traceback" not in again.output()


ESCAPES = "Kari\x1b]0;pwned\x07\x1b[2J\x9b31m"  # retitle the window, clear the screen, an 8-bit CSI


def test_names_and_ids_from_outside_are_shown_by_the_commands_never_obeyed_by_the_terminal(
        env, post_event, store, settings, smtp, client):
    body = solved_event(ticket="T-\x1b[31m1", at=iso(7200))
    body["customer"]["name"] = ESCAPES
    assert post_event("standard", body).status_code == 202
    drain(store, settings)
    send_all(store, settings)
    client.post(survey_link(smtp.wait_for(1)[0], 2), data={"rating": "2"})
    for args in (["score", "kari@example.no"], ["top"], ["export", "kari@example.no"]):
        result = tracker(env, *args)
        assert result.returncode == 0, result.stderr
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", result.stdout), (args, result.stdout)
    shown = tracker(env, "score", "kari@example.no").stdout
    assert "Kari\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m" in shown and "T-\\u001b[31m1" in shown
    exported = json.loads(tracker(env, "export", "kari@example.no").stdout)
    assert exported["profile"]["name"] == ESCAPES  # JSON keeps the very characters


def test_an_unknown_command_or_option_gets_usage_not_a_traceback(env):
    for args in (["frobnicate"], ["score"], ["score", "a@b.c", "--bogus"], ["api-key"]):
        result = tracker(env, *args)
        assert result.returncode == 2 and "usage:" in result.stderr and "Traceback" not in result.stderr


def test_an_argument_that_is_not_utf8_gets_usage_naming_it_but_a_file_name_may_be_any_bytes(env, tmp_path):
    not_utf8 = os.fsdecode(b"kari\xff@example.no")  # the bytes a shell passes on, as Python holds them
    for args, named in ((["score", not_utf8], "argument email"), (["export", not_utf8], "argument email"),
                        (["api-key", "create", "--name", not_utf8], "argument --name"),
                        (["api-key", "create", f"--name={not_utf8}"], "argument --name"),
                        (["cases", "--owner", not_utf8], "argument --owner")):
        result = tracker(env, *args)
        assert result.returncode == 2 and f"{named}: not valid UTF-8 text" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    events = tmp_path / os.fsdecode(b"events-\xff.jsonl")
    events.write_text(json.dumps(solved_event(ticket="U-1")) + "\n")
    replayed = tracker(env, "replay", "--dry-run", str(events))
    assert replayed.returncode == 0 and "Traceback" not in replayed.stderr, replayed.stderr


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

    assert post_event("standard", solved_event(ticket="C-1", at=iso(7200))).status_code == 202
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
    assert post_event("standard", solved_event(ticket="S-1", at=iso(7200))).status_code == 202
    drain(store, settings)
    assert [o.reason for o in send_all(store, settings)] == ["suppressed"]
    assert tracker(env, "suppress", "remove", "kari@example.no").returncode == 0
    assert post_event("standard", solved_event(ticket="S-2", at=iso(3600))).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    again = tracker(env, "suppress", "remove", "kari@example.no")
    assert again.returncode == 1 and "not on the suppression list" in again.stderr
