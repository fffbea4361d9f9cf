"""The Celery app, built from settings, with every house default in one place."""

from __future__ import annotations

from celery import Celery

from tracker.config import Settings
from tracker.store import Store

QUEUE = "tracker"


def create_celery(settings: Settings) -> Celery:
    """Build the Celery app for the web (to enqueue) and for worker and beat (to run)."""
    app = Celery("tracker", broker=settings.broker_url, set_as_current=True)
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        # Ack after the task ran, and hand a task back when its worker dies: tasks are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_soft_time_limit=120,
        task_time_limit=180,
        timezone="UTC",
        beat_schedule={
            "sweep-due-surveys": {"task": "tracker.sweep_surveys", "schedule": settings.sweep_interval},
            "drain-events": {"task": "tracker.drain_events", "schedule": 5.0},
            "recover-events": {"task": "tracker.recover_events", "schedule": 30.0},
        },
    )
    app.tracker_settings = settings  # type: ignore[attr-defined]
    app.tracker_store = Store.from_url(settings.redis_url)  # type: ignore[attr-defined]
    from workers import tasks

    tasks.register(app)
    return app
