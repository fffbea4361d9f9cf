"""What every `tracker` subcommand shares: the usage error, the settings it needs, the store."""

from __future__ import annotations

import os
from typing import Any

from tracker.config import ConfigError, Settings, load_settings, redact_url

# What Celery can use as a broker beside a Redis Cluster store (kombu has no cluster transport).
USABLE_BROKERS = "a standalone Redis (redis://, or sentinel:// for Sentinel) or RabbitMQ (amqp://)"


class UsageError(Exception):
    """A command line that names something wrong; the message says what."""


def settings_for(needs: str = "all") -> Settings:
    """Read the settings from the environment: "all" for the processes, "store" for store-only commands.

    The processes (web, worker, beat) also refuse at start-up a broker Celery cannot use.
    """
    settings = load_settings(os.environ, needs=needs)
    if needs == "all":
        refuse_unusable_broker(settings)
        refuse_old_layout(settings)
    return settings


OLD_LAYOUT = ("TRACKER_REDIS_URL holds data an earlier version wrote with its own key names: export it with that "
              "version (tracker export-log FILE), then replay it into an empty Redis with this one (tracker replay "
              "FILE)")


def refuse_old_layout(settings: Settings) -> None:
    """Raise ConfigError when the store's Redis holds the previous key layout (nothing would read it)."""
    from tracker.errors import StorageUnavailable

    try:
        old = open_store(settings).holds_old_layout()
    except StorageUnavailable:
        return  # not up yet: the processes wait for it
    if old:
        raise ConfigError(OLD_LAYOUT)


def open_store(settings: Settings) -> Any:
    """Open the Redis store the settings name (a standalone Redis or a Redis Cluster, found out by asking)."""
    from tracker.store import Store

    return Store.from_url(settings.redis_url)


def _is_cluster_node(url: str) -> bool | None:
    """Ask the Redis at url whether it is a cluster node; None when it does not answer (nothing to refuse yet)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        return int(client.info("cluster").get("cluster_enabled", 0)) == 1
    except redis.ResponseError as exc:  # SELECT <db> on a cluster node
        return "cluster mode" in str(exc)
    except redis.RedisError:
        return None
    finally:
        client.close()


def refuse_unusable_broker(settings: Settings, store: Any = None) -> None:
    """Raise ConfigError (one line naming TRACKER_BROKER_URL) when Celery could not use the broker.

    Celery cannot use a Redis Cluster: with a cluster store the broker must be another Redis or RabbitMQ, and a
    redis:// broker that turns out to be a cluster node is refused whatever the store.
    """
    broker = settings.broker_url
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        return  # amqp:// and sentinel:// (masters behind Sentinel are standalone)
    if broker == settings.redis_url:
        if (store if store is not None else open_store(settings)).is_cluster:
            raise ConfigError("TRACKER_BROKER_URL is unset or the same as TRACKER_REDIS_URL, a Redis Cluster, which "
                              f"Celery cannot use: set TRACKER_BROKER_URL to {USABLE_BROKERS}")
        return  # the store's own standalone Redis
    if _is_cluster_node(broker):
        raise ConfigError(f"TRACKER_BROKER_URL ({redact_url(broker)}) names a node of a Redis Cluster, which Celery "
                          f"cannot use: set it to {USABLE_BROKERS}")
