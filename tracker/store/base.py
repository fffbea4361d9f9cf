"""The Redis connection and the Lua scripts every part of the store shares."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

# What the web and workers treat as "storage unreachable" (503 with Retry-After, or a task retry).
StorageError = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError,
                redis.exceptions.TryAgainError, redis.exceptions.ReadOnlyError)


def connect(url: str) -> redis.Redis:
    """Open a client that retries briefly on dropped connections and never hangs for long."""
    return redis.Redis.from_url(
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
