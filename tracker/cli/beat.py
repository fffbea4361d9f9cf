"""Where `tracker beat` keeps its schedule, and the heartbeat its healthcheck reads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from celery import beat
from celery.beat import PersistentScheduler, SchedulingError
from kombu.exceptions import OperationalError


def schedule_path() -> Path:
    """Return the file celery beat keeps its schedule in, one per user of this host."""
    return Path(tempfile.gettempdir()) / f"tracker-beat-{os.getuid()}"


def heartbeat_path() -> Path:
    """Return the file beat touches on every tick; `tracker check --process beat` reads its age."""
    return schedule_path().with_name(schedule_path().name + ".heartbeat")


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's persistent scheduler that also touches the heartbeat file on every tick, and says in one line when
    the broker cannot take a due task."""

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due task as Celery's scheduler does. While the broker is unreachable (restarting, say) each task
        due is a warning of one line, not a stack trace: it is sent at its next run, as beat's tasks are periodic
        (and every one of them picks up what a missed run left). Any other failure is logged as Celery logs it."""
        beat.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            if not isinstance(exc.__context__, OperationalError):
                beat.error("Message Error: %s", exc, exc_info=True)
                return
            beat.warning("Scheduler: the broker did not take %s; it is sent at its next run (%s)", entry.name,
                         exc.__context__)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
        try:
            heartbeat_path().touch()
        except OSError:  # the healthcheck then reports the stale heartbeat; scheduling goes on
            pass
        return interval
