"""What every view reaches through the app: settings, store, enqueue and metrics, in one typed object."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from tracker.config import Settings
from tracker.errors import StorageUnavailable
from tracker.store import Store
from tracker.store.log import kick_group

log = logging.getLogger(__name__)


@dataclass
class Tracker:
    """What the views need, kept in app.extensions["tracker"]."""

    settings: Settings
    store: Store
    enqueue: Callable[..., None]  # enqueue(task name, *task args)
    metrics: CollectorRegistry

    def kick(self, task: str, *args: Any) -> bool:
        """Enqueue a task without failing the request; say whether it was sent. Beat covers a lost kick."""
        try:
            self.enqueue(task, *args)
        except Exception as exc:  # the broker being down must not fail an already stored event
            log.warning("could not enqueue %s: %s", task, type(exc).__name__)
            return False
        return True

    def kick_drains(self, shards: Iterable[int]) -> None:
        """Send a drain task for each kick group of the shards an append kicked, unless one is pending for it."""
        for group in sorted({kick_group(shard) for shard in shards}):
            try:
                if self.store.claim_kick(group) and not self.kick("tracker.drain_kicked", group):
                    self.store.forget_kick(group)  # the next append sends one again
            except (StorageUnavailable, RedisError) as exc:  # stored already: beat's drain applies it
                log.warning("could not kick the drain of shard group %d: %s", group, type(exc).__name__)


def current_tracker() -> Tracker:
    """Return the Tracker of the app handling the current request."""
    return current_app.extensions["tracker"]  # type: ignore[no-any-return]
