"""The Redis connection and the Lua scripts every part of the store shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.retry import Retry

from tracker.errors import StorageUnavailable

# Redis being down, loading, failing over or read-only: retrying later may succeed. Everything else
# (a wrong type, a script error) is a bug and stays a redis error.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError,
               redis.exceptions.TryAgainError, redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError)


@contextmanager
def _unavailable_as_ours() -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        raise StorageUnavailable(type(exc).__name__) from exc


class _Pipeline(Pipeline):
    """A pipeline whose outages surface as StorageUnavailable, like single commands."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with _unavailable_as_ours():  # only WATCH and the commands after it run here; the rest are queued
            return super().execute_command(*args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _unavailable_as_ours():
            return super().execute(raise_on_error)


class StoreClient(redis.Redis):
    """The store's Redis client: commands, pipelines and Lua scripts raise StorageUnavailable on an outage."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        # Outside redis-py's own retry on dropped connections, so an error here has outlasted it.
        with _unavailable_as_ours():
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def connect(url: str) -> redis.Redis:
    """Open a client that retries briefly on dropped connections and never hangs for long."""
    return StoreClient.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


@cache
def _source(name: str) -> str:
    return resources.files("tracker.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


class RedisBase:
    """Holds the client and runs the packaged Lua scripts by name."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._scripts: dict[str, Any] = {}

    def script(self, name: str) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self.redis.register_script(_source(name))
        return self._scripts[name]

    def ping(self) -> bool:
        return bool(self.redis.ping())
