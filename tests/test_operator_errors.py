"""What an operator meets when a setting or a server is wrong: never a traceback and never a long wait, but one line
naming what is wrong and a non-zero exit (malformed URLs, numbers out of range, a Redis that refuses the database, a
server that is no Redis, a server that never answers, an output that cannot be written)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest
import redis

from tests.support import ROOT, iso, solved_event, tracker
from tracker.config import ConfigError, SettingsProblems, load_settings
from tracker.mail.errors import TransientMailError
from tracker.store import keys


def one_line_naming(result: subprocess.CompletedProcess[str], named: str, status: int = 2) -> bool:
    lines = result.stderr.strip().splitlines()
    return (result.returncode == status and len(lines) == 1 and named in lines[0]
            and "Traceback" not in result.stderr)


def check_naming(result: subprocess.CompletedProcess[str], named: str) -> bool:
    """`tracker check` said, among its problem lines, one naming this, and nothing else on stderr."""
    lines = result.stderr.strip().splitlines()
    return (result.returncode == 1 and "Traceback" not in result.stderr
            and all(line.startswith("tracker check: ") for line in lines) and any(named in line for line in lines))


def all_at_once(*runs: tuple[dict[str, str], tuple[str, ...]]) -> list[tuple[subprocess.CompletedProcess[str], float]]:
    """Run `tracker` commands side by side (each waits on sockets, not the CPU); return each result and its seconds."""
    def timed(run: tuple[dict[str, str], tuple[str, ...]]) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        result = tracker(run[0], *run[1])
        return result, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        return list(pool.map(timed, runs))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def garbage_server(greeting: bytes) -> Iterator[int]:
    """A server that is no Redis: it greets every connection with its own protocol and reads until it is closed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(greeting)
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture
def rabbitmq_like() -> Iterator[int]:
    yield from garbage_server(b"AMQP\x00\x00\x09\x01")  # what RabbitMQ answers a client that is not AMQP


@pytest.fixture
def mariadb_like() -> Iterator[int]:
    yield from garbage_server(b"d\x00\x00\x00\x0a10.11.6-MariaDB\x00")  # a MySQL handshake greets first


# --- F4: malformed URLs are one line naming the variable ---------------------------------------------------------

MALFORMED_URLS = [
    ({"TRACKER_REDIS_URL": "redis://[bad"}, "TRACKER_REDIS_URL"),
    ({"TRACKER_PUBLIC_URL": "http://[bad"}, "TRACKER_PUBLIC_URL"),
    ({"TRACKER_SMTP_URL": "smtp://[bad"}, "TRACKER_SMTP_URL"),
    ({"TRACKER_ALERT_URLS": "http://[bad"}, "TRACKER_ALERT_URLS"),
    ({"TRACKER_EVENT_URLS": "https://[bad|survey.sent"}, "TRACKER_EVENT_URLS"),
    ({"TRACKER_JIRA_API_URL": "http://[x"}, "TRACKER_JIRA_API_URL"),
    ({"TRACKER_MAIL_API_URL": "https://[x"}, "TRACKER_MAIL_API_URL"),
    ({"TRACKER_BROKER_URL": "redis://127.0.0.1:abc/0"}, "TRACKER_BROKER_URL"),
    ({"TRACKER_BROKER_URL": "redis://127.0.0.1:6379/abc"}, "TRACKER_BROKER_URL"),
    ({"TRACKER_BROKER_URL": "amqp://guest:guest@127.0.0.1:abc//"}, "TRACKER_BROKER_URL"),
    ({"TRACKER_BROKER_URL": "sentinel://s1:x;sentinel://s2:26379/0?master_name=m"}, "TRACKER_BROKER_URL"),
    ({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0?socket_timeout=abc"}, "TRACKER_REDIS_URL"),
    ({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0?protocol=9"}, "TRACKER_REDIS_URL"),
    ({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/abc"}, "TRACKER_REDIS_URL"),  # was database 0, silently
    ({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0?no_such_option=1"}, "TRACKER_REDIS_URL"),
    ({"TRACKER_REDIS_URL": "rediss://127.0.0.1:6379/0?ssl_cert_reqs=sometimes"}, "TRACKER_REDIS_URL"),
]


@pytest.mark.parametrize(("change", "named"), MALFORMED_URLS)
def test_load_settings_refuses_a_malformed_url_naming_its_variable(env, change, named):
    with pytest.raises(ConfigError) as refused:
        load_settings({**env, **change})
    assert str(refused.value).startswith(named), refused.value


def test_a_redis_url_with_a_password_is_refused_without_showing_it(env):
    with pytest.raises(ConfigError) as refused:
        load_settings({**env, "TRACKER_REDIS_URL": "redis://:hunter2secret@127.0.0.1:6379/0?socket_timeout=x"})
    assert "hunter2secret" not in str(refused.value)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/3",
                                 "redis://127.0.0.1:6379/0?socket_timeout=2&protocol=3", "unix:///tmp/redis.sock?db=2",
                                 "rediss://127.0.0.1:6379/0?ssl_cert_reqs=none"])
def test_load_settings_takes_the_redis_urls_redis_py_takes(env, url):
    assert load_settings({**env, "TRACKER_REDIS_URL": url}).redis_url == url


def test_every_command_says_a_malformed_url_in_one_line_not_a_traceback(env):
    runs = [({**env, "TRACKER_REDIS_URL": "redis://[bad"}, ("top",)),
            ({**env, "TRACKER_REDIS_URL": "redis://[bad"}, ("worker",)),
            ({**env, "TRACKER_REDIS_URL": "redis://[bad"}, ("check",)),
            ({**env, "TRACKER_PUBLIC_URL": "http://[bad"}, ("alert-secret",)),
            ({**env, "TRACKER_ALERT_URLS": "http://[bad"}, ("top",)),
            ({**env, "TRACKER_EVENT_URLS": "https://[bad|survey.sent"}, ("check",)),
            ({**env, "TRACKER_BROKER_URL": "redis://127.0.0.1:abc/0"}, ("alert-secret",)),
            ({**env, "TRACKER_BROKER_URL": "redis://127.0.0.1:abc/0"}, ("check",)),
            ({**env, "TRACKER_REDIS_URL": env["TRACKER_REDIS_URL"] + "?socket_timeout=abc"}, ("top",)),
            ({**env, "TRACKER_REDIS_URL": env["TRACKER_REDIS_URL"] + "?protocol=9"}, ("score", "a@b.c")),
            ({**env, "TRACKER_REDIS_URL": env["TRACKER_REDIS_URL"].rsplit("/", 1)[0] + "/abc"}, ("top",))]
    for (environ, command), (result, _) in zip(runs, all_at_once(*runs), strict=True):
        named = next(name for name, value in environ.items() if env.get(name) != value)
        if command == ("check",):
            assert check_naming(result, named), (command, result.stderr)
        else:
            assert one_line_naming(result, named), (command, result.returncode, result.stderr)


# --- F5: a Redis that refuses, a server that is no Redis, a key of the wrong type --------------------------------

def test_a_database_redis_does_not_have_is_one_line(env):
    environ = {**env, "TRACKER_REDIS_URL": env["TRACKER_REDIS_URL"].rsplit("/", 1)[0] + "/99"}
    (top, _), (check, _), (web, _) = all_at_once((environ, ("top",)), (environ, ("check",)), (environ, ("web",)))
    assert one_line_naming(top, "refused the database: DB index is out of range"), top.stderr
    assert one_line_naming(web, "refused the database: DB index is out of range"), web.stderr
    assert check_naming(check, "TRACKER_REDIS_URL: the Redis at 127.0.0.1:"), check.stderr


@pytest.mark.parametrize("server", ["rabbitmq_like", "mariadb_like"])
def test_a_server_that_is_no_redis_is_one_line_saying_so(env, server, request):
    port = request.getfixturevalue(server)
    environ = {**env, "TRACKER_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    (top, _), (check, _), (worker, _) = all_at_once((environ, ("top",)), (environ, ("check",)),
                                                    (environ, ("worker",)))
    said = f"TRACKER_REDIS_URL: the server at 127.0.0.1:{port} does not speak Redis (Protocol error"
    assert one_line_naming(top, said), top.stderr
    assert one_line_naming(worker, said), worker.stderr
    assert check_naming(check, said), check.stderr


def test_a_layout_key_of_another_type_is_one_line_not_a_traceback(env):
    client = redis.Redis.from_url(env["TRACKER_REDIS_URL"])
    client.delete(keys.LAYOUT)
    client.rpush(keys.LAYOUT, "x")  # another program's list where the tracker keeps its layout mark
    (top, _), (check, _), (upgrade, _) = all_at_once((env, ("top",)), (env, ("check",)), (env, ("upgrade-store",)))
    assert one_line_naming(top, "WRONGTYPE", status=1), top.stderr
    assert one_line_naming(upgrade, "WRONGTYPE", status=1), upgrade.stderr
    assert check_naming(check, "WRONGTYPE"), check.stderr
    client.delete(keys.LAYOUT)


# --- F6: an output that cannot be written -------------------------------------------------------------------------

def run_with_stdout(env: dict[str, str], stdout: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env={**os.environ, **env}, cwd=ROOT,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_an_output_on_a_full_disk_is_one_line(env):
    with open("/dev/full", "w") as full:
        result = run_with_stdout(env, full, "top")
    assert result.returncode == 1 and result.stderr == "tracker: cannot write the output: No space left on device\n"


def test_a_reader_that_went_away_ends_the_command_quietly(env, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(solved_event(ticket=f"P-{n}", email_address=f"p{n}@example.no",
                                                      at=iso(3600 + n))) + "\n" for n in range(3)))
    assert tracker(env, "replay", str(events)).returncode == 0
    for command in (("top",), ("export-log", "-")):
        read, write = os.pipe()
        os.close(read)  # `| head -1` having read its line: every write now fails with EPIPE
        try:
            result = run_with_stdout(env, write, *command)
        finally:
            os.close(write)
        assert (result.returncode, result.stderr) == (141, ""), (command, result.returncode, result.stderr)


# --- F3 and F13: a server that never answers -----------------------------------------------------------------------

def test_no_command_waits_long_on_a_server_that_never_answers(env, silent_port):
    silent = f"127.0.0.1:{silent_port}"
    plain = env["TRACKER_REDIS_URL"]
    # The suite's slot guard (tests/slot_guard.py) asks a Redis for its commands with a client of its own, which
    # would wait on the silent server as long again: timed here is the product alone.
    env = {**env, "TRACKER_SLOT_GUARD_REPORT": ""}
    runs = [({**env, "TRACKER_BROKER_URL": f"redis://{silent}/0"}, ("check",)),
            ({**env, "TRACKER_REDIS_URL": f"redis://{silent}/0"}, ("check",)),  # the broker is the same
            ({**env, "TRACKER_REDIS_URL": f"redis://{silent}/0"}, ("top",)),
            ({**env, "TRACKER_REDIS_URL": plain.replace("redis://", "rediss://", 1)}, ("score", "a@b.c")),  # TLS
            ({**env, "TRACKER_SMTP_URL": f"smtp://{silent}"}, ("survey", "test-send", "me@example.com"))]
    (broker, broker_s), (store, store_s), (top, top_s), (tls, tls_s), (mail, mail_s) = all_at_once(*runs)
    assert check_naming(broker, "TRACKER_BROKER_URL: cannot reach the broker: TimeoutError: no answer within 5 s")
    assert broker_s < 12, broker_s  # TIMEOUT (5 s) for the broker; it hung for good before
    assert check_naming(store, "TRACKER_REDIS_URL: cannot reach the Redis: TimeoutError: no answer within 5 s")
    # The broker is the store's Redis: named once, as the Redis, and not waited for again.
    assert "TRACKER_BROKER_URL" not in store.stderr, store.stderr
    assert "broker: the store's Redis (TRACKER_REDIS_URL)" in store.stdout, store.stdout
    assert store_s < 12, store_s  # 5 s for the Redis alone (10 s before: the broker was waited for too)
    assert one_line_naming(top, "cannot reach Redis", status=3) and top_s < 18, (top_s, top.stderr)  # was 60 s
    assert one_line_naming(tls, "cannot reach Redis", status=3) and tls_s < 20, (tls_s, tls.stderr)  # was 150 s
    assert mail.returncode == 4 and "Traceback" not in mail.stderr, mail.stderr
    assert mail.stderr == (f"tracker: the test survey was not sent: the SMTP server at {silent} did not answer "
                           "within 10 s (timed out)\n")
    assert mail_s < 18, mail_s  # was 30 s, and said the server closed the connection


def test_the_sender_tells_a_silent_server_from_one_that_closed_the_connection(silent_port):
    from tracker.mail.smtp import SmtpSender, SmtpTimeout

    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "support@acme.test", "kari@example.no", "Hello"
    mail.set_content("Hello")
    with SmtpSender(f"smtp://127.0.0.1:{silent_port}", timeout=0.5) as sender, \
            pytest.raises(SmtpTimeout) as silent:
        sender.send(mail)
    assert isinstance(silent.value, TransientMailError)  # the worker tries it again later, as before
    assert "did not answer within 0.5 s (timed out)" in str(silent.value)
    closing = socket.socket()
    closing.bind(("127.0.0.1", 0))
    closing.listen(4)
    threading.Thread(target=lambda: closing.accept()[0].close(), daemon=True).start()
    try:
        with SmtpSender(f"smtp://127.0.0.1:{closing.getsockname()[1]}", timeout=5) as sender, \
                pytest.raises(TransientMailError) as closed:
            sender.send(mail)
    finally:
        closing.close()
    assert not isinstance(closed.value, SmtpTimeout) and str(closed.value) == "server closed the connection"


# --- F10: `tracker check` says every problem of the settings ---------------------------------------------------------

def test_check_says_every_bad_setting_one_line_each(env):
    environ = {**env, "TRACKER_SECRET_KEY": "", "TRACKER_SMTP_URL": "", "TRACKER_SURVEY_DELAY": "abc",
               "TRACKER_LOG_LEVEL": "loud", "TRACKER_PUBLIC_URL": "ftp://x", "TRACKER_SWEEP_INTERVAL": "nan"}
    result = tracker(environ, "check")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for named in ("TRACKER_SECRET_KEY", "TRACKER_SMTP_URL", "TRACKER_SURVEY_DELAY", "TRACKER_LOG_LEVEL",
                  "TRACKER_PUBLIC_URL", "TRACKER_SWEEP_INTERVAL"):
        assert len([line for line in lines if line.startswith(f"tracker check: {named}")]) == 1, (named, lines)


def test_load_settings_still_reads_as_its_first_problem(env):
    with pytest.raises(SettingsProblems) as refused:
        load_settings({**env, "TRACKER_SURVEY_DELAY": "abc", "TRACKER_LOG_LEVEL": "loud"})
    assert str(refused.value) == "TRACKER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'LOUD'"
    assert refused.value.problems == (str(refused.value), "TRACKER_SURVEY_DELAY must be a whole number, got 'abc'")


# --- F11: numbers have a range ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "said"), [
    ("TRACKER_SURVEY_EXPIRY_DAYS", "3000000", "must be at most 3650"),
    ("TRACKER_SURVEY_EXPIRY_DAYS", "99999999999999999999", "must be at most 3650"),
    ("TRACKER_SWEEP_INTERVAL", "1e15", "must be at most 86400"),
    ("TRACKER_SWEEP_INTERVAL", "nan", "must be a number"),
    ("TRACKER_SWEEP_INTERVAL", "1e999999", "must be a number"),
    ("TRACKER_SURVEY_DELAY", "99999999999", "must be at most 31536000"),
    ("TRACKER_AT_RISK_SCORE", "101", "must be at most 100"),
    ("TRACKER_SCORE_HALF_LIFE_DAYS", "inf", "must be a number"),
    ("TRACKER_WEB_WORKERS", "1000", "must be at most 64"),
    ("TRACKER_LOG_RETENTION_DAYS", "100000", "must be at most 3650"),
    ("TRACKER_CASE_DUE_HOURS", "1000000", "must be at most 8760"),
])
def test_a_number_out_of_its_range_is_refused_saying_the_range(env, name, value, said):
    with pytest.raises(ConfigError) as refused:
        load_settings({**env, name: value})
    assert str(refused.value).startswith(f"{name} {said}"), refused.value


def test_a_survey_expiry_past_any_date_is_refused_before_a_mail_is_built(env):
    environ = {**env, "TRACKER_SURVEY_EXPIRY_DAYS": "3000000"}
    (check, _), (sent, _) = all_at_once((environ, ("check",)), (environ, ("survey", "test-send", "me@example.com")))
    assert check_naming(check, "TRACKER_SURVEY_EXPIRY_DAYS must be at most 3650"), check.stderr
    assert one_line_naming(sent, "TRACKER_SURVEY_EXPIRY_DAYS must be at most 3650"), sent.stderr


def test_an_operators_command_leaves_the_processes_patience_as_it_was(env, monkeypatch, capsys):
    from tracker.cli.commands import main
    from tracker.store import base

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["top"]) == 0
    assert base._patience[0] is base.PROCESSES
    assert "Traceback" not in capsys.readouterr().err
