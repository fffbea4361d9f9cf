"""RabbitMQ as the Celery broker: the whole loop through a real rabbitmq-server, in a virtual host of our own."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from tests.signing import signed
from tests.support import drain, make_env, send_all, solved_event, survey_link, tracker, wait_until
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.store import Store
from workers.celery_app import create_celery, queue_length

pytestmark = pytest.mark.e2e

HOST, PORT = "127.0.0.1", 5672
ALERTS = "/alerts"
EMAIL = "kari@example.no"


def _rabbitmqctl() -> str | None:
    # Debian installs it under /usr/sbin, which a non-login PATH may leave out.
    return shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/usr/local/sbin")


def _ctl(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


@contextmanager
def own_vhost(prefix: str, password: str | None = None) -> Iterator[tuple[str, str]]:
    """Make a virtual host of a test's own on the local RabbitMQ, and with a password a user of the same name allowed
    only there (else guest is allowed there); yield (vhost, user), then delete both. Skip, saying why, where no
    RabbitMQ runs or rabbitmqctl cannot add a vhost.

    The queue name is fixed in workers/celery_app.py, so a vhost is what keeps a test apart from anything else the
    server carries.
    """
    binary = _rabbitmqctl()
    if binary is None:
        pytest.skip("rabbitmqctl is not installed (Debian's rabbitmq-server package provides it)")
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no RabbitMQ answers on {HOST}:{PORT} ({exc})")
    vhost = f"{prefix}-{uuid.uuid4().hex[:10]}"
    made = _ctl(binary, "add_vhost", vhost)
    if made.returncode != 0:
        pytest.skip(f"rabbitmqctl cannot add a vhost here: {(made.stderr or made.stdout).strip()[:300]}")
    user = "guest" if password is None else vhost
    try:
        if password is not None:
            added = _ctl(binary, "add_user", user, password)
            assert added.returncode == 0, added.stderr
        allowed = _ctl(binary, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        assert allowed.returncode == 0, allowed.stderr
        yield vhost, user
    finally:
        if password is not None:
            _ctl(binary, "delete_user", user)
        gone = _ctl(binary, "delete_vhost", vhost)
        assert gone.returncode == 0, gone.stderr


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    """A virtual host of this test's own on the local RabbitMQ, for guest; yield its amqp:// URL, then delete it."""
    with own_vhost("tracker-test") as (vhost, _):
        yield f"amqp://guest:guest@{HOST}:{PORT}/{vhost}"


@pytest.fixture
def env(redis_url: str, smtp: Any, httpserver: HTTPServer, rabbitmq: str) -> dict[str, str]:
    return make_env(redis_url, smtp.port, TRACKER_BROKER_URL=rabbitmq,
                    TRACKER_ALERT_URLS=httpserver.url_for(ALERTS), TRACKER_ALERT_ALLOW_PRIVATE="1")


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _solved(post: Any, ticket: str, address: str = EMAIL) -> None:
    """Deliver a signed solved event through post (requests' or a test client's) and expect it accepted."""
    raw = json.dumps(solved_event(ticket=ticket, email_address=address, at=_now_iso())).encode()
    headers, _ = signed("standard", raw)
    response = post("/webhooks/standard", data=raw, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.text


def _drop_connections(vhost_url: str) -> None:
    """Have RabbitMQ close every connection to the test's vhost, as a restart of the server would."""
    closed = _ctl(_rabbitmqctl() or "rabbitmqctl", "close_all_connections", "-p", vhost_url.rsplit("/", 1)[1],
                  "test: connection lost")
    assert closed.returncode == 0, closed.stderr


def test_the_loop_runs_end_to_end_with_rabbitmq_as_the_broker(env, store, live_server, start_worker, smtp,
                                                                httpserver, rabbitmq):
    httpserver.expect_request(ALERTS, method="POST").respond_with_data("", status=204)
    start_worker(beat=True)
    # The worker's container healthcheck pings it through the broker.
    alive = tracker(env, "check", "--process", "worker")
    assert alive.returncode == 0 and "is alive" in alive.stdout, alive.stderr

    def post(path: str, **kwargs: Any) -> requests.Response:
        return requests.post(live_server + path, timeout=10, **kwargs)

    _solved(post, "AMQP-1")  # the receiver kicks the drain through RabbitMQ
    (mail,) = smtp.wait_for(1, timeout=30)
    assert mail["To"].addresses[0].addr_spec == EMAIL
    # The mail is handed to SMTP before the send is recorded: answer once it is, as the card counts it then.
    wait_until(lambda: [s for s in store.customer_surveys(EMAIL) if s.status == "sent"],
               what="the survey to be marked sent")

    answered = post(survey_link(mail, 1), data={"rating": "1", "comment": "Never again"})
    assert answered.status_code == 200, answered.text
    # The web enqueued the alert through RabbitMQ; the worker built it and delivered it.
    wait_until(lambda: len(httpserver.log) >= 1, timeout=30, what="the unhappy answer's alert")
    alert = json.loads(httpserver.log[0][0].get_data())
    assert alert["data"]["comment"] == "Never again"

    key = store.create_key("lead")
    card = requests.get(f"{live_server}/api/v1/customers/{EMAIL}", headers={"Authorization": f"Bearer {key}"},
                        timeout=10).json()
    assert card["responses"] == 1 and card["surveys_sent"] == 1 and card["at_risk"] is True
    # Nothing is left waiting in the RabbitMQ queue once the work is done.
    waiting = queue_length(create_celery(load_settings(env)))
    wait_until(lambda: waiting() == 0, timeout=15, what="the RabbitMQ queue to be empty")

    # RabbitMQ drops every connection (a restart does the same): worker, beat and web reconnect on their own.
    _drop_connections(rabbitmq)
    _solved(post, "AMQP-2", "per@example.no")
    assert smtp.wait_for(2, timeout=30)[1]["To"].addresses[0].addr_spec == "per@example.no"


def test_the_queue_gauge_counts_tasks_waiting_in_rabbitmq(settings, rabbitmq):
    celery = create_celery(settings)
    waiting = queue_length(celery)
    assert waiting() == 0  # the queue does not exist yet: nothing waits
    celery.send_task("tracker.drain_events")
    celery.send_task("tracker.drain_events")
    assert wait_until(lambda: waiting() == 2, timeout=10, what="two tasks counted in the queue")


def test_an_alert_is_enqueued_after_rabbitmq_closed_the_webs_connection(settings, store, smtp, rabbitmq):
    from tracker.web.app import create_app
    from workers.celery_app import web_enqueue

    celery = create_celery(settings)
    client = create_app(settings, store, enqueue=web_enqueue(celery)).test_client()
    for n, address in enumerate(("ann@example.no", "bo@example.no")):
        _solved(client.post, f"C-{n}", address)
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent", "sent"]
    first, second = smtp.wait_for(2)
    waiting = queue_length(celery)
    queued = waiting()  # the receiver's kick of the drain
    assert client.post(survey_link(first, 1), data={"rating": "1"}).status_code == 200
    assert waiting() == queued + 1  # the alert task
    # What a RabbitMQ restart, or an idle connection cut on the way, does to the web's pooled connection.
    _drop_connections(rabbitmq)
    assert client.post(survey_link(second, 1), data={"rating": "1"}).status_code == 200
    assert waiting() == queued + 2  # the next alert reconnected and got through, not lost with the old connection


def test_check_reports_rabbitmq_reachable_and_names_a_refused_login(env, rabbitmq):
    reached = tracker(env, "check")
    assert reached.returncode == 0, reached.stderr
    vhost = rabbitmq.rsplit("/", 1)[1]
    assert f"ok  broker: amqp://guest:***@{HOST}:{PORT}/{vhost} accepts connections (amqp)" in reached.stdout

    refused = tracker({**env, "TRACKER_BROKER_URL": f"amqp://guest:hunter2@{HOST}:{PORT}/{vhost}"}, "check")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert re.match(r"tracker check: TRACKER_BROKER_URL: cannot reach the broker: \w+", refused.stderr)
    assert "hunter2" not in refused.stdout + refused.stderr


def test_a_delivery_is_accepted_while_an_amqp_broker_is_down_and_waits_in_the_log(redis_url, smtp):
    from tracker.web.app import create_app
    from workers.celery_app import web_enqueue

    # No RabbitMQ needed: nothing answers on a free port.
    down = load_settings(make_env(redis_url, smtp.port, TRACKER_BROKER_URL=f"amqp://guest:guest@{HOST}:{free_port()}//"))
    store = Store.from_url(redis_url)
    try:
        client = create_app(down, store, enqueue=web_enqueue(create_celery(down))).test_client()
        _solved(client.post, "D-1")
        assert store.lag().length == 1  # beat's periodic drain applies it once the broker is back
    finally:
        store.redis.close()


def test_two_workers_on_one_host_both_take_tasks_and_answer_the_healthcheck(env, start_worker):
    """Celery names every worker celery@<host> and RabbitMQ holds its ping queue exclusive to one connection: a
    second worker on the host reconnected for ever and took no task. Each `tracker worker` names its own node."""
    first, second = start_worker("--concurrency", "1"), start_worker("--concurrency", "1")
    up = tracker(env, "check", "--process", "worker")
    assert up.returncode == 0, up.stderr
    host = socket.gethostname()
    nodes = [f"worker-{process.process.pid}@{host}" for process in (first, second)]
    assert any(node in up.stdout for node in nodes), up.stdout  # the host's check is done at the first reply
    for node in nodes:
        named = tracker(env, "check", "--process", "worker", "--node", node)
        assert named.returncode == 0 and f"worker {node} is alive" in named.stdout, named.stderr
    app = create_celery(load_settings(env))
    for _ in range(20):
        app.send_task("tracker.drain_events")
    wait_until(lambda: all("Task tracker.drain_events[" in p.output() for p in (first, second)),
               what="both workers to run a task")
    for process in (first, second):
        assert "RESOURCE_LOCKED" not in process.output() and "Traceback" not in process.output()


def test_a_list_of_rabbitmq_nodes_fails_over_past_one_that_is_down(redis_url, smtp, rabbitmq, start_worker):
    """kombu's failover list, `amqp://n1;amqp://n2`, as a RabbitMQ cluster without a load balancer is named: with the
    first node down, `tracker check` reaches the second, tasks are sent and taken there, and the queue gauge counts
    them."""
    vhost = rabbitmq.rsplit("/", 1)[1]
    listed = f"amqp://guest:guest@{HOST}:{free_port()}/{vhost};{rabbitmq}"
    env = make_env(redis_url, smtp.port, TRACKER_BROKER_URL=listed)
    checked = tracker(env, "check")
    assert f"ok  broker: amqp://guest:***@{HOST}:" in checked.stdout and "accepts connections (amqp)" in \
        checked.stdout, checked.stdout + checked.stderr
    app = create_celery(load_settings(env))
    app.send_task("tracker.drain_events")
    assert queue_length(app)() == 1  # on the node that answers
    worker = start_worker(TRACKER_BROKER_URL=listed)
    wait_until(lambda: "succeeded in" in worker.output(), timeout=30, what="the worker to run the task")
    assert "Will retry using next failover" in worker.output() and "Traceback" not in worker.output()
    assert queue_length(app)() == 0
