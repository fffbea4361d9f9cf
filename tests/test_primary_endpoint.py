"""A managed Redis's primary endpoint (ElastiCache, Memorystore, Azure Cache): one name the service moves to the
promoted replica on a failover, while connections made before it stay on the demoted primary, now a replica that
refuses writes (READONLY). The store's connections that read READONLY connect again, so the processes reach the new
primary without a restart; a Redis that stays a replica is still an outage (tests/test_storage_down.py).

The endpoint here is a TCP forwarder of the test's own: new connections go to its current target, old ones stay
where they were, as with a DNS name that moved. Both servers are real, on each Redis the tracker supports (6.2
reports a write refused in a script as the script's error).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.signing import signed
from tests.support import iso, make_env, solved_event, wait_until
from tests.test_redis_credentials import Loop
from tests.test_storage_down import BINARIES, _own_redis
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.store import Store, keys
from tracker.web.app import create_app


class Endpoint:
    """A TCP forwarder on a free loopback port: each connection it accepts is piped to the port it names now."""

    def __init__(self, target: int):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:  # the target is down: the connection ends, as a name with no server behind it would
                client.close()
                continue
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for end in self.sockets:
            end.close()


@pytest.fixture
def primary_and_replica(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    binary: Callable[[], str | None] = request.param
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _own_redis(binary(), tmp_path / "a") as first:
        primary = int(first.rsplit(":", 1)[1].split("/")[0])
        with _own_redis(binary(), tmp_path / "b", "--replicaof", "127.0.0.1", str(primary)) as second:
            replica = int(second.rsplit(":", 1)[1].split("/")[0])
            client = redis.Redis(port=replica, decode_responses=True)
            wait_until(lambda: client.info("replication").get("master_link_status") == "up", timeout=10,
                       what="the replica to replicate the primary")
            client.close()
            yield primary, replica


def fail_over(primary: int, replica: int, endpoint: Endpoint) -> None:
    """Promote the replica, demote the primary under it, and move the endpoint, as a managed service does."""
    promoted, demoted = redis.Redis(port=replica), redis.Redis(port=primary)
    promoted.execute_command("REPLICAOF", "NO", "ONE")
    demoted.execute_command("REPLICAOF", "127.0.0.1", str(replica))
    endpoint.target = replica
    wait_until(lambda: demoted.info("replication").get("master_link_status") == "up", timeout=10,
               what="the demoted primary to replicate the new one")
    promoted.close()
    demoted.close()


@pytest.mark.parametrize("primary_and_replica", BINARIES.args[1], indirect=True)
def test_after_a_failover_behind_a_primary_endpoint_writes_reach_the_new_primary_without_a_restart(
        primary_and_replica):
    primary, replica = primary_and_replica
    endpoint = Endpoint(primary)
    url = f"redis://127.0.0.1:{endpoint.port}/0"
    try:
        store = Store.from_url(url)
        client = store.redis
        settings = load_settings(make_env(url, free_port()))
        web = create_app(settings, store, enqueue=lambda *_: None).test_client()

        def webhook(ticket: str) -> int:
            raw = json.dumps(solved_event(ticket=ticket, email_address="kari@example.no", at=iso(0))).encode()
            headers, query = signed("standard", raw)
            return web.post("/webhooks/standard", data=raw, query_string=query,
                            headers={"Content-Type": "application/json", **headers}).status_code

        assert webhook("T-1") == 202 and client.set("written:before", "1")
        with client.pipeline() as transaction:  # a pooled connection, on the first primary too
            transaction.incr("counted")
            assert transaction.execute() == [1]
        script = client.register_script("local seen = redis.call('GET', KEYS[1]) return redis.call('INCR', KEYS[1])")
        assert script(keys=["scripted:before"]) == 1  # known to the first primary's script cache
        fail_over(primary, replica, endpoint)
        # Every connection is still on the demoted primary: each write is refused there and sent again on a new
        # connection, which the endpoint takes to the new primary.
        # A batch calling scripts by SHA (more than a few calls), first on the connection: the demoted primary has
        # the scripts, and it is sent again on the new one, whose script cache is its own: the scripts are loaded
        # there first, or every call would be refused NOSCRIPT.
        batch = client.pipeline(transaction=False)
        for n in range(12):
            script(keys=[f"batched:{{{n % 3}}}"], client=batch)
        assert batch.execute() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
        assert webhook("T-2") == 202
        assert script(keys=["scripted"]) == 1
        with client.pipeline() as transaction:
            transaction.incr("counted")
            assert transaction.execute() == [2]
        assert client.set("written:after", "2")
        new = redis.Redis(port=replica, decode_responses=True)
        assert new.mget("written:before", "counted", "scripted", "written:after") == ["1", "2", "1", "2"]
        assert sum(new.xlen(keys.stream(shard)) for shard in range(keys.BUCKETS)) == 2  # both webhooks' events
        new.close()
        client.close()
    finally:
        endpoint.close()


@pytest.mark.e2e
@pytest.mark.parametrize("primary_and_replica", BINARIES.args[1][:1], indirect=True)
def test_the_whole_loop_with_store_and_queue_behind_a_primary_endpoint_goes_on_after_a_failover(
        primary_and_replica, smtp, tmp_path):
    primary, replica = primary_and_replica
    endpoint = Endpoint(primary)
    env = make_env(f"redis://127.0.0.1:{endpoint.port}/0", smtp.port)  # type: ignore[attr-defined]
    try:
        with Loop(env, tmp_path, pool=("--pool", "prefork", "--concurrency", "2")) as loop:
            first = loop.run(smtp)
            assert first["responses"] == 1
            fail_over(primary, replica, endpoint)
            # web, worker and beat go on as they are: their connections to the demoted primary are refused, or
            # unblocked (a worker waiting on its queue), and connect again through the endpoint.
            second = loop.run(smtp, rating=2, email="ola@example.no", ticket="S-2")
            assert second["responses"] == 1 and second["last_response"]["rating"] == 2
    finally:
        endpoint.close()
    said = "\n".join(loop.outputs()[:3])
    Path("/tmp/said.txt").write_text(said)
    assert "Traceback" not in said and "CRITICAL" not in said, said[-3000:]
