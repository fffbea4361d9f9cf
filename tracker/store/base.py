"""The Redis connection and the Lua scripts every part of the store shares.

TRACKER_REDIS_URL names a standalone Redis, any node of a Redis Cluster, or the Sentinels of a master
(sentinel://): `connect` asks the node (INFO cluster) and serves a cluster with redis-py's cluster client, and
a master behind Sentinel with a client whose connections ask the Sentinels where it is. Either way an outage surfaces as
StorageUnavailable, from a command, a pipeline or a script alike, and a pipeline is a MULTI/EXEC
transaction unless asked otherwise (on a cluster its keys must share one slot).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import hiredis
import redis
from redis.backoff import ExponentialBackoff
from redis.client import EMPTY_RESPONSE, NEVER_DECODE, Pipeline
from redis.cluster import PRIMARY, ClusterNode, ClusterPipeline, RedisCluster, get_node_name
from redis.commands.core import Script as RedisScript
from redis.connection import HIREDIS_AVAILABLE, HiredisRespSerializer  # type: ignore[attr-defined]  # newer than the stubs
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from tracker.config import ConfigError, hide_secrets, read_sentinel_url
from tracker.errors import CERTIFICATE_ALERTS, StorageUnavailable, lasting_cause
from tracker.sentinels import sentinel_refusal
from tracker.store.customer_days import lua_keep_days
from tracker.store.order_value import lua_order_value
from tracker.store.pairs import lua_pairs_lists
from tracker.store.sums import lua_sums
from tracker.store.survey_codes import lua_thaw

# The longest value a hash should be able to hold and stay compact (a listpack): a survey's comment, subject or
# extra answers past Redis's default of 64 bytes turn its hash into a hash table about three times the size.
# docker-compose.yml and `tracker dev` start Redis with it; `tracker check` says when a Redis is set lower.
COMPACT_HASH_VALUE = 512
REDIS_DEFAULT_HASH_VALUE = 64  # hash-max-listpack-value when nobody set it
# Redis being down, loading, failing over or read-only, full (maxmemory reached, writes refused), a cluster
# without a master for some slots or moving slots for longer than the client follows redirects: retrying later
# may succeed. Everything else (a wrong type, a script error, keys of two slots in one command) is a bug and
# stays a redis error.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError,
               redis.exceptions.TryAgainError, redis.exceptions.ReadOnlyError, redis.exceptions.ClusterError,
               redis.exceptions.AskError, redis.exceptions.SlotNotCoveredError,
               redis.exceptions.OutOfMemoryError)  # type: ignore[attr-defined]  # newer than the stubs
# Redis 6.2 reports a write refused inside a script as the script's own error, the refusal after a "-"
# ("Error running script (call to f_…): @user_script:13: @user_script: 13: -OOM command not allowed …"), where
# 7.x replies OOM or READONLY as such: the same outages. Matched at the end of the message, after whatever a
# pipeline put before it (the command and its arguments).
SCRIPT_REFUSAL = re.compile(r"Error running script \(call to f_[0-9a-f]{40}\): @user_script:\d+: @user_script: \d+: "
                            r"-(OOM|READONLY) [^\n]*\Z")
REFUSED_AS = {"OOM": "OutOfMemoryError", "READONLY": "ReadOnlyError"}  # what 7.x raises for each
# The cluster client re-reads the cluster's layout after a failure; these say no node could give it.
LAYOUT_LOST = ("Redis Cluster cannot be connected", "All slots are not covered")
SLOTS = 16384
SETTLE_EVERY = 1.0  # seconds between attempts to learn what a node that did not answer at start-up is
SENTINEL_ASK_EVERY = 5.0  # seconds between a thread's questions to the Sentinels: where is the master now?
SENTINEL_SILENT_AGAIN = 60.0  # ... and after they did not answer


def is_outage(error: BaseException) -> bool:
    """Say whether a Redis error means "unavailable now, retry later" rather than a bug."""
    if isinstance(error, UNAVAILABLE):
        return True
    if isinstance(error, redis.ResponseError):
        return SCRIPT_REFUSAL.search(str(error)) is not None
    if isinstance(error, RedisClusterException):
        return str(error).startswith(LAYOUT_LOST) or (error.__cause__ is not None and is_outage(error.__cause__))
    return False


def demoted(reply: Any) -> bool:
    """Say whether a reply is Redis refusing a write as a replica (READONLY, as such or inside a script's error): the
    master this connection reached was demoted by a failover, and another connection may reach the new one (behind
    Sentinel, or at a managed Redis's primary endpoint, a name that moves to the promoted replica)."""
    if isinstance(reply, redis.exceptions.ReadOnlyError):
        return True
    refused = SCRIPT_REFUSAL.search(str(reply)) if type(reply) is redis.ResponseError else None
    return refused is not None and refused.group(1) == "READONLY"


def outage(error: BaseException) -> StorageUnavailable:
    """Name an outage for the log: its error's type, as Redis 7.x raises it for a write refused in a script; and what
    will not mend by itself (lasting_cause), so the log of every request and task says it: the credentials of
    TRACKER_REDIS_URL refused (a password changed under the running processes), a TLS certificate not trusted."""
    refused = SCRIPT_REFUSAL.search(str(error)) if type(error) is redis.ResponseError else None
    name = REFUSED_AS[refused.group(1)] if refused else type(error).__name__
    lasting = lasting_cause(error)
    if isinstance(lasting, redis.AuthenticationError):
        return StorageUnavailable(f"{name}: the Redis refused the credentials of TRACKER_REDIS_URL "
                                  f"({_first_line(lasting)})")
    if isinstance(lasting, ssl.SSLCertVerificationError):
        return StorageUnavailable(f"{name}: the TLS certificate of the Redis is not trusted "
                                  f"({lasting.verify_message or _first_line(lasting)})")
    if isinstance(lasting, ssl.SSLError):
        return StorageUnavailable(f"{name}: the Redis ended the TLS handshake ({_first_line(lasting)})")
    return StorageUnavailable(name)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _outages_raised(replies: list[Any]) -> list[Any]:
    """Return replies read together, raising StorageUnavailable for the first that says Redis is unavailable (a
    read-only replica after a failover, a slot migrating, a cluster down): other error replies stay in place for
    the caller. Every pipeline's replies pass here, so a caller that turns an error reply into its record's
    failure (a drain parks the event) never does so for an outage: the whole batch is tried again later."""
    for reply in replies:
        if isinstance(reply, Exception) and is_outage(reply):
            raise outage(reply) from reply
    return replies


def raised_first(replies: list[Any]) -> list[Any]:
    """Return a round trip's replies, raising the first that is an error (all of them were read)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


@contextmanager
def _unavailable_as_ours() -> Iterator[None]:
    try:
        yield
    except (redis.RedisError, RedisClusterException) as exc:
        if is_outage(exc):
            raise outage(exc) from exc
        raise


# Up to this many script calls, a pipeline sends them by their source (EVAL) instead of asking SCRIPT EXISTS in a
# round trip of its own first: hashing a few KB in Redis costs less than a round trip; a big batch asks once.
SCRIPTS_BY_SOURCE = 8


class _Pipeline(Pipeline):
    """A pipeline whose outages surface as StorageUnavailable, like single commands; without a transaction (and
    without WATCH) it is sent on the thread's own connection (StoreClient.sent_together)."""

    owner: StoreClient | None = None

    def queues(self, command: str) -> bool:
        """Say whether a command is queued (not run at once), as redis-py's Pipeline decides."""
        return bool(self.explicit_transaction or not (self.watching or command == "WATCH"))

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.queues(args[0]):
            # Queued: nothing reaches Redis, so no outage to translate (and no context manager's cost on each of
            # the tens of thousands of commands a drain queues).
            return self.pipeline_execute_command(*args, **options)
        with _unavailable_as_ours():  # WATCH and the commands after it run at once
            return super().execute_command(*args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.scripts:
            self._scripts_by_source()
        stack = self.command_stack
        if self.owner is None or self.transaction or self.explicit_transaction or self.watching or not stack:
            return self._on_the_pool(raise_on_error)
        try:
            sources = {script.sha: script.script for script in self.scripts}  # called by SHA (_scripts_by_source)
            if self.scripts:
                self._load_scripts(self.owner)
            replies = self.owner.sent_together([args for args, _ in stack], [options for _, options in stack],
                                               sources)
        finally:
            self.reset()
        if raise_on_error:
            with _unavailable_as_ours():
                self.raise_first_error(stack, replies)  # as redis-py raises it: the command named in the message
        return _outages_raised(replies)

    def _on_the_pool(self, raise_on_error: bool) -> list[Any]:
        """Execute as redis-py's pipeline does, on a connection of the pool. One refused READONLY (a master demoted
        under it: nothing was written) leaves every pooled connection and is sent again on a new one, as
        StoreClient.sent_together does, unless keys were watched on the old connection."""
        stack, scripts, watched = list(self.command_stack), set(self.scripts), self.watching
        for attempt in range(_patience[0].retries + 1):
            try:
                with _unavailable_as_ours():
                    return _outages_raised(super().execute(raise_on_error))
            except StorageUnavailable as exc:
                if not demoted(exc.__cause__):
                    raise
                self.connection_pool.disconnect()  # the next connections may reach the new master
                if watched or attempt == _patience[0].retries:
                    raise
            self.command_stack, self.scripts = list(stack), set(scripts)
            time.sleep(_BACKOFF.compute(attempt))
        raise AssertionError("not reached: the last attempt returned or raised")

    def _scripts_by_source(self) -> None:
        """Queue a few script calls as EVAL with their source, so no SCRIPT EXISTS round trip precedes them."""
        sources = {script.sha: script.script for script in self.scripts}
        calls = [n for n, (args, _options) in enumerate(self.command_stack)
                 if len(args) > 1 and args[0] == "EVALSHA" and args[1] in sources]
        if len(calls) > SCRIPTS_BY_SOURCE:
            return
        for n in calls:
            args, options = self.command_stack[n]
            self.command_stack[n] = (("EVAL", sources[args[1]], *args[2:]), options)
        self.scripts = set()

    def _load_scripts(self, owner: StoreClient) -> None:
        """Make sure the many scripts a big batch calls by SHA are on the server, as redis-py's pipeline does (SCRIPT
        EXISTS, then SCRIPT LOAD of those missing), on the thread's own connection: redis-py's pipeline reads every
        reply of the batch through layers a drain of a few hundred commands paid a third of its time for."""
        scripts = list(self.scripts)
        (exists,) = raised_first(owner.round_trip([("SCRIPT EXISTS", *(script.sha for script in scripts))]))
        missing = [("SCRIPT LOAD", script.script) for script, found in zip(scripts, exists, strict=True) if not found]
        if missing:
            raised_first(owner.round_trip(missing))
        self.scripts = set()


class _OwnConnection(threading.local):
    """The connection a thread keeps for the commands it sends together, and the process it was made in (counted
    by forks: a child never writes on its parent's socket)."""

    connection: redis.Connection | None = None
    forks = -1
    ask_sentinels_at = 0.0  # behind Sentinel: when this thread next asks them where the master is


_forks = [0]  # the forks this process descends by: a child's connections made before the fork are not its own
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


def _kernel_timeouts(sock: Any, timeout: float | None) -> None:
    """Bound a blocking socket's sends and receives by the kernel (SO_SNDTIMEO, SO_RCVTIMEO) instead of Python.

    A socket with a Python timeout polls before every send and every receive (CPython's sock_call): a syscall, and
    on a busy web process one more hand-over of the interpreter lock, twice per round trip. Past the timeout the
    call fails with EAGAIN, which redis-py takes as a dropped connection (ConnectionError): retried like a timeout,
    the connection closed. TLS sockets keep Python's timeout.
    """
    if not timeout or type(sock) is not socket.socket:
        return
    seconds = int(timeout)
    value = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)


# The options redis-py's parse_response reads itself, not passed on to a reply's callback.
_READ_OPTIONS = (NEVER_DECODE, EMPTY_RESPONSE, "keys")


class StoreClient(redis.Redis):
    """The store's Redis client: commands, pipelines and Lua scripts raise StorageUnavailable on an outage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own = _OwnConnection()
        self._own_connections: weakref.WeakSet[redis.Connection] = weakref.WeakSet()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on the thread's own connection (sent_together), its reply read as redis-py reads it; an
        error reply raised, an outage (having outlasted the retries) as StorageUnavailable."""
        (reply,) = self.sent_together((args,), (options,) if options else None)
        if isinstance(reply, redis.ResponseError):
            with _unavailable_as_ours():
                raise reply
        return reply

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.owner = self
        return pipe

    def round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands in one write on this thread's own connection and return their replies, an error reply as
        its exception; an outage, in the trip or in a reply (a read-only replica), raises StorageUnavailable."""
        return _outages_raised(self.sent_together(commands))

    def sent_together(self, commands: Sequence[Sequence[Any]], options: Sequence[dict[str, Any]] | None = None,
                      scripts: dict[str, str] | None = None) -> list[Any]:
        """Send commands in one write on this thread's own connection; return their replies as redis-py's pipeline
        reads them (options: each command's, as a pipeline queues them), an error reply as its exception.

        scripts: the source of each script the commands call by SHA (which the caller made sure the server has), loaded
        (SCRIPT LOAD) before the commands go on a new connection: the server there may not have them (a restarted
        Redis, the replica a failover promoted, whose script cache is its own), and a batch refused NOSCRIPT in part
        cannot be sent again whole.

        redis-py's pool checks a connection out and in around every command or pipeline, counting it for telemetry
        and polling its socket for stray bytes, and its pipeline reads each reply through layers of bookkeeping:
        on the receiver's path that was half the cost of a trip. The connection here is one of the pool's kind
        (timeouts, health check, packer), made for the thread and kept by it. A dropped or timed-out trip is
        retried as the client retries its commands, then raises StorageUnavailable; any other failure closes the
        connection, so that no later reply is read out of step.
        """
        own = self._own
        connection = own.connection
        if connection is None or own.forks != _forks[0]:  # a forked child never writes on its parent's socket
            pool = self.connection_pool  # made as the pool makes its own, but not counted among them
            connection = own.connection = pool.connection_class(**pool.connection_kwargs)
            own.forks = _forks[0]
            connection.register_connect_callback(self._connected)
            self._own_connections.add(connection)
        callbacks = self.response_callbacks
        follows_failover = isinstance(connection, SentinelManagedConnection)
        if follows_failover:
            self._on_the_master(connection)
        refused = False  # whether the last trip read a write refused READONLY

        def trip() -> list[Any]:
            nonlocal refused
            refused = False
            fresh = connection._sock is None  # type: ignore[union-attr]
            if follows_failover and fresh:
                # Asks the Sentinels where the master is: a send would connect to the connection's last address (at
                # first redis-py's default, localhost:6379, which may well be another Redis).
                connection.connect()
            if fresh and scripts:  # a new connection, maybe to another server than the one asked: its scripts first
                loads: Any = connection.pack_commands([("SCRIPT LOAD", source) for source in scripts.values()])
                connection.send_packed_command(loads)
                for _source in scripts:
                    try:
                        connection.read_response()
                    except redis.ResponseError:  # the commands' own NOSCRIPT then says so
                        pass
            packed: Any = (connection.pack_command(*commands[0]) if len(commands) == 1
                           else connection.pack_commands(commands))
            connection.send_packed_command(packed)
            replies: list[Any] = []
            for n, command in enumerate(commands):
                given = options[n] if options else None
                try:
                    if given and NEVER_DECODE in given:
                        reply = connection.read_response(disable_decoding=True)
                    else:
                        reply = connection.read_response()
                except redis.ResponseError as error:  # the connection is in step: the error was the reply
                    replies.append(given[EMPTY_RESPONSE] if given and EMPTY_RESPONSE in given else error)
                    refused = refused or demoted(error)
                    continue
                callback = callbacks.get(command[0])  # as execute_command reads it (SET's OK as True, ...)
                if callback is None:
                    replies.append(reply)
                elif given:
                    replies.append(callback(reply, **{k: v for k, v in given.items() if k not in _READ_OPTIONS}))
                else:
                    replies.append(callback(reply))
            return replies

        retries = _patience[0].retries
        with _unavailable_as_ours():
            for attempt in range(retries + 1):
                try:
                    replies: list[Any] = connection.retry.call_with_retry(trip, lambda _error: connection.disconnect())
                except BaseException:
                    connection.disconnect()
                    raise
                if not refused or attempt == retries:
                    return replies
                # A replica now, where nothing was written: the master this connection reached was demoted. A new
                # connection may reach the new one (behind Sentinel, or at a name a managed Redis moved to it).
                connection.disconnect()
                time.sleep(_BACKOFF.compute(attempt))
        return replies  # not reached: the last attempt returned

    def _on_the_master(self, connection: Any) -> None:
        """Behind Sentinel, leave a connection to a server the Sentinels no longer name the master, before a trip.

        A write on a demoted master reads READONLY and is sent again (sent_together), but reads would go on being
        served by it (a replica now) and a master cut off from the Sentinels, not yet demoted, would take writes
        its successor never sees. So each thread asks the Sentinels every SENTINEL_ASK_EVERY seconds (a minute
        after they did not answer: a silent Sentinel holds up one trip a minute, not every few seconds), and any
        connection that reached another address connects again."""
        own, now = self._own, time.monotonic()
        pool = self.connection_pool
        if now >= own.ask_sentinels_at:
            try:
                pool.get_master_address()  # type: ignore[attr-defined]  # a SentinelConnectionPool
                own.ask_sentinels_at = now + SENTINEL_ASK_EVERY
            except redis.RedisError:  # the Sentinels do not answer: the master reached serves on
                own.ask_sentinels_at = now + SENTINEL_SILENT_AGAIN
        named = pool.master_address  # type: ignore[union-attr]
        if named is not None and connection._sock is not None and (connection.host, connection.port) != named:
            connection.disconnect()

    def _connected(self, connection: Any) -> None:
        """Set a kept connection's socket, once connected (again), to be bounded by the kernel's timeouts."""
        _kernel_timeouts(connection._sock, connection.socket_timeout)

    def close(self) -> None:
        for connection in list(self._own_connections):
            connection.disconnect()
        super().close()


class _PendingClient(StoreClient):
    """A standalone client for a node that did not answer at start-up; the store asks it again what it is."""

    url = ""


@dataclass(frozen=True)
class MemoryLimit:
    """One Redis's memory as INFO memory reports it (node: a cluster master's address, "" for a standalone Redis)."""

    node: str
    used: int
    maximum: int  # maxmemory: 0 for none
    policy: str  # maxmemory-policy

    @property
    def evicts(self) -> bool:
        """Whether Redis, once full, deletes keys to make room (the store's keys are its data) instead of refusing
        writes (noeviction: webhooks are then answered 503 and retried, nothing lost)."""
        return self.maximum > 0 and self.policy != "noeviction"


class _FollowsAsk:
    """Follow an ASK redirection to a master the client's layout does not list yet.

    While an operator moves slots to a master just added to the cluster (`redis-cli --cluster rebalance
    --cluster-use-empty-masters`, `reshard`), a command on a key already moved is answered ASK with that master's
    address. redis-py looks the address up by name alone in its cached layout, finds nothing (a master serving no
    slot is not in CLUSTER SLOTS) and fails with an AttributeError (redis-py issue #2432; a MOVED reply adds the
    master, an ASK one does not). The address ASK passes alone, as a name ("host:port") before redis-py 8 and as
    host and port given by position since, is added to the cache here as a master, as a MOVED reply adds it; the
    next full read of the layout replaces it. A lookup by host and port keywords (a pub/sub node) stays a lookup.
    """

    nodes_manager: Any

    def get_node(self, *position: Any, host: str | None = None, port: str | int | None = None,
                 node_name: str | None = None) -> ClusterNode | None:
        if position:  # redis-py 8.2's ASK: get_node(host, port)
            host, port, node_name = (*position, None, None)[:3]
            named = get_node_name(str(host), port) if host and port is not None else None
        else:  # earlier ASK: get_node(node_name=...)
            named = node_name if node_name and not (host or port) else None
        found = self.nodes_manager.get_node(host, port, node_name)
        if found is not None or named is None:
            return found
        address, _, number = named.rpartition(":")
        if not address or not number.isdigit():
            return None
        manager = self.nodes_manager
        with manager._lock:  # the lock redis-py's move_slot holds to add a master a MOVED names
            added: ClusterNode = manager.nodes_cache.setdefault(named, ClusterNode(address, int(number), PRIMARY))
            return added


class _ClusterPipeline(_FollowsAsk, ClusterPipeline):
    """A cluster pipeline whose outages surface as StorageUnavailable, like single commands."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _unavailable_as_ours():  # queues, or runs WATCH and what follows it at once
            return super().execute_command(*args, **kwargs)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _unavailable_as_ours():
            return _outages_raised(super().execute(raise_on_error))


class StoreCluster(_FollowsAsk, RedisCluster):
    """The store's Redis Cluster client: outages raise StorageUnavailable; pipelines are transactions by default."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _unavailable_as_ours():
            return super().execute_command(*args, **kwargs)

    def close(self) -> None:
        """Close the connections to every node (RedisCluster.close leaves those of the node clients open).

        A store opened for the same URL afterwards gets a new client.
        """
        with _clusters_lock:
            for key in [key for key, client in _clusters.items() if client is self]:
                del _clusters[key]
        super().close()
        self._disconnect_nodes()

    def __del__(self) -> None:
        # Never one of _clusters (they hold it): no lock here, as the collector may run while a thread holds one.
        try:
            self._disconnect_nodes()
        except Exception:  # noqa: S110 - a client half built (its cluster was down) has nothing to close
            pass

    def _disconnect_nodes(self) -> None:
        manager: Any = self.nodes_manager
        for node in [*manager.nodes_cache.values(), *manager.startup_nodes.values()]:
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()

    def pipeline(self, transaction: Any = True, shard_hint: Any = None) -> ClusterPipeline:
        """Queue commands as on a standalone Redis: MULTI/EXEC (keys of one slot) unless transaction=False."""
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        parent: Any = self  # built as RedisCluster.pipeline builds it (redis-py 8), with our class
        return _ClusterPipeline(
            nodes_manager=parent.nodes_manager, commands_parser=parent.commands_parser,
            startup_nodes=parent.nodes_manager.startup_nodes, result_callbacks=parent.result_callbacks,
            cluster_response_callbacks=parent.cluster_response_callbacks, read_from_replicas=parent.read_from_replicas,
            load_balancing_strategy=parent.load_balancing_strategy, reinitialize_steps=parent.reinitialize_steps,
            retry=parent.retry, lock=parent._lock, transaction=bool(transaction),
            event_dispatcher=parent._event_dispatcher)


@dataclass(frozen=True)
class Patience:
    """How long a store's client waits on its Redis: each read or write (socket_timeout), each connection
    (connect_timeout), how often a dropped or timed-out trip is tried again (retries), and whether a node that does
    not answer when the store is opened gets a client that waits for it (waits: the processes, which serve as soon
    as Redis is back) or StorageUnavailable at once (an operator's command, which says so and ends)."""

    socket_timeout: float = 5
    connect_timeout: float = 3
    retries: int = 3
    waits: bool = True


PROCESSES = Patience()
# An operator's command: a silent server (one that accepts and never answers, or a TLS handshake with a plain Redis)
# is said so after two tries of five seconds, not after a minute of tries spread over the store's first commands.
INTERACTIVE = Patience(retries=1, waits=False)
_patience = [PROCESSES]


@contextmanager
def patience(chosen: Patience) -> Iterator[None]:
    """Open the stores made inside with this patience (the `tracker` commands an operator waits on: INTERACTIVE)."""
    before, _patience[0] = _patience[0], chosen
    try:
        yield
    finally:
        _patience[0] = before


# Between a dropped or timed-out trip and the next, and between a trip refused READONLY and the next (stateless).
_BACKOFF = ExponentialBackoff(cap=0.5, base=0.02)


def _retry() -> Retry:
    return Retry(_BACKOFF, _patience[0].retries)


class _Packer:
    """Pack a command for the wire with hiredis at once. redis-py's own hiredis packer first copies every argument
    through a Python generator (turning byte arrays and memory views, which the store never sends, into bytes):
    about a microsecond an argument, which an HMGET of a range of days' fields pays a hundred times over."""

    _fallback = HiredisRespSerializer()

    def pack(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT EXISTS": a command of two words
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a type hiredis takes not (None, a byte array): redis-py's own packer, or its DataError
            return self._fallback.pack(*args)


def _packer() -> dict[str, Any]:
    """The connections' packer, as from_url's keyword (redis-py packs with hiredis only when it is installed)."""
    return {"command_packer": _Packer()} if HIREDIS_AVAILABLE else {}


class _PackedConnection(redis.Connection):
    """A cluster node's connection, with the packer: the cluster client passes no command_packer to its nodes, only
    a connection class (which a rediss:// URL replaces with redis-py's SSL one, packed the usual way)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**_packer(), **kwargs})


def _standalone(url: str, kind: type[StoreClient] = StoreClient) -> Any:
    # Never hang for long on a node that accepts and does not answer (the cluster client's nodes alike).
    waiting = _patience[0]
    return kind.from_url(url, decode_responses=True, socket_timeout=waiting.socket_timeout,
                         socket_connect_timeout=waiting.connect_timeout, health_check_interval=30, retry=_retry(),
                         retry_on_error=[redis.ConnectionError, redis.TimeoutError], **_packer())


def _behind_sentinel(url: str) -> StoreClient:
    """The store's client for the master of a sentinel:// URL (its Sentinels, the master's name, credentials and
    database, the Sentinels' own credentials and the TLS options, as the broker's URL gives them). Each connection,
    a thread's own and the pool's alike, asks the Sentinels where the master is when it connects; one still on a
    master a failover demoted reads READONLY and connects again (StoreClient.sent_together), so the store follows a
    failover by itself, unavailable only while the Sentinels elect the new master."""
    sentinel = read_sentinel_url(url, "TRACKER_REDIS_URL")
    waiting = _patience[0]
    sockets = {"socket_timeout": waiting.socket_timeout, "socket_connect_timeout": waiting.connect_timeout}
    user, password = sentinel.master_credentials
    tls = sentinel.tls_options
    manager = Sentinel(list(sentinel.sentinels), sentinel_kwargs={**sockets, **sentinel.sentinel_kwargs})
    client = cast(StoreClient, manager.master_for(
        # host, port: where a connection would go if it ever connected without asking the Sentinels (redis-py's
        # default is localhost:6379, which may be another Redis): nowhere.
        sentinel.master_name, redis_class=StoreClient, host="127.0.0.1", port=0, db=int(sentinel.database or 0),
        username=user, password=password, decode_responses=True, health_check_interval=30, retry=_retry(),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError], **sockets, **_packer(),
        **({"ssl": True, **tls} if tls is not None else {})))
    return client


def _sentinel_store(url: str) -> StoreClient:
    """connect() for a sentinel:// URL: the client, once its master answered or did not (then the processes wait for
    it, an operator's command says so); what refuses the tracker for good raises ConfigError in one line."""
    client = _behind_sentinel(url)
    try:
        client.ping()
    except (redis.ResponseError, redis.exceptions.InvalidResponse) as exc:
        client.close()
        raise ConfigError(refusal(url, exc)) from None
    except StorageUnavailable:
        # redis-py reads a Sentinel refusing the URL's credentials as not answering: ask each the way kombu is asked.
        if (refused := sentinel_refusal(url, "TRACKER_REDIS_URL")) is not None:
            client.close()
            raise ConfigError(refused) from None
        if not _patience[0].waits:
            client.close()
            raise
    return client


# One cluster client per process and URL, shared by every store: learning the layout costs round trips (CLUSTER
# SLOTS, COMMAND), and redis-py's cluster client refers to itself, so one left to the garbage collector would be
# collected as a cycle, its sockets finalized in any order (some before the connections that close them).
_clusters: dict[tuple[str, int, Patience], StoreCluster] = {}
_clusters_lock = threading.RLock()


def _cluster(url: str) -> StoreCluster:
    # The cluster client retries ConnectionError, TimeoutError and CLUSTERDOWN itself, re-reading the layout
    # between attempts; the node connections under it get the same timeouts and no retry of their own.
    waiting = _patience[0]
    with _clusters_lock:
        client = _clusters.get((url, os.getpid(), waiting))
        if client is None:
            with _unavailable_as_ours():
                client = StoreCluster.from_url(url, decode_responses=True, socket_timeout=waiting.socket_timeout,
                                               socket_connect_timeout=waiting.connect_timeout, retry=_retry(),
                                               connection_class=_PackedConnection)
            _clusters[(url, os.getpid(), waiting)] = client
        return client


def server_hello(client: Any) -> dict[str, Any]:
    """Return what HELLO (without arguments: the protocol stays as it is) says of the server: server, version, proto,
    mode (standalone, cluster or sentinel), role. Every user may say HELLO, where INFO is one of Redis 7's @dangerous
    commands, which an operator's ACL user may well be denied."""
    reply = client.execute_command("HELLO")
    if isinstance(reply, list):  # RESP2: name, value, name, value, ...
        reply = dict(zip(reply[::2], reply[1::2], strict=False))
    return {_text(name): _text(value) if isinstance(value, bytes) else value for name, value in reply.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_cluster_node(client: redis.Redis) -> bool:
    """Ask a node whether it runs in cluster mode; StorageUnavailable when it does not answer."""
    try:
        return int(client.info("cluster").get("cluster_enabled", 0)) == 1
    except redis.exceptions.NoPermissionError:  # an ACL user without INFO (-@dangerous): HELLO names the mode too
        return server_hello(client).get("mode") == "cluster"
    except redis.ResponseError as exc:
        if "SELECT is not allowed in cluster mode" in str(exc):
            raise ConfigError("TRACKER_REDIS_URL names a node of a Redis Cluster with a database other than 0; "
                              "a cluster has database 0 only") from None
        raise


# The port a server listens on when its URL names none, by the URL's scheme (a broker's URL may be RabbitMQ's).
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}


def _where(url: str, variable: str = "TRACKER_REDIS_URL") -> str:
    """The host:port (or socket path) a Redis or RabbitMQ URL names, for a message; for a master behind Sentinel, its
    name and the Sentinels'."""
    if url.startswith("sentinel://"):
        try:
            sentinel = read_sentinel_url(url, variable)
        except ConfigError:
            return variable
        hosts = ", ".join(f"{host}:{port}" for host, port in sentinel.sentinels)
        return f"{sentinel.master_name!r} (the master of the Sentinels at {hosts})"
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname}:{parts.port or DEFAULT_PORTS.get(parts.scheme, 6379)}"
    except ValueError:
        return variable


def _user(url: str) -> str:
    """Say whose credentials a Redis URL gives: its ACL user's, or the default user's (a password alone)."""
    try:
        parts = urlsplit(url)
        named = parts.username or dict(parse_qsl(parts.query)).get("username")
    except ValueError:
        named = None
    return f"the ACL user {unquote(named)!r}" if named else "the default user"


def _has_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.password or dict(parse_qsl(parts.query)).get("password"))
    except ValueError:
        return False


def certificate_alert(url: str, error: BaseException) -> ssl.SSLError | None:
    """Ask a TLS server whose connections ended at once (an EOF, a reset) whether it wants a client certificate: one
    handshake, then a read of what it sends unasked (a Redis sends nothing: a second at most), nothing sent. Its
    alert (CERTIFICATE_ALERTS) when it says so, else None. A Redis with tls-auth-clients yes ends a connection
    without a certificate just after the TLS 1.3 handshake, which the client may see first as its write failing,
    like a server going down."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    ended = (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)
    if not url.startswith("rediss://") or not any(isinstance(link, ended) for link in chain):
        return None
    try:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only the server's alert is read
    try:
        if query.get("ssl_certfile"):
            context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile") or None,
                                    password=query.get("ssl_password") or (lambda: ""))
        with socket.create_connection((host, port), timeout=3) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(1)
            tls.recv(64)
    except ssl.SSLError as alert:
        return alert if alert.reason in CERTIFICATE_ALERTS else None
    except OSError:
        return None
    return None


def refusal(url: str, error: BaseException, variable: str = "TRACKER_REDIS_URL") -> str:
    """Say in one line, naming the variable, why the server at url cannot serve though it answers: it does not speak
    Redis (a RabbitMQ, a database or a web server on that port), it refused the credentials or the database, its ACL
    denies a command the tracker needs, or its TLS certificate is not trusted (a Redis's, or an amqps:// broker's).
    No secret of the URL is shown."""
    if url.startswith("sentinel://") and isinstance(error, (redis.ConnectionError, ssl.SSLError)):
        # Credentials or TLS refused, by a Sentinel or the master: asked of each, as sentinel_findings says which.
        if (refused := sentinel_refusal(url, variable)) is not None:
            return refused
    reason = hide_secrets((str(error).strip().splitlines() or [type(error).__name__])[0], url)
    where = _where(url, variable)
    server = "RabbitMQ" if url.startswith(("amqp://", "amqps://")) else "Redis"
    if isinstance(error, redis.exceptions.InvalidResponse):
        return f"{variable}: the server at {where} does not speak Redis ({reason})"
    if isinstance(error, redis.AuthenticationError):
        if not _has_password(url):  # Redis's reason (NOAUTH, or HELLO's long one) says no more than this
            return (f"{variable}: the Redis at {where} wants a password, and the URL gives none: give it in the URL, "
                    f"redis://:PASSWORD@{where}/0, or redis://USER:PASSWORD@{where}/0 for an ACL user")
        return (f"{variable}: the Redis at {where} refused the credentials in the URL ({_user(url)} and its password): "
                f"{reason}")
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = hide_secrets(str(error.verify_message or error.reason or error).rstrip("."), url)
        return (f"{variable}: the TLS certificate of the {server} at {where} is not trusted ({reason}): name the CA "
                f"that signed it with ?ssl_ca_certs=/path/to/ca.pem (ssl_check_hostname=false if it was made for "
                f"another name; ssl_cert_reqs=none checks nothing)")
    if isinstance(error, ssl.SSLError):  # an alert of CERTIFICATE_ALERTS
        given = "ssl_certfile" in url
        trusted = "ssl_options.cacertfile" if server == "RabbitMQ" else "tls-ca-cert-file"
        return (f"{variable}: the {server} at {where} ended the TLS handshake ({_first_line(error)}): "
                + (f"it does not take the client certificate of ssl_certfile (one signed by a CA its {trusted} "
                   "names, and not expired, is needed)" if given else
                   "it wants a client certificate: give ssl_certfile and ssl_keyfile in the URL, signed by a CA its "
                   f"{trusted} names"))
    if isinstance(error, redis.exceptions.NoPermissionError):
        return (f"{variable}: the Redis at {where} does not let {_user(url)} run a command the tracker needs "
                f"({reason}): it needs every command but Redis's @dangerous ones (ACL SETUSER <user> ~* &* +@all "
                f"-@dangerous)")
    if "DB index" in reason or "invalid DB" in reason.lower():
        return f"{variable}: the Redis at {where} refused the database: {reason}"
    return f"{variable}: the Redis at {where} refused the tracker's command: {reason}"


def connect(url: str) -> Any:
    """Open the store's client for url: a cluster client when the node there is part of a Redis Cluster.

    A node that does not answer yet gets a standalone client whose commands raise StorageUnavailable; the store
    asks the node again (RedisBase.redis) and switches to a cluster client if it turns out to be one. With an
    impatient Patience (an operator's command) it raises StorageUnavailable instead. A server that answers but
    cannot be the store (not Redis, a database or the credentials it refuses, a TLS certificate not trusted) raises
    ConfigError saying so (refusal): no process waits for a password or a certificate that will not change by itself.
    """
    if url.startswith("sentinel://"):  # a master behind Sentinel is never a cluster node
        return _sentinel_store(url)
    client = _standalone(url)
    try:
        clustered = _is_cluster_node(client)
    except (redis.ResponseError, redis.exceptions.InvalidResponse) as exc:
        client.close()
        raise ConfigError(refusal(url, exc)) from None
    except StorageUnavailable as exc:
        client.close()
        if (lasting := lasting_cause(exc) or certificate_alert(url, exc)) is not None:
            raise ConfigError(refusal(url, lasting)) from None
        if not _patience[0].waits:
            raise
        pending = _standalone(url, _PendingClient)
        pending.url = url
        return pending
    if not clustered:
        return client
    client.close()
    return _cluster(url)


# Where a script gets Lua that Python writes from the rule it keeps: "--#thaw" survey_codes.lua_thaw() (a script
# that reads or writes a survey's fields), "--#days" customer_days.lua_keep_days() (one that writes a customer's
# day buckets), "--#sums" sums.lua_sums() (one that takes an entity's sums off its hash), "--#order_value"
# order_value.lua_order_value() (one that sums a customer's live order value), "--#pairs" pairs.lua_pairs_lists()
# (one that reads lists of field/value pairs that pairs.pairs_args wrote).
INCLUDES: dict[str, Callable[[], str]] = {"--#thaw\n": lua_thaw, "--#days\n": lua_keep_days, "--#sums\n": lua_sums,
                                          "--#order_value\n": lua_order_value, "--#pairs\n": lua_pairs_lists}


@cache
def _source(name: str) -> str:
    source = resources.files("tracker.store").joinpath("lua", f"{name}.lua").read_text("utf-8")
    for line, text in INCLUDES.items():
        if line in source:
            source = source.replace(line, text(), 1)
    return _without_comments(source)


def _without_comments(source: str) -> str:
    """Return a script with its comment lines emptied: half of what the scripts hold, sent with every EVAL by source
    (and hashed by Redis for each); the lines keep their numbers, so Redis's error messages still point at them."""
    return "\n".join("" if line.lstrip().startswith("--") else line for line in source.split("\n"))


class Script:
    """A packaged Lua script, called with keys and args, on the store's client or queued in a pipeline.

    It runs by SHA (loaded on a miss); redis-py refuses EVALSHA in a cluster pipeline, so there it is queued
    as EVAL with the source.
    """

    def __init__(self, base: RedisBase, name: str):
        self.name, self.source, self._base = name, _source(name), base
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        self._by_sha: RedisScript | None = None

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None) -> Any:
        target = self._base.redis if client is None else client
        if type(target) is _Pipeline and target.queues("EVALSHA"):
            # Queued as redis-py's Script queues it (SHA, the script noted for execute), without its layers: a
            # drain queues thousands of script calls.
            target.scripts.add(self._redis_script())
            return target.pipeline_execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        if isinstance(target, ClusterPipeline):
            return target.execute_command("EVAL", self.source, len(keys), *keys, *args)
        return self._redis_script()(keys=list(keys), args=list(args), client=target)

    def _redis_script(self) -> RedisScript:
        if self._by_sha is None:
            self._by_sha = RedisScript(self._base.redis, self.source)
        return self._by_sha


@dataclass(frozen=True)
class ClusterState:
    """What the nodes of a Redis Cluster say about it (CLUSTER INFO), and which known nodes do not answer."""

    state: str
    slots_assigned: int
    slots_ok: int
    known_nodes: int
    masters: int
    unreachable: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "ok" and self.slots_ok == SLOTS and not self.unreachable

    def reason(self) -> str:
        """Say in one line why the cluster cannot serve every slot ("" when it can)."""
        if self.unreachable:
            return f"cluster node{'s' if len(self.unreachable) > 1 else ''} {', '.join(self.unreachable)} " \
                   f"{'do' if len(self.unreachable) > 1 else 'does'} not answer"
        if not self.ok:
            return f"cluster_state is {self.state}: {self.slots_ok} of {SLOTS} slots served " \
                   f"({self.slots_assigned} assigned)"
        return ""

    def summary(self) -> str:
        return f"cluster_state {self.state}, {self.masters} masters, {self.known_nodes} known nodes, " \
               f"{self.slots_assigned} of {SLOTS} slots assigned"


def _cluster_info(client: RedisCluster, node: Any) -> dict[str, str]:
    info = client.get_redis_connection(node).execute_command("CLUSTER INFO")
    return {str(name): str(value) for name, value in info.items()}


def cluster_state(client: RedisCluster) -> ClusterState:
    """Ask every node the client knows for CLUSTER INFO; the worst answer wins, silent nodes are named."""
    views: list[dict[str, str]] = []
    unreachable: list[str] = []
    silent: BaseException | None = None  # why the last silent node did not answer (credentials refused, say)
    for attempt in range(2):
        views, unreachable = [], []
        for node in client.get_nodes():
            try:
                views.append(_cluster_info(client, node))
            except UNAVAILABLE as exc:
                unreachable.append(node.name)
                silent = exc
        if not unreachable or attempt:
            break
        # A node the client still knows may have been failed over and left the layout: read it again, once.
        with _unavailable_as_ours():
            client.nodes_manager.initialize()
    if not views:
        raise StorageUnavailable("no node of the Redis Cluster answers") from silent
    view = next((v for v in views if v.get("cluster_state") != "ok"), views[0])
    return ClusterState(state=view.get("cluster_state", "?"),
                        slots_assigned=int(view.get("cluster_slots_assigned", 0)),
                        slots_ok=int(view.get("cluster_slots_ok", 0)),
                        known_nodes=int(view.get("cluster_known_nodes", 0)),
                        masters=int(view.get("cluster_size", 0)), unreachable=tuple(unreachable))


class RedisBase:
    """Holds the client and runs the packaged Lua scripts by name."""

    def __init__(self, client: Any):
        self._client = client
        self._pending = isinstance(client, _PendingClient)
        self._settling = threading.Lock()
        self._next_settle = 0.0
        self._scripts: dict[str, Script] = {}

    @property
    def redis(self) -> Any:
        """The client: a StoreClient (standalone Redis) or a StoreCluster; both speak the same commands."""
        if self._pending:
            self._settle()
        return self._client

    def _settle(self) -> None:
        # The node did not answer at start-up: once it does, keep the standalone client or switch to a cluster one.
        if time.monotonic() < self._next_settle or not self._settling.acquire(blocking=False):
            return
        try:
            self._next_settle = time.monotonic() + SETTLE_EVERY
            pending = self._client
            try:
                clustered = _is_cluster_node(pending)
                client = _cluster(pending.url) if clustered else pending
            except StorageUnavailable:
                return
            self._client, self._pending = client, False
            if client is not pending:
                pending.close()
        finally:
            self._settling.release()

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.redis, RedisCluster)

    def round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands together and return their replies, an error reply as its exception: on a standalone Redis
        in one write on the thread's own connection (StoreClient.round_trip), on a cluster by a pipeline without
        a transaction (a trip per node)."""
        client = self.redis
        if isinstance(client, StoreClient):
            return client.round_trip(commands)
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))

    def script(self, name: str) -> Script:
        if name not in self._scripts:
            self._scripts[name] = Script(self, name)
        return self._scripts[name]

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def sentinel_master(self) -> tuple[str, str] | None:
        """Behind Sentinel, the master's name and the address the store's connections last learned of the Sentinels
        ("" before any connected); None when the store is not behind Sentinel. No round trip."""
        pool = getattr(self.redis, "connection_pool", None)
        if not isinstance(pool, SentinelConnectionPool):
            return None
        address = getattr(pool, "master_address", None)  # the stubs know it not
        return pool.service_name, f"{address[0]}:{address[1]}" if address else ""

    def cluster_state(self) -> ClusterState | None:
        """Return the Redis Cluster's state as its nodes see it; None on a standalone Redis."""
        client = self.redis
        return cluster_state(client) if isinstance(client, RedisCluster) else None

    def _node_clients(self, primaries: bool) -> list[tuple[str, Any]]:
        """Return (name, client) for the one Redis, or for each node of a cluster (its masters alone if primaries):
        what a command about the server itself (INFO, CONFIG) is asked of. The name is "" for a standalone Redis."""
        client = self.redis
        if not isinstance(client, RedisCluster):
            return [("", client)]
        nodes = client.get_primaries() if primaries else client.get_nodes()
        return [(node.name, client.get_redis_connection(node)) for node in nodes]

    def memory_limits(self, refused: bool = False) -> list[MemoryLimit]:
        """Return each master's memory in use, its maxmemory (0: none) and maxmemory-policy (INFO memory, which a
        managed Redis that refuses CONFIG still answers): what `tracker check` and /metrics look at. None at all when
        the ACL user may not run INFO (one of Redis 7's @dangerous commands): /metrics leaves the gauges out; with
        refused=True the NoPermissionError is raised instead (`tracker check` says what it cannot tell)."""
        found = []
        for name, connection in self._node_clients(primaries=True):
            try:
                info = connection.info("memory")
            except redis.exceptions.NoPermissionError:
                if refused:
                    raise
                return []
            found.append(MemoryLimit(name, int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)),
                                     str(info.get("maxmemory_policy", "noeviction"))))
        return found

    def server_version(self) -> str:
        """Return the Redis version (of the node asked first, on a cluster): INFO server, or HELLO for an ACL user
        that may not run INFO."""
        client = self._node_clients(primaries=True)[0][1]
        try:
            return str(client.info("server").get("redis_version", "?"))
        except redis.exceptions.NoPermissionError:
            return str(server_hello(client).get("version", "?"))

    def refused_reads(self) -> list[str]:
        """Name the reads about the server itself that the ACL user may not run, on some node: INFO and CONFIG GET,
        Redis 7's @dangerous commands, which only `tracker check` (eviction, persistence, compact encodings) and the
        memory gauges of /metrics use. Empty when it may run both."""
        refused: dict[str, None] = {}
        for _name, connection in self._node_clients(primaries=False):
            for command in (("INFO", "server"), ("CONFIG", "GET", "maxmemory-policy")):
                try:
                    connection.execute_command(*command)
                except redis.exceptions.NoPermissionError:
                    refused[" ".join(command[:2]) if command[0] == "CONFIG" else command[0]] = None
        return list(refused)

    def compact_hash_value(self) -> int | None:  # compared with COMPACT_HASH_VALUE by `tracker check`
        """Return the longest value a hash may hold and stay compact (hash-max-listpack-value, or its Redis 6.2
        name hash-max-ziplist-value; the smallest of a cluster's nodes), None when CONFIG GET is refused."""
        return self._compact_limit("hash-max-*-value")

    def compact_zset_entries(self) -> int | None:  # compared with time_index.CHUNK by `tracker check`
        """Return how many entries a sorted set may hold and stay compact (zset-max-listpack-entries, or
        zset-max-ziplist-entries; the smallest of a cluster's nodes), None when CONFIG GET is refused."""
        return self._compact_limit("zset-max-*-entries")

    def compact_hash_entries(self) -> int | None:  # compared with the filing hashes' fill by `tracker check`
        """Return how many fields a hash may hold and stay compact (hash-max-listpack-entries, or
        hash-max-ziplist-entries; the smallest of a cluster's nodes), None when CONFIG GET is refused."""
        return self._compact_limit("hash-max-*-entries")

    def volatile_nodes(self) -> list[str] | None:
        """Return the masters that keep nothing on disk (no append-only file, no snapshot rule: a restart empties
        them), by address ("" for a standalone Redis); None when INFO or CONFIG GET is refused, so it cannot be told."""
        found = []
        for name, connection in self._node_clients(primaries=True):
            try:
                if int(connection.info("persistence").get("aof_enabled", 0)):
                    continue
            except redis.exceptions.NoPermissionError:  # an ACL user without INFO (-@dangerous)
                return None
            try:
                reply = connection.execute_command("CONFIG", "GET", "save")
            except redis.ResponseError:  # a managed Redis may not allow CONFIG
                return None
            rules = reply.get("save") if isinstance(reply, dict) else (reply[1] if len(reply) > 1 else "")
            if not str(rules or "").strip():
                found.append(name)
        return found

    def _compact_limit(self, pattern: str) -> int | None:
        found: list[int] = []
        for _name, connection in self._node_clients(primaries=False):
            try:
                reply = connection.execute_command("CONFIG", "GET", pattern)
            except redis.ResponseError:  # a managed Redis may not allow CONFIG
                return None
            pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
            found += [int(value) for _, value in pairs if str(value).isdigit()]
        return min(found) if found else None
