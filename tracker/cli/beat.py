"""Where `tracker beat` keeps its schedule, and the heartbeat its healthcheck reads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler


def schedule_path() -> Path:
    """Return the file celery beat keeps its schedule in, one per user of this host."""
    return Path(tempfile.gettempdir()) / f"tracker-beat-{os.getuid()}"


def heartbeat_path() -> Path:
    """Return the file beat touches on every tick; `tracker check --process beat` reads its age."""
    return schedule_path().with_name(schedule_path().name + ".heartbeat")


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's persistent scheduler that also touches the heartbeat file on every tick."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
        try:
            heartbeat_path().touch()
        except OSError:  # the healthcheck then reports the stale heartbeat; scheduling goes on
            pass
        return interval
