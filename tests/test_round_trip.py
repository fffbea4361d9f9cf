"""The store's own round trips (StoreClient.round_trip): replies in order on the thread's own connection, which stays
in step through error replies, survives a restarted Redis, and is never shared by two threads or two processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tracker.cli.dev import free_port, redis_binary
from tracker.errors import StorageUnavailable
from tracker.store import Store
from tracker.store.base import StoreClient, connect

Started = Callable[[], None]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Started]]:
    """A redis-server of this test's own, and a function that stops it and starts it again on the same port."""
    binary = redis_binary()
    assert binary is not None
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def wait_up() -> None:
        probe = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                probe.close()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def restart() -> None:
        processes[-1].terminate()
        processes[-1].wait(timeout=10)
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_up()

    wait_up()
    yield f"redis://127.0.0.1:{port}/0", restart
    processes[-1].terminate()
    processes[-1].wait(timeout=10)


def test_replies_come_in_order_and_an_error_reply_leaves_the_connection_in_step(store):
    store.redis.set("{rt}:text", "a")
    replies = store.round_trip([("GET", "{rt}:text"), ("LPUSH", "{rt}:text", "x"), ("EVALSHA", "0" * 40, 0),
                                ("INCRBY", "{rt}:n", 2)])
    assert replies[0] == "a" and replies[3] == 2
    assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert isinstance(replies[2], redis.exceptions.NoScriptError)
    assert store.round_trip([("INCRBY", "{rt}:n", 3)]) == [5]  # the next trip reads its own reply
    assert store.round_trip([("EVALSHA", "0" * 40, 0)])[0].__class__ is redis.exceptions.NoScriptError


def test_a_trip_after_redis_restarted_reconnects_and_is_answered(own_redis):
    url, restart = own_redis
    client = connect(url)
    assert isinstance(client, StoreClient)
    assert client.round_trip([("SET", "k", "1"), ("GET", "k")]) == [True, "1"]
    restart()  # the thread's connection is gone with the server it knew
    assert client.round_trip([("SET", "k", "2"), ("GET", "k")]) == [True, "2"]
    client.close()


def test_a_trip_to_a_redis_that_stopped_answering_fails_once_its_timeout_passed_and_the_next_is_answered(own_redis):
    url, _restart = own_redis
    client = StoreClient.from_url(url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5,
                                  retry=Retry(NoBackoff(), 1),
                                  retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    assert client.round_trip([("SET", "k", "1")]) == [True]
    sock = client._own.connection._sock  # bounded by the kernel, not polled before each send and receive
    assert sock.gettimeout() is None
    assert struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)) == (0, 500_000)
    assert struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)) == (0, 500_000)
    pid = int(client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # the server still accepts connections, and answers nothing
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            client.round_trip([("GET", "k")])
        assert time.monotonic() - started < 30  # each try gave up after its timeout, not hung
    finally:
        os.kill(pid, signal.SIGCONT)
    assert client.round_trip([("GET", "k")]) == ["1"]  # a new connection, bounded the same way
    assert client._own.connection._sock.gettimeout() is None
    client.close()


def test_each_thread_reads_only_its_own_replies(store):
    wrong: list[str] = []

    def work(n: int) -> None:
        for round_ in range(200):
            value = f"{n}-{round_}"
            replies = store.round_trip([("SET", f"{{rt}}:t{n}", value), ("GET", f"{{rt}}:t{n}")])
            if replies != [True, value]:
                wrong.append(f"{value}: {replies}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def _child_trip(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = _inherited[url]
    queue.put(store.round_trip([("INCRBY", "{rt}:forked", 1), ("GET", "{rt}:forked")]))


_inherited: dict[str, Store] = {}


def test_a_forked_child_makes_its_own_connection_and_the_parents_stays_in_step(redis_url):
    store = _inherited[redis_url] = Store.from_url(redis_url)
    assert store.round_trip([("SET", "{rt}:forked", 10)]) == [True]  # the parent's thread has its connection
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_trip, args=(redis_url, queue))
    child.start()
    assert queue.get(timeout=30) == [11, "11"]
    child.join(timeout=30)
    assert child.exitcode == 0
    assert store.round_trip([("INCRBY", "{rt}:forked", 1), ("GET", "{rt}:forked")]) == [12, "12"]
    del _inherited[redis_url]


def test_a_pipeline_without_a_transaction_reads_replies_as_redis_pys_own_did(store):
    redis_client = store.redis
    redis_client.set("{rt}:s", "text")
    pipe = redis_client.pipeline(transaction=False)
    pipe.zadd("{rt}:z", {"a": 1.5, "b": 2})
    pipe.zrange("{rt}:z", 0, -1, withscores=True)  # a callback given the command's options
    pipe.mget([])  # refused by Redis, answered with redis-py's empty reply
    pipe.dump("{rt}:s")  # never decoded
    pipe.hgetall("{rt}:nothing")
    pipe.set("{rt}:flag", 1, nx=True)
    added, ranked, empty, dumped, nothing, flagged = pipe.execute()
    assert (added, ranked, empty, nothing, flagged) == (2, [("a", 1.5), ("b", 2.0)], [], {}, True)
    assert isinstance(dumped, bytes)
    redis_client.restore("{rt}:copy", 0, dumped)
    assert redis_client.get("{rt}:copy") == "text"


def test_a_pipeline_error_is_raised_naming_its_command_or_kept_in_place_and_the_connection_stays_in_step(store):
    store.redis.set("{rt}:s", "text")
    pipe = store.redis.pipeline(transaction=False)
    pipe.incr("{rt}:n").lpush("{rt}:s", "x").incr("{rt}:n")
    with pytest.raises(redis.ResponseError, match=r"Command # 2 \(LPUSH \{rt\}:s x\) of pipeline caused error"):
        pipe.execute()
    assert len(pipe) == 0  # emptied, as redis-py's execute leaves it
    pipe.incr("{rt}:n").lpush("{rt}:s", "x")
    counted, refused = pipe.execute(raise_on_error=False)
    assert counted == 3 and isinstance(refused, redis.ResponseError) and "WRONGTYPE" in str(refused)
    assert store.redis.pipeline(transaction=False).get("{rt}:n").execute() == ["3"]
