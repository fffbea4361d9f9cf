"""The store boundary: Redis outages leave the store as one exception, whatever kind of call met them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tracker.cli.dev import free_port, redis_binary
from tracker.errors import StorageUnavailable
from tracker.store import Store
from tracker.store.base import connect


@pytest.fixture
def down_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def replica_url(tmp_path: Path) -> Iterator[str]:
    """Start a redis-server that replicates a master that is not there: it reads, and refuses writes."""
    binary = redis_binary()
    assert binary is not None
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--replicaof", "127.0.0.1", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


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


def test_errors_that_are_bugs_stay_redis_errors(redis_url):
    client = connect(redis_url)
    client.set("k", "v")
    with pytest.raises(redis.ResponseError):
        client.lpush("k", "x")
    with pytest.raises(redis.ResponseError):
        client.register_script("return redis.call('NOSUCHCOMMAND')")()
    wrong_type, = client.round_trip([("LPUSH", "k", "x")])  # the caller decides what an error reply means
    assert isinstance(wrong_type, redis.ResponseError) and not isinstance(wrong_type, StorageUnavailable)
