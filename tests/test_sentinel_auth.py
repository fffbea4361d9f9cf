"""A Redis broker behind a Sentinel, both with passwords, as production has them (SPEC §9): the master's requirepass
(or an ACL user) in the URL's user part, the Sentinel's own in sentinel_password (and sentinel_username); and both
behind TLS.

Each test starts a master and a Sentinel of its own (tests.test_sentinel.Servers, or TlsServers) and drives the real
processes over a real SMTP server. The URL names the one Sentinel twice (127.0.0.1, then localhost), the password
written on the first alone: kombu reads the credentials of one URL at a time, and takes the next after a lost
connection. A wrong or missing password stops web, worker and beat at start in one line naming TRACKER_BROKER_URL,
and no password shows.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import redis

from tests.conftest import Process
from tests.support import (
    OwnRedis,
    RedisStartFailed,
    TlsFiles,
    make_env,
    start_own_redis,
    tracker,
    wait_until,
)
from tests.test_operator_errors import all_at_once, check_naming, one_line_naming
from tests.test_redis_credentials import Loop, leaks
from tests.test_sentinel import MASTER, Servers
from tracker.cli.dev import free_port, redis_binary
from tracker.config import load_settings
from workers.celery_app import create_celery, queue_length

pytestmark = pytest.mark.e2e

# Passwords with what a URL must percent-encode: a / in the user part, + & / in the query.
PASSWORD = "master/pw-7f3a"
SENTINEL_PASSWORD = "sentinel+pw/&9e1d"
USER_PASSWORD = "acl-user/pw-91c2"
WRONG = "wrong-pw-5d0e"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Servers]:
    """A master whose default user has PASSWORD, watched by a Sentinel whose own is SENTINEL_PASSWORD."""
    servers = Servers(tmp_path, password=PASSWORD, sentinel_password=SENTINEL_PASSWORD)
    yield servers
    servers.stop()


class TlsServers:
    """A master over TLS alone with PASSWORD, and a Sentinel over TLS alone with SENTINEL_PASSWORD watching it over
    TLS (tls-replication): what the TLS set-ups of hosted and packaged Redis look like."""

    def __init__(self, data: Path, tls: TlsFiles):
        try:
            self.master: OwnRedis = start_own_redis(data, "--requirepass", PASSWORD, "--tls-replication", "yes",
                                                    tls=tls)
        except RedisStartFailed as exc:
            pytest.skip(f"the redis-server found speaks no TLS (built without BUILD_TLS=yes): {exc}")
        self.port, self.sentinel_port = self.master.port, free_port()
        config = data / "sentinel-tls.conf"
        config.write_text(f"port 0\ntls-port {self.sentinel_port}\nbind 127.0.0.1\ntls-cert-file {tls.server_cert}\n"
                          f"tls-key-file {tls.server_key}\ntls-ca-cert-file {tls.ca}\ntls-auth-clients no\n"
                          f"tls-replication yes\nsentinel monitor {MASTER} 127.0.0.1 {self.port} 1\n"
                          f'sentinel auth-pass {MASTER} "{PASSWORD}"\nrequirepass "{SENTINEL_PASSWORD}"\n')
        self.sentinel = subprocess.Popen([str(redis_binary()), str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.sentinel_port, password=SENTINEL_PASSWORD, ssl=True, ssl_ca_certs=str(tls.ca),
                             socket_timeout=1)

        def answers() -> bool:
            try:
                return client.sentinel_get_master_addr_by_name(MASTER) is not None
            except redis.RedisError:
                return False

        try:
            wait_until(answers, timeout=10, what="the Sentinel to answer over TLS, naming its master")
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        self.master.stop()
        if self.sentinel.poll() is None:
            self.sentinel.terminate()
            self.sentinel.wait(timeout=10)


def url(servers: Servers | TlsServers, password: str | None = PASSWORD,
        sentinel_password: str | None = SENTINEL_PASSWORD, user: str = "", sentinel_user: str = "") -> str:
    """The broker's URL as an operator writes it: the master's credentials percent-encoded in the first Sentinel's
    user part, the Sentinel's in the query, the Sentinel named again as localhost."""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password is not None else ""
    query = {"master_name": MASTER, **({"sentinel_username": sentinel_user} if sentinel_user else {}),
             **({"sentinel_password": sentinel_password} if sentinel_password is not None else {})}
    return (f"sentinel://{auth}127.0.0.1:{servers.sentinel_port};sentinel://localhost:{servers.sentinel_port}/0?"
            f"{urlencode(query, quote_via=quote)}")


def refusals(servers: Servers, variable: str) -> tuple[str, str, str, str]:
    """How the master and the Sentinel are named in a refusal, and what a wrong password of each is said as."""
    master = f"the Redis master '{MASTER}' at 127.0.0.1:{servers.port} (as the Sentinel at 127.0.0.1:" \
             f"{servers.sentinel_port} names it)"
    sentinel = f"the Sentinel at 127.0.0.1:{servers.sentinel_port}"
    return (master, sentinel,
            f"{variable}: {master} refused the credentials in the URL's user part (the default user and its "
            "password): invalid username-password pair",
            f"{variable}: {sentinel} refused the credentials of sentinel_password (the default user and its "
            "password): invalid username-password pair")


def test_the_whole_loop_runs_through_a_sentinel_and_a_master_with_passwords_across_a_restart_of_the_master(
        guarded, redis_url, smtp, tmp_path):
    env = make_env(redis_url, smtp.port, TRACKER_BROKER_URL=url(guarded))  # type: ignore[attr-defined]
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (f"ok  broker: sentinel://:***@127.0.0.1:{guarded.sentinel_port};sentinel://localhost:"
            f"{guarded.sentinel_port}/0?master_name={MASTER}&sentinel_password=*** accepts connections (redis): the "
            f"master '{MASTER}' at 127.0.0.1:{guarded.port}") in checked.stdout, checked.stdout
    # kombu reads the credentials and database of one URL at a time: after a lost connection, those of the next.
    with create_celery(load_settings(env)).connection_for_write() as connection:
        connection.maybe_switch_next()  # as a lost connection does: the second URL, with no password written on it
        assert connection.hostname == "localhost"
        connection.ensure_connection(max_retries=0)  # this URL alone: on a failure kombu would take the next
        assert connection.default_channel.client.ping()
    with Loop(env, tmp_path) as loop:
        worker = loop.processes[1].output
        assert f"Connected to sentinel://:**@127.0.0.1:{guarded.sentinel_port}/0" in worker(), worker()
        # The master restarts under the running processes, which log in to it again when it is back.
        guarded.stop_master()
        wait_until(lambda: "Cannot connect to sentinel://" in worker(), 15, what="the worker to miss the master")
        connected = worker().count("Connected to sentinel://:**@")
        guarded.start_master()
        wait_until(lambda: worker().count("Connected to sentinel://:**@") > connected, 30,
                   what="the worker back on its broker")
        card = loop.run(smtp)
        assert card["responses"] == 1 and card["last_response"]["rating"] == 4
        master = redis.Redis(port=guarded.port, password=PASSWORD)
        assert master.exists("_kombu.binding.tracker") == 1  # the queue is on the master the Sentinel names
        master.close()
    outputs = [*loop.outputs(), checked.stdout, checked.stderr]
    assert not leaks(outputs, PASSWORD, SENTINEL_PASSWORD)
    said = "\n".join(outputs[:3])
    assert "Traceback" not in said and "authenticated" not in said and "invalid username" not in said, said[-3000:]


def test_a_wrong_or_missing_password_of_the_master_or_the_sentinel_stops_each_process_at_start_in_one_line(
        guarded, redis_url, smtp):
    env = make_env(redis_url, smtp.port)  # type: ignore[attr-defined]

    def broker(**given: str | None) -> dict[str, str]:
        return {**env, "TRACKER_BROKER_URL": url(guarded, **given)}  # type: ignore[arg-type]

    wrong_master, no_master = broker(password=WRONG), broker(password=None)
    wrong_sentinel, no_sentinel = broker(sentinel_password=WRONG), broker(sentinel_password=None)
    nobody = free_port()  # no Sentinel there: the processes wait for it, `tracker check` says so in a line
    down = {**env, "TRACKER_BROKER_URL": f"sentinel://:{quote(PASSWORD, safe='')}@127.0.0.1:{nobody}/0?"
                                         f"master_name={MASTER}"}
    runs = [(down, ("check",)), (wrong_master, ("web",)), (wrong_master, ("worker",)), (wrong_master, ("beat",)),
            (wrong_master, ("check",)), (no_master, ("worker",)),
            (wrong_sentinel, ("web",)), (wrong_sentinel, ("worker",)), (wrong_sentinel, ("beat",)),
            (wrong_sentinel, ("check",)), (no_sentinel, ("web",)), (no_sentinel, ("worker",)), (no_sentinel, ("beat",))]
    unanswered, *results = [result for result, _ in all_at_once(*runs)]
    assert check_naming(unanswered, f"TRACKER_BROKER_URL: cannot reach the broker: no Sentinel of the URL names the "
                                    f"master '{MASTER}': 127.0.0.1:{nobody} does not answer ("), \
        unanswered.stderr
    master, sentinel, master_refused, sentinel_refused = refusals(guarded, "TRACKER_BROKER_URL")
    for result in results[:3]:
        assert one_line_naming(result, master_refused), result.stderr
    assert check_naming(results[3], master_refused.replace(": ", ": cannot reach the broker: ", 1)), results[3].stderr
    assert one_line_naming(results[4], f"TRACKER_BROKER_URL: {master} wants a password, and the URL gives none: "
                                       "give it in the URL's user part: sentinel://:PASSWORD@"), results[4].stderr
    for result in results[5:8]:
        assert one_line_naming(result, sentinel_refused), result.stderr
    assert check_naming(results[8], sentinel_refused.replace(": ", ": cannot reach the broker: ", 1)), \
        results[8].stderr
    for result in results[9:]:
        assert one_line_naming(result, f"TRACKER_BROKER_URL: {sentinel} wants a password, and the URL gives none: "
                                       "give it in the query: ...?master_name=...&sentinel_password=PASSWORD"), \
            result.stderr
    said = [text for result in (unanswered, *results) for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, SENTINEL_PASSWORD, WRONG)


def test_acl_users_of_the_master_and_the_sentinel_are_taken_and_a_refused_one_is_named(guarded, redis_url, smtp):
    for port, password, user in ((guarded.port, PASSWORD, "tracker"),
                                 (guarded.sentinel_port, SENTINEL_PASSWORD, "watcher")):
        admin = redis.Redis(port=port, password=password)
        admin.acl_setuser(user, enabled=True, passwords=[f"+{USER_PASSWORD}"], keys=["*"], channels=["*"],
                          commands=["+@all"])
        admin.close()
    env = make_env(redis_url, smtp.port)  # type: ignore[attr-defined]
    users = {"password": USER_PASSWORD, "user": "tracker", "sentinel_password": USER_PASSWORD,
             "sentinel_user": "watcher"}
    runs = [({**env, "TRACKER_BROKER_URL": url(guarded, **users)}, ("check",)),  # type: ignore[arg-type]
            ({**env, "TRACKER_BROKER_URL": url(guarded, **{**users, "password": WRONG})}, ("beat",)),  # type: ignore
            ({**env, "TRACKER_BROKER_URL": url(guarded, **{**users, "sentinel_password": WRONG})}, ("worker",))]
    (checked, _), (master_refused, _), (sentinel_refused, _) = all_at_once(*runs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"ok  broker: sentinel://tracker:***@127.0.0.1:{guarded.sentinel_port};" in checked.stdout
    assert f"?master_name={MASTER}&sentinel_username=watcher&sentinel_password=*** accepts connections" in \
        checked.stdout, checked.stdout
    assert one_line_naming(master_refused, "refused the credentials in the URL's user part (the ACL user 'tracker' "
                                           "and its password)"), master_refused.stderr
    assert one_line_naming(sentinel_refused, "refused the credentials of sentinel_password (the ACL user 'watcher' "
                                             "and its password)"), sentinel_refused.stderr
    said = [text for result in (checked, master_refused, sentinel_refused) for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, SENTINEL_PASSWORD, USER_PASSWORD, WRONG)


def test_a_sentinel_and_its_master_behind_tls_take_tasks_and_a_certificate_not_trusted_is_one_line(
        tmp_path, tls_files, redis_url, smtp):
    servers = TlsServers(tmp_path, tls_files)
    try:
        trusted = f"{url(servers)}&ssl_ca_certs={tls_files.ca}"
        env = make_env(redis_url, smtp.port, TRACKER_BROKER_URL=trusted)  # type: ignore[attr-defined]
        runs = [(env, ("check",)),
                # the system's CAs, which did not sign the certificates
                ({**env, "TRACKER_BROKER_URL": f"{url(servers)}&ssl_cert_reqs=required"}, ("worker",))]
        (checked, _), (untrusted, _) = all_at_once(*runs)
        app = create_celery(load_settings(env))
        app.send_task("tracker.drain_events")
        assert queue_length(app)() == 1  # on the master the Sentinel named, both over TLS
        worker = Process(["worker", "--pool", "solo", "--without-mingle", "--without-gossip"],
                         {**env, "TMPDIR": str(tmp_path)}, ready=None)
        try:
            wait_until(lambda: "succeeded in" in worker.output() or worker.process.poll() is not None, 30,
                       what="the worker to run the task")
        finally:
            worker.stop()
    finally:
        servers.stop()
    taken = worker.output()
    assert "Task tracker.drain_events[" in taken and "succeeded in" in taken and "Traceback" not in taken, taken[-3000:]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (f"?master_name={MASTER}&sentinel_password=***&ssl_ca_certs={tls_files.ca} accepts connections (redis over "
            f"TLS, its certificate and host name checked): the master '{MASTER}' at 127.0.0.1:{servers.port}") in \
        checked.stdout, checked.stdout
    assert one_line_naming(untrusted, f"TRACKER_BROKER_URL: the TLS certificate of the Sentinel at 127.0.0.1:"
                                      f"{servers.sentinel_port} is not trusted"), untrusted.stderr
    said = [worker.output(), *(text for result in (checked, untrusted) for text in (result.stdout, result.stderr))]
    assert not leaks(said, PASSWORD, SENTINEL_PASSWORD)
