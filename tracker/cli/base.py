"""What every `tracker` subcommand shares: the usage error, the settings it needs, the store."""

from __future__ import annotations

import io
import os
import ssl
from typing import Any, NoReturn, TextIO

from tracker.config import ConfigError, Settings, load_settings, redact_url

# What Celery can use as a broker beside a Redis Cluster store (kombu has no cluster transport).
USABLE_BROKERS = ("a standalone Redis (redis://, or sentinel://…?master_name=… for Sentinel) or RabbitMQ (amqp://, or "
                  "amqps:// over TLS)")


class UsageError(Exception):
    """A command line that names something wrong; the message says what."""


class OutputFailed(Exception):
    """Writing the command's output failed: the reader of the pipe went away, or the disk is full."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


def discard(stream: TextIO) -> None:
    """Point the file descriptor under stream at /dev/null: what is still buffered for an output that failed goes
    nowhere, so flushing it again (Python does at exit) fails no more. The Python docs' recipe for SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # no descriptor of its own (a test's captured output): nothing will be flushed to it at exit


class GuardedOutput(io.TextIOBase):
    """The command's standard output: a write or flush that fails raises OutputFailed (which no command mistakes
    for a failure of its own), once; from then on what is written is discarded, and `failed` says why."""

    def __init__(self, wrapped: TextIO):
        super().__init__()
        self.wrapped = wrapped
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        if self.failed is None:
            try:
                self.wrapped.write(text)
            except OSError as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if self.failed is None:
            try:
                self.wrapped.flush()
            except OSError as exc:
                self._fail(exc)

    def _fail(self, error: OSError) -> NoReturn:
        self.failed = error
        discard(self.wrapped)
        raise OutputFailed(error) from None

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    def fileno(self) -> int:
        return self.wrapped.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.wrapped.encoding


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """Return a count with its noun in the right number: "1 row", "4 rows", "1 solve is"."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def settings_for(needs: str = "all") -> Settings:
    """Read the settings from the environment: "all" for the processes, "store" for store-only commands.

    The processes (web, worker, beat) also refuse at start-up a broker Celery cannot use, and operator mail
    templates that fail to render a sample survey (tracker.surveys.template_check).
    """
    settings = load_settings(os.environ, needs=needs)
    if needs == "all":
        from tracker.surveys.template_check import check_mail_templates

        check_mail_templates(settings)
        refuse_unusable_broker(settings)
        refuse_old_layout(settings)
    return settings


OLD_LAYOUT = ("TRACKER_REDIS_URL holds data an earlier version wrote with its own key names: export it with that "
              "version (tracker export-log FILE), then replay it into an empty Redis with this one (tracker replay "
              "FILE)")
UNMARKED_LAYOUT = ("TRACKER_REDIS_URL holds data written with the previous key layout (each answer in a hash of its "
                   "own): stop web, worker and beat, run `tracker upgrade-store` once, then start them again")
BEHIND_LAYOUT = ("TRACKER_REDIS_URL holds key layout 3, 4, 5, 6, 7, 8, 9 or 10 (t:layout), which this version brings"
                 " over in place (layouts 3 and 4 store the surveys' fields by name, layout 3's rollups lack the "
                 "crossed sums and follow-up reasons, the closed surveys of layouts 3 to 5 are not settled, layouts "
                 "3 to 6 keep no at-risk ranking, layouts 3 to 7 index answers and sent surveys by time in one "
                 "sorted set each, layouts 3 to 8 keep each settled survey in a key of its own, layouts 3 to 9 keep "
                 "each entity's high-water marks and each customer's sums in hashes of their own, and all of them "
                 "name a customer whose address begins with } with an empty hash tag): stop web, worker and beat, "
                 "run `tracker upgrade-store` once (it renames the fields, settles and files the closed surveys, "
                 "moves the ranked sets, fills the at-risk ranking, moves the time indexes into chunks, moves the "
                 "sums and marks, renames those customers' keys and, from layout 3, rebuilds the scores), then start"
                 " them again")


def layout_problem(state: str) -> str | None:
    """Say in one line why a Redis in this layout state (Store.layout_state) cannot be used, or None."""
    from tracker.store import keys
    from tracker.store.layout import BEHIND, CURRENT, EMPTY, PRE_CLUSTER, UNMARKED

    if state in (CURRENT, EMPTY):
        return None
    if state == BEHIND:
        return BEHIND_LAYOUT
    if state == PRE_CLUSTER:
        return OLD_LAYOUT
    if state == UNMARKED:
        return UNMARKED_LAYOUT
    return (f"TRACKER_REDIS_URL holds key layout {state} ({keys.LAYOUT}), which this version does not know (it "
            f"writes layout {keys.LAYOUT_VERSION}): run the version that wrote it")


def refuse_old_layout(settings: Settings) -> None:
    """Raise ConfigError when the store's Redis holds an earlier key layout (nothing would read it)."""
    from tracker.errors import StorageUnavailable

    try:
        open_store(settings)  # refuses, and marks an empty Redis as this layout's
    except StorageUnavailable:
        return  # not up yet: the processes wait for it


def open_store(settings: Settings, layout_checked: bool = True) -> Any:
    """Open the Redis store the settings name (a standalone Redis or a Redis Cluster, found out by asking).

    An empty Redis is marked as this key layout's; one holding an earlier layout raises ConfigError (one line
    naming the way over) unless layout_checked is False (`tracker upgrade-store`, `tracker check`).
    """
    from tracker.store import Store

    store = Store.from_url(settings.redis_url)
    if layout_checked and (problem := layout_problem(store.noted_layout or store.note_layout())):
        raise ConfigError(problem)
    return store


def _is_cluster_node(url: str) -> bool | None:
    """Ask the Redis at url whether it is a cluster node; None when it does not answer, or cannot be read (nothing
    to refuse yet: Celery says what is wrong with it). One try of three seconds: a silent broker holds up no start.
    A Redis that refuses the URL's credentials, or whose TLS certificate is not trusted, raises ConfigError naming
    TRACKER_BROKER_URL: Celery would try it again for ever, a stack trace each time."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tracker.store.base import server_hello

    try:
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0))
    except (ValueError, TypeError, redis.RedisError):  # a URL redis-py cannot read (load_settings refuses those)
        return None
    try:
        try:
            return int(client.info("cluster").get("cluster_enabled", 0)) == 1
        except redis.exceptions.NoPermissionError:  # an ACL user without INFO (-@dangerous): HELLO names the mode
            return str(server_hello(client).get("mode")) == "cluster"
    except redis.ResponseError as exc:  # SELECT <db> on a cluster node
        return "cluster mode" in str(exc)
    except redis.RedisError as exc:
        if (problem := broker_refusal(url, exc)) is not None:
            raise ConfigError(problem) from None
        return None
    finally:
        client.close()


def broker_refusal(url: str, error: BaseException) -> str | None:
    """Say in one line naming TRACKER_BROKER_URL why the broker will not let the tracker in until an operator acts:
    a Redis or RabbitMQ whose TLS certificate is not trusted (tracker.store.base.refusal), a Redis that refuses the
    credentials, a RabbitMQ that refuses the login or the vhost, or a port of an amqps:// URL that speaks no TLS. None
    for anything else (down, slow: Celery waits for it). A broker behind Sentinel is asked by tracker.sentinels."""
    from amqp.exceptions import AccessRefused, NotAllowed

    from tracker.config import hide_secrets
    from tracker.errors import lasting_cause
    from tracker.store.base import certificate_alert, refusal

    seen: BaseException | None = error
    for _ in range(8):  # kombu wraps what the client raised (OperationalError from the AMQP or redis error)
        if seen is None:
            break
        if isinstance(seen, (AccessRefused, NotAllowed)):
            reason = hide_secrets(" ".join(str(seen).split()), url)
            parts = _split(url)
            what = (f"the login of user {parts[0]!r}" if isinstance(seen, AccessRefused)
                    else f"the vhost {parts[2]!r} to user {parts[0]!r} (it does not exist, or the user has no "
                         f"permissions there: rabbitmqctl set_permissions -p <vhost> <user> '.*' '.*' '.*')")
            return f"TRACKER_BROKER_URL: RabbitMQ at {parts[1]} refused {what}: {reason}"
        if (lasting := lasting_cause(seen)) is not None:
            return refusal(url, lasting, "TRACKER_BROKER_URL")
        if url.startswith("amqps://") and isinstance(seen, ssl.SSLError) and seen.reason in NOT_TLS:
            return _not_tls(url, seen)
        seen = seen.__cause__ or seen.__context__
    alert = certificate_alert(url, error)
    return refusal(url, alert, "TRACKER_BROKER_URL") if alert is not None else None


# What OpenSSL says of a handshake answered by a server that speaks no TLS (RabbitMQ's plain port answers a TLS hello
# with its AMQP protocol header).
NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def _not_tls(url: str, error: BaseException) -> str:
    """Say in one line that the port of an amqps:// URL speaks no TLS: RabbitMQ's plain AMQP port when it answers
    AMQP's protocol header as RabbitMQ does (one short connection asks it)."""
    import socket

    where = _split(url)[1]
    host, _, port = where.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as plain:
            plain.sendall(AMQP_HEADER)
            plain.settimeout(3)
            answer = plain.recv(8)
    except (OSError, ValueError):
        answer = b""
    if answer.startswith(b"\x01\x00\x00"):  # connection.start, a method frame on channel 0
        return (f"TRACKER_BROKER_URL: RabbitMQ at {where} speaks plain AMQP, not TLS: amqps:// needs its TLS listener "
                f"(port 5671 unless it is set otherwise), or write amqp:// for this port")
    said = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (f"TRACKER_BROKER_URL: the server at {where} speaks no TLS ({said}): amqps:// needs RabbitMQ's TLS "
            f"listener (port 5671 unless it is set otherwise)")


def _split(url: str) -> tuple[str, str, str]:
    """The user, host:port and vhost an amqp:// or amqps:// URL names, for a message (never its password)."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        return (unquote(parts.username or "guest"), f"{parts.hostname}:{port}",
                unquote(parts.path[1:]) if len(parts.path) > 1 else "/")
    except ValueError:
        return "?", "?", "?"


def _amqp_refusal(url: str) -> str | None:
    """Log in to the RabbitMQ at url once, as kombu reads the URL, over TLS as Celery does for amqps:// (three seconds
    at most for each step: kombu's own connect tries again after two seconds) and say why it refuses the tracker
    (broker_refusal); None when it lets it in or does not answer (down: the processes wait for it, as Celery does)."""
    from amqp import Connection
    from kombu.utils.url import parse_url

    from tracker.broker_url import broker_connection, broker_tls

    try:
        given = parse_url(broker_connection(url)[0])  # without the TLS options, which broker_tls reads
        port = given["port"] or (5671 if url.startswith("amqps://") else 5672)
        connection = Connection(host=f"{given['hostname'] or 'localhost'}:{port}",
                                userid=given["userid"] or "guest", password=given["password"] or "guest",
                                virtual_host=given["virtual_host"] or "/", connect_timeout=3, read_timeout=3,
                                write_timeout=3, ssl=broker_tls(url) or False)
        try:
            connection.connect()
        finally:
            connection.collect()
    except Exception as exc:  # whatever the client raised: a refusal is said, anything else is Celery's to wait out
        return broker_refusal(url, exc)
    return None


def refuse_unusable_broker(settings: Settings, store: Any = None) -> None:
    """Raise ConfigError (one line naming TRACKER_BROKER_URL) when Celery could not use the broker.

    Celery cannot use a Redis Cluster: with a cluster store the broker must be another Redis or RabbitMQ, and a
    redis:// broker that turns out to be a cluster node is refused whatever the store. A broker that refuses the
    credentials (a Redis's password, a RabbitMQ login or vhost, a Sentinel's or its master's password) or whose TLS
    certificate is not trusted is refused too: Celery would retry it for ever (the worker with a stack trace each
    time). One that does not answer is not: the processes wait for it.
    """
    broker = settings.broker_url
    if broker.startswith(("amqp://", "amqps://")):
        if (problem := _amqp_refusal(broker)) is not None:
            raise ConfigError(problem)
        return
    if broker.startswith("sentinel://"):  # a master behind Sentinel is standalone: what matters is who lets us in
        from tracker.sentinels import sentinel_refusal

        # The store's own Sentinels when TRACKER_BROKER_URL is unset: named as the operator wrote them.
        if (problem := sentinel_refusal(broker, "TRACKER_REDIS_URL" if broker == settings.redis_url
                                        else "TRACKER_BROKER_URL")) is not None:
            raise ConfigError(problem)
        return
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        return
    if broker == settings.redis_url:
        if (store if store is not None else open_store(settings)).is_cluster:
            raise ConfigError("TRACKER_BROKER_URL is unset or the same as TRACKER_REDIS_URL, a Redis Cluster, which "
                              f"Celery cannot use: set TRACKER_BROKER_URL to {USABLE_BROKERS}")
        return  # the store's own standalone Redis
    if _is_cluster_node(broker):
        raise ConfigError(f"TRACKER_BROKER_URL ({redact_url(broker)}) names a node of a Redis Cluster, which Celery "
                          f"cannot use: set it to {USABLE_BROKERS}")
