"""A Redis that asks for credentials, and one over TLS: the paths production takes and the rest of the suite does not.

Each test starts redis-servers of its own (a password, ACL users, TLS with and without client certificates:
tests.support.start_own_redis) and drives the real processes, `tracker web` under gunicorn, `tracker worker`, `tracker
beat`, `tracker check` and `tracker score`, over a real SMTP server. What an operator gets wrong (a password, a
certificate) stops each process at start in one line naming the variable; a password changed under a running web is
said by /readyz; and no password ever shows, in a log line, an error, /readyz, /metrics or `tracker check`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from tests.conftest import Process, SmtpSink
from tests.signing import signed
from tests.support import (
    OwnRedis,
    RedisStartFailed,
    TlsFiles,
    make_env,
    solved_event,
    start_own_redis,
    survey_link,
    tracker,
    wait_until,
)
from tests.test_operator_errors import all_at_once, check_naming, one_line_naming
from tests.test_rabbitmq import own_vhost
from tracker.broker_url import broker_connection
from tracker.cli.dev import free_port
from tracker.config import redact_url

pytestmark = pytest.mark.e2e

# Passwords with what a URL must percent-encode (a / in a generated password is common): each is written quoted.
PASSWORD = "Redis-default/pw-7f3a"
USER_PASSWORD = "acl-user/pw-91c2"
OTHER_PASSWORD = "rotated-redis-pw-5d0e"
SPECIAL_PASSWORD = "Sp/ec#ial?pw@9:x"
RABBIT_PASSWORD = "rabbit/pw-3e8d"
EMAIL = "kari@example.no"


# --- the servers ----------------------------------------------------------------------------------------------

def _started(data: Path, password: str = PASSWORD, tls: TlsFiles | None = None,
             client_certificates: str = "no") -> OwnRedis:
    """A redis-server whose default user has this password, with two ACL users as operators make them: `tracker`
    with every command, and a cautious `cautious` without Redis's @dangerous commands (INFO, CONFIG, KEYS,
    FLUSHALL, DEBUG, ...), which the tracker must do without."""
    try:
        server = start_own_redis(data, "--requirepass", password, tls=tls, client_certificates=client_certificates)
    except RedisStartFailed as exc:
        if tls is not None and "tls" in str(exc).lower():
            pytest.skip(f"the redis-server found speaks no TLS (built without BUILD_TLS=yes): {exc}")
        pytest.fail(str(exc))
    try:
        admin = server.client(password)
        for user, commands in (("tracker", ["+@all"]), ("cautious", ["+@all", "-@dangerous"])):
            admin.acl_setuser(user, enabled=True, reset_passwords=True, passwords=[f"+{USER_PASSWORD}"], keys=["*"],
                              channels=["*"], commands=commands)
        admin.close()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis whose default user has a password, with the ACL users of _started."""
    server = _started(tmp_path / "secured")
    yield server
    server.stop()


@pytest.fixture
def over_tls(tmp_path: Path, tls_files: TlsFiles) -> Iterator[OwnRedis]:
    """A Redis over TLS alone (client certificates optional), a password and the ACL users of _started."""
    server = _started(tmp_path / "tls", tls=tls_files, client_certificates="optional")
    yield server
    server.stop()


def url(server: OwnRedis, password: str | None = PASSWORD, user: str = "", **query: str) -> str:
    """The server's URL as an operator writes it: the password percent-encoded, TLS options in the query."""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password is not None else ""
    return f"{'rediss' if server.tls else 'redis'}://{auth}127.0.0.1:{server.port}/0" + \
        (f"?{urlencode(query)}" if query else "")


def leaks(texts: list[str], *secrets: str) -> list[str]:
    """Return the texts holding a secret, as written or percent-encoded (empty when none does)."""
    forms = {form for secret in secrets for form in (secret, quote(secret, safe=""))}
    return [text[:2000] for text in texts if any(form in text for form in forms)]


# --- the whole loop ---------------------------------------------------------------------------------------------

def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=5).ok
    except requests.RequestException:
        return False


class Loop:
    """`tracker web`, `tracker worker` and `tracker beat` running against one Redis, with what they said."""

    def __init__(self, env: dict[str, str], tmp_path: Path,
                 pool: tuple[str, ...] = ("--pool", "solo")) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        (tmp_path / "beat").mkdir(exist_ok=True)
        self.env = {**env, "TRACKER_BIND": f"127.0.0.1:{port}", "TRACKER_WEB_WORKERS": "1",
                    "TRACKER_PUBLIC_URL": self.base, "TMPDIR": str(tmp_path / "beat")}
        # Started side by side: each waits on its own imports, not on the others.
        self.processes = [Process(["web"], self.env, ready=None),
                          Process(["worker", *pool, "--without-mingle", "--without-gossip"], self.env, ready=None),
                          Process(["beat"], self.env, ready=None)]
        self.seen: list[str] = []  # every answer and output to look for a password in

    def __enter__(self) -> Loop:
        web, worker, beat = self.processes
        try:
            wait_until(lambda: _answers(self.base) or web.process.poll() is not None, 30, what="tracker web")
            wait_until(lambda: "ready." in worker.output() or worker.process.poll() is not None, 30,
                       what="tracker worker")
            wait_until(lambda: "beat: Starting" in beat.output() or beat.process.poll() is not None, 30,
                       what="tracker beat")
            assert all(process.process.poll() is None for process in self.processes), self.outputs()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def outputs(self) -> list[str]:
        return [process.output() for process in self.processes] + self.seen

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        response = requests.get(f"{self.base}{path}", timeout=10, **kwargs)
        self.seen.append(response.text)
        return response

    def run(self, smtp: SmtpSink, rating: int = 4, email: str = EMAIL, ticket: str = "S-1") -> dict[str, Any]:
        """A solved ticket by webhook, its survey mailed (the sink's next mail) and answered on the survey page; return
        the customer's score card as the API serves it, once `tracker score` prints the same score."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        before = len(smtp.messages)
        raw = json.dumps(solved_event(ticket=ticket, email_address=email, at=at)).encode()
        headers, query = signed("standard", raw)
        posted = requests.post(f"{self.base}/webhooks/standard", data=raw, params=query, timeout=10,
                               headers={"Content-Type": "application/json", **headers})
        assert posted.status_code == 202, posted.text
        mail = smtp.wait_for(before + 1, timeout=30)[before]
        assert email in mail["To"], mail["To"]
        path = survey_link(mail, rating)
        answered = requests.post(f"{self.base}{path}", data={"rating": str(rating), "comment": "Quick"}, timeout=10)
        assert answered.status_code == 200, answered.text
        created = tracker(self.env, "api-key", "create", "--name", f"lead of {ticket}")
        self.seen += [created.stdout, created.stderr]
        assert created.returncode == 0, created.stderr
        auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}

        def card() -> dict[str, Any] | None:
            response = self.get(f"/api/v1/customers/{email}", headers=auth)
            return response.json() if response.ok and response.json().get("responses") == 1 else None

        found: dict[str, Any] = wait_until(card, 30, what="the answer in the score card")
        score = tracker(self.env, "score", email)
        self.seen += [score.stdout, score.stderr]
        assert score.returncode == 0 and f"{found['score']:.1f}" in score.stdout, score.stdout + score.stderr
        return found


def test_the_whole_loop_runs_with_a_password_and_readyz_says_when_it_changes_under_the_web(secured, smtp, tmp_path):
    env = make_env(url(secured), smtp.port)  # type: ignore[attr-defined]
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stderr
    assert f"ok  Redis: redis://:***@127.0.0.1:{secured.port}/0 answers" in checked.stdout
    with Loop(env, tmp_path) as loop:
        card = loop.run(smtp)
        assert card["score"] == 75.0 and card["last_response"]["rating"] == 4
        ready = loop.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "redis": "ok"}
        metrics = loop.get("/metrics")
        assert metrics.status_code == 200 and 'tracker_redis_used_memory_bytes{node=""}' in metrics.text

        # The password changes under the running processes (Redis keeps connections already authenticated: they
        # are dropped, as a restart or a failover drops them).
        admin = secured.client(PASSWORD)
        admin.config_set("requirepass", OTHER_PASSWORD)
        secured.client(OTHER_PASSWORD).client_kill_filter(_type="normal")

        def refused() -> dict[str, Any] | None:
            answer = loop.get("/readyz")
            return answer.json() if answer.status_code == 503 and answer.json()["redis"] != "unreachable" else None

        said = wait_until(refused, 15, what="/readyz to say the credentials are refused")
        assert said["status"] == "unavailable" and said["redis"] == "auth_failed", said
        assert said["reason"].startswith(f"TRACKER_REDIS_URL: the Redis at 127.0.0.1:{secured.port} refused the "
                                         "credentials"), said
        assert loop.get("/metrics").status_code == 503
        wait_until(lambda: "refused the credentials of TRACKER_REDIS_URL" in loop.processes[0].output(), 10,
                   what="the web's log line saying why Redis is unavailable")
        secured.client(OTHER_PASSWORD).config_set("requirepass", PASSWORD)
        wait_until(lambda: loop.get("/readyz").status_code == 200, 15, what="/readyz once the password is back")
        wait_until(lambda: "Connected to redis://:**@" in loop.processes[1].output().split("invalid username")[-1],
                   30, what="the worker back on its broker")
    outputs = [*loop.outputs(), checked.stdout, checked.stderr]
    assert not leaks(outputs, PASSWORD, OTHER_PASSWORD)
    assert not any("Traceback" in text for text in outputs[:3]), outputs[:3]


def test_the_whole_loop_runs_over_tls_as_an_acl_user_without_dangerous_commands(over_tls, smtp, tmp_path):
    # The broker is the same rediss:// URL: kombu gets the CA (and is told to check the certificate) from it.
    assert over_tls.tls is not None
    store = url(over_tls, USER_PASSWORD, "cautious", ssl_ca_certs=str(over_tls.tls.ca))
    env = make_env(store, smtp.port)  # type: ignore[attr-defined]
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stderr
    assert f"ok  Redis: rediss://cautious:***@127.0.0.1:{over_tls.port}/0?ssl_ca_certs=" in checked.stdout
    assert "ok  broker: rediss://cautious:***@" in checked.stdout
    # What the user may not run is a note, not a failure: the tracker needs neither INFO nor CONFIG GET.
    assert "note  the Redis user of TRACKER_REDIS_URL may not run INFO or CONFIG GET" in checked.stdout
    with Loop(env, tmp_path) as loop:
        card = loop.run(smtp, rating=5)
        assert card["score"] == 100.0
        assert loop.get("/readyz").json() == {"status": "ok", "redis": "ok"}
        metrics = loop.get("/metrics")
        assert metrics.status_code == 200 and "tracker_customers 1.0" in metrics.text
        assert 'tracker_redis_used_memory_bytes{' not in metrics.text  # INFO refused: the gauges are left out
    outputs = [*loop.outputs(), checked.stdout, checked.stderr]
    assert not leaks(outputs, USER_PASSWORD, PASSWORD)
    assert not any("Traceback" in text or "insecure SSL" in text for text in outputs[:3]), outputs[:3]


# --- what an operator gets wrong --------------------------------------------------------------------------------

def test_a_wrong_or_missing_password_stops_each_process_at_start_in_one_line_without_it(secured, smtp):
    env = make_env(url(secured), smtp.port)  # type: ignore[attr-defined]
    wrong = {**env, "TRACKER_REDIS_URL": url(secured, OTHER_PASSWORD)}
    runs = [(wrong, ("web",)), (wrong, ("worker",)), (wrong, ("beat",)), (wrong, ("score", EMAIL)),
            (wrong, ("check",)),
            ({**env, "TRACKER_REDIS_URL": url(secured, None)}, ("worker",)),
            ({**env, "TRACKER_REDIS_URL": url(secured, OTHER_PASSWORD, "tracker")}, ("beat",)),
            # the store right, the broker (another database of the same Redis) with a wrong password
            ({**env, "TRACKER_BROKER_URL": url(secured, OTHER_PASSWORD).replace("/0", "/1")}, ("web",))]
    results = [result for result, _ in all_at_once(*runs)]
    wrong_web, wrong_worker, wrong_beat, wrong_score, wrong_check, none_worker, user_beat, broker_web = results
    refused = f"TRACKER_REDIS_URL: the Redis at 127.0.0.1:{secured.port} refused the credentials in the URL"
    for result in (wrong_web, wrong_worker, wrong_beat, wrong_score):
        assert one_line_naming(result, refused + " (the default user and its password)"), result.stderr
    assert check_naming(wrong_check, refused), wrong_check.stderr
    # The broker is the store's Redis: refused once, as the Redis.
    assert "TRACKER_BROKER_URL" not in wrong_check.stderr, wrong_check.stderr
    assert one_line_naming(none_worker, f"TRACKER_REDIS_URL: the Redis at 127.0.0.1:{secured.port} wants a password, "
                                        "and the URL gives none"), none_worker.stderr
    assert one_line_naming(user_beat, refused + " (the ACL user 'tracker' and its password)"), user_beat.stderr
    assert one_line_naming(broker_web, f"TRACKER_BROKER_URL: the Redis at 127.0.0.1:{secured.port} refused the "
                                       "credentials"), broker_web.stderr
    said = [text for result in results for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, OTHER_PASSWORD, USER_PASSWORD)


def test_tls_set_ups_that_cannot_work_are_one_line_each_and_client_certificates_are_taken(tmp_path, tls_files,
                                                                                          secured, smtp):
    wanting = _started(tmp_path / "mtls", tls=tls_files, client_certificates="yes")
    try:
        env = make_env(url(secured), smtp.port)  # type: ignore[attr-defined]
        ca = str(tls_files.ca)
        certified = url(wanting, ssl_ca_certs=ca, ssl_certfile=str(tls_files.client_cert),
                        ssl_keyfile=str(tls_files.client_key))
        runs = [
            # no CA named: the server's certificate is not trusted, for the store and (the same URL) the broker
            ({**env, "TRACKER_REDIS_URL": url(wanting)}, ("worker",)),
            ({**env, "TRACKER_REDIS_URL": url(wanting)}, ("check",)),
            # a server that wants a client certificate, and gets none
            ({**env, "TRACKER_REDIS_URL": url(wanting, ssl_ca_certs=ca)}, ("web",)),
            ({**env, "TRACKER_REDIS_URL": url(wanting, ssl_ca_certs=ca)}, ("check",)),
            # ... and gets one: the store and the broker (kombu hands the files to redis-py) both connect
            ({**env, "TRACKER_REDIS_URL": certified}, ("check",)),
            # a broker on a bare rediss:// URL: kombu took any certificate unchecked; now checked as the store's is
            ({**env, "TRACKER_BROKER_URL": url(wanting).replace("/0", "/1")}, ("check",)),
            # a CA file that is not there: said before anything connects
            ({**env, "TRACKER_REDIS_URL": url(wanting, ssl_ca_certs=str(tmp_path / "no-such-ca.pem"))}, ("beat",)),
        ]
        results = [result for result, _ in all_at_once(*runs)]
    finally:
        wanting.stop()
    untrusted_worker, untrusted_check, uncertified_web, uncertified_check, certified_check, bare_broker, no_ca = results
    untrusted = f"the TLS certificate of the Redis at 127.0.0.1:{wanting.port} is not trusted"
    assert one_line_naming(untrusted_worker, f"TRACKER_REDIS_URL: {untrusted}"), untrusted_worker.stderr
    assert check_naming(untrusted_check, f"TRACKER_REDIS_URL: {untrusted}"), untrusted_check.stderr
    wants = "it wants a client certificate: give ssl_certfile and ssl_keyfile in the URL"
    assert one_line_naming(uncertified_web, "TRACKER_REDIS_URL") and wants in uncertified_web.stderr, \
        uncertified_web.stderr
    assert check_naming(uncertified_check, wants), uncertified_check.stderr
    assert certified_check.returncode == 0, certified_check.stderr
    assert "ok  broker: rediss://:***@" in certified_check.stdout
    assert check_naming(bare_broker, f"TRACKER_BROKER_URL: cannot reach the broker: {untrusted}"), bare_broker.stderr
    assert one_line_naming(no_ca, f"TRACKER_REDIS_URL: ssl_ca_certs names {tmp_path / 'no-such-ca.pem'} (the CA "
                                  "certificates), which cannot be read: No such file or directory"), no_ca.stderr
    said = [text for result in results for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD)


def test_a_password_in_the_query_or_with_characters_a_url_reserves_is_read_and_never_shown(tmp_path, smtp):
    server = _started(tmp_path / "special", SPECIAL_PASSWORD)
    try:
        base = f"redis://127.0.0.1:{server.port}/0"
        env = make_env(base, smtp.port)  # type: ignore[attr-defined]
        runs = [({**env, "TRACKER_REDIS_URL": f"redis://:{quote(SPECIAL_PASSWORD, safe='')}@127.0.0.1:"
                                              f"{server.port}/0"}, ("check",)),
                # redis-py's ?password=, which kombu (the broker, the same URL) fails on as it is written
                ({**env, "TRACKER_REDIS_URL": f"{base}?{urlencode({'password': SPECIAL_PASSWORD})}"}, ("check",)),
                # not percent-encoded: the / and # end the host part early
                ({**env, "TRACKER_REDIS_URL": f"redis://:{SPECIAL_PASSWORD}@127.0.0.1:{server.port}/0"}, ("worker",))]
        encoded, queried, unencoded = [result for result, _ in all_at_once(*runs)]
    finally:
        server.stop()
    for result in (encoded, queried):
        assert result.returncode == 0, result.stderr
        assert "ok  broker: redis://" in result.stdout and "accepts connections" in result.stdout
    assert "?password=*** answers" in queried.stdout
    assert one_line_naming(unencoded, "TRACKER_REDIS_URL: the user part of the URL (before the @) holds a / ? or # "
                                      "that is not percent-encoded"), unencoded.stderr
    said = [text for result in (encoded, queried, unencoded) for text in (result.stdout, result.stderr)]
    assert not leaks(said, SPECIAL_PASSWORD, "Sp/ec", "ial?pw")


# --- RabbitMQ as the broker, with a user and vhost of the tracker's own -----------------------------------------

@pytest.fixture
def rabbitmq_user() -> Iterator[str]:
    """A vhost and a user with a password, of this test's own, on the local RabbitMQ; yield the amqp:// URL, then
    delete both."""
    with own_vhost("tracker-credentials", RABBIT_PASSWORD) as (vhost, user):
        yield f"amqp://{user}:{quote(RABBIT_PASSWORD, safe='')}@127.0.0.1:5672/{vhost}"


def test_a_rabbitmq_broker_with_its_own_user_and_vhost_is_masked_and_a_refused_login_is_one_line(
        secured, smtp, rabbitmq_user, tmp_path):
    env = make_env(url(secured), smtp.port, TRACKER_BROKER_URL=rabbitmq_user)  # type: ignore[attr-defined]
    user = rabbitmq_user.split("//", 1)[1].split(":", 1)[0]
    wrong = rabbitmq_user.replace(quote(RABBIT_PASSWORD, safe=""), quote(OTHER_PASSWORD, safe=""))
    worker = Process(["worker", "--pool", "solo", "--without-mingle", "--without-gossip"],
                     {**env, "TMPDIR": str(tmp_path)}, ready=None)
    try:
        runs = [(env, ("check",)), ({**env, "TRACKER_BROKER_URL": wrong}, ("worker",)),
                ({**env, "TRACKER_BROKER_URL": rabbitmq_user.rsplit("/", 1)[0] + "/no-such-vhost"}, ("beat",))]
        (checked, _), (refused, _), (no_vhost, _) = all_at_once(*runs)
        wait_until(lambda: "ready." in worker.output() or worker.process.poll() is not None, 30, what="the worker")
    finally:
        worker.stop()
    assert checked.returncode == 0, checked.stderr
    assert f"ok  broker: amqp://{user}:***@127.0.0.1:5672/{user} accepts connections (amqp)" in checked.stdout
    assert one_line_naming(refused, f"TRACKER_BROKER_URL: RabbitMQ at 127.0.0.1:5672 refused the login of user "
                                    f"'{user}'"), refused.stderr
    assert one_line_naming(no_vhost, "TRACKER_BROKER_URL: RabbitMQ at 127.0.0.1:5672 refused the vhost "
                                     "'no-such-vhost'"), no_vhost.stderr
    assert "ready." in worker.output() and f"amqp://{user}:**@127.0.0.1:5672/{user}" in worker.output()
    said = [worker.output(), *(text for result in (checked, refused, no_vhost) for text in (result.stdout,
                                                                                            result.stderr))]
    assert not leaks(said, RABBIT_PASSWORD, OTHER_PASSWORD, PASSWORD)


# --- how URLs are shown and handed to kombu ---------------------------------------------------------------------

@pytest.mark.parametrize(("given", "shown"), [
    ("redis://:pw-1234@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://tracker:pw-1234@h:6379/0", "redis://tracker:***@h:6379/0"),
    ("redis://pw-1234@h:6379/0", "redis://***@h:6379/0"),  # a lone user part may well be a password
    ("redis://:pw/12#34@h:6379/0", "redis://***@h:6379/0"),  # not percent-encoded: the parser sees no user part
    ("redis://h:6379/0?password=pw-1234&db=1", "redis://h:6379/0?password=***&db=1"),
    ("rediss://:a@h/0?ssl_certfile=/c.pem&ssl_password=pw-1234", "rediss://:***@h/0?ssl_certfile=/c.pem&ssl_password=***"),
    ("sentinel://:pw-1234@s1:26379;sentinel://:pw-1234@s2:26379/0?master_name=m",
     "sentinel://:***@s1:26379;sentinel://:***@s2:26379/0?master_name=m"),
])
def test_a_url_is_shown_without_its_secrets(given, shown):
    assert redact_url(given) == shown


def test_kombu_gets_the_redis_url_as_redis_py_reads_it():
    # A rediss:// URL without ssl_cert_reqs: kombu would check no certificate (and say so in a warning).
    assert broker_connection("rediss://:pw@h:6380/0") == ("rediss://:pw@h:6380/0?ssl_cert_reqs=required", {})
    assert broker_connection("rediss://:pw@h/0?ssl_cert_reqs=none")[0] == "rediss://:pw@h/0?ssl_cert_reqs=none"
    # redis-py's ?password= and socket options, which kombu fails on in the query: the user part, transport options.
    assert broker_connection("redis://h:6379/0?password=p%2Fw&socket_timeout=2&protocol=3") == \
        ("redis://:p%2Fw@h:6379/0", {"socket_timeout": 2.0})
    assert broker_connection("redis://u:p@h/0") == ("redis://u:p@h/0", {})


def test_the_whole_loop_runs_on_a_redis_socket_with_a_password_the_broker_on_the_same_socket(tmp_path, smtp):
    # unix:// is redis-py's name for a socket; kombu, Celery's client, has no unix:// transport and names the same
    # socket redis+socket:// (its database as virtual_host), which the broker is given.
    socket_path = tmp_path / "redis.sock"
    server = start_own_redis(tmp_path / "socket", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
                             "--requirepass", PASSWORD)
    try:
        env = make_env(f"unix://:{quote(PASSWORD, safe='')}@{socket_path}?db=2", smtp.port)
        assert broker_connection(env["TRACKER_REDIS_URL"]) == (
            f"redis+socket://:{quote(PASSWORD, safe='')}@{socket_path}?virtual_host=2", {})
        checked = tracker(env, "check")
        assert checked.returncode == 0 and "ok  broker" in checked.stdout, checked.stdout + checked.stderr
        with Loop(env, tmp_path) as loop:
            assert loop.run(smtp)["responses"] == 1
        import redis

        assert redis.Redis(unix_socket_path=str(socket_path), password=PASSWORD, db=2).dbsize() > 0  # all in db 2
        outputs = [*loop.outputs(), checked.stdout, checked.stderr]
        assert not leaks(outputs, PASSWORD) and not any("Traceback" in text for text in outputs[:3])
    finally:
        server.stop()
