"""Kombu's Redis transport for the broker, with the one change a worker needs to outlive a Redis restart.

On a lost broker connection Celery (5.7) collects the connection, which closes its transport and forgets the
transport's client (the connection's URL and options), and then closes the connection. Closing its default channel
puts the worker's unacknowledged messages back (restore_unacked), and the channel builds a Redis client from its
transport's client, now None: `AttributeError: 'NoneType' object has no attribute 'hostname'`, which Celery takes for
an unrecoverable error, and the worker exits (in about one restart of Redis in three, whenever tasks were in flight).

Each channel here keeps the client it was opened with and builds its Redis client from it when the transport's is
gone. The restore then runs: while Redis is still down it fails as a connection error, which the close ignores (the
messages come back after the visibility timeout, as from a worker that died), and once Redis is back it puts them back
at once. `redis://`, `rediss://` and `sentinel://` brokers use it (register); RabbitMQ keeps its own transport.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

TRANSPORTS = {"redis": "Transport", "rediss": "Transport", "sentinel": "SentinelTransport"}


class _KeepsBroker:
    """A Redis channel that still knows its broker once its transport was closed under it."""

    connection: Any

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_with = connection.client  # before the channel connects: __init__ builds its clients
        super().__init__(connection, *args, **kwargs)  # type: ignore[call-arg]

    def _get_pool(self, asynchronous: bool = False) -> Any:
        # Where kombu reads its transport's client: the connection's details (and, for Sentinel, its other URLs).
        transport = self.connection
        if transport.client is not None or self._opened_with is None:
            return super()._get_pool(asynchronous)  # type: ignore[misc]
        transport.client = self._opened_with  # for this read only: the transport stays closed
        try:
            return super()._get_pool(asynchronous)  # type: ignore[misc]
        finally:
            transport.client = None


class Channel(_KeepsBroker, kombu_redis.Channel):
    """Kombu's Redis channel, mended."""


class SentinelChannel(_KeepsBroker, kombu_redis.SentinelChannel):
    """Kombu's Redis Sentinel channel, mended."""


class Transport(kombu_redis.Transport):
    """Kombu's Redis transport with Channel above."""

    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    """Kombu's Redis Sentinel transport with SentinelChannel above."""

    Channel = SentinelChannel


def register() -> None:
    """Make `redis://`, `rediss://` and `sentinel://` broker URLs use the transports above, in this process."""
    for scheme, transport in TRANSPORTS.items():
        TRANSPORT_ALIASES[scheme] = f"{__name__}:{transport}"
