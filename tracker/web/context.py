"""What every view reaches through the app: settings, store, enqueue and metrics, in one typed object."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from prometheus_client import CollectorRegistry

from tracker.config import Settings
from tracker.store import Store

log = logging.getLogger(__name__)


@dataclass
class Tracker:
    """What the views need, kept in app.extensions["tracker"]."""

    settings: Settings
    store: Store
    enqueue: Callable[..., None]  # enqueue(task name, *task args)
    metrics: CollectorRegistry

    def kick(self, task: str, *args: Any) -> None:
        """Enqueue a task without failing the request; beat's periodic runs cover a lost kick."""
        try:
            self.enqueue(task, *args)
        except Exception as exc:  # the broker being down must not fail an already stored event
            log.warning("could not enqueue %s: %s", task, type(exc).__name__)


def current_tracker() -> Tracker:
    """Return the Tracker of the app handling the current request."""
    return current_app.extensions["tracker"]  # type: ignore[no-any-return]
