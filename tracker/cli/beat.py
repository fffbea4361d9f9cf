"""Where `tracker beat` keeps its schedule, and the heartbeat its healthcheck reads."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import beat
from celery.beat import PersistentScheduler, SchedulingError
from kombu.exceptions import OperationalError

from tracker.config import redact_url


def schedule_path(redis_url: str) -> Path:
    """Return the file celery beat keeps its schedule in: one per user of this host and store.

    Named for the store (its URL without the password, hashed), so that two installations on one host (staging
    beside production, `make run` beside a beat in service) neither share a schedule nor read each other's
    heartbeat: `tracker check --process beat` of one would otherwise say "alive" of the other's beat."""
    store = hashlib.sha256(redact_url(redis_url).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tracker-beat-{os.getuid()}-{store}"


def heartbeat_path(redis_url: str) -> Path:
    """Return the file beat touches on every tick; `tracker check --process beat` reads its age."""
    schedule = schedule_path(redis_url)
    return schedule.with_name(schedule.name + ".heartbeat")


# How far in the future a task's last run may lie before beat takes it for a clock that went back.
CLOCK_SLACK = timedelta(seconds=5)


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's persistent scheduler that also touches the heartbeat file on every tick, says in one line when the
    broker cannot take a due task, and keeps scheduling when the clock goes back.

    Celery waits until a task's last run plus its interval. A last run in the future (the schedule file written while
    the clock was ahead, then corrected; a file restored or copied from another host) would stop the sweep, the
    drain and the outbox until the clock caught up, hours or months, while the heartbeat stayed fresh. Such a
    last run is taken as now, so the task runs one interval later."""

    def _clock_went_back(self) -> bool:
        """Take every last run in the future as now; say whether there was one (the heap is then built again)."""
        went_back = False
        for entry in self.schedule.values():
            now = entry.schedule.maybe_make_aware(entry.default_now())
            last = entry.schedule.maybe_make_aware(entry.last_run_at)
            if last > now + CLOCK_SLACK:
                beat.warning("Scheduler: %s last ran at %s, after now (%s): the clock went back; it runs again one "
                             "interval from now", entry.name, last.isoformat(), now.isoformat())
                entry.last_run_at = now
                went_back = True
        return went_back

    def populate_heap(self, *args: Any, **kwargs: Any) -> None:
        self._clock_went_back()
        super().populate_heap(*args, **kwargs)

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
        if getattr(self, "_heap", None) is not None and self._clock_went_back():
            self._heap = None  # the heap holds the old times: built again from the entries
        interval = float(super().tick(*args, **kwargs))
        try:
            Path(self.schedule_filename + ".heartbeat").touch()  # heartbeat_path() of the store it serves
        except OSError:  # the healthcheck then reports the stale heartbeat; scheduling goes on
            pass
        return interval
