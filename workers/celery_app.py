"""The Celery app, built from settings, with every house default in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from tracker.broker_url import broker_connection, broker_tls, with_sentinel_sockets
from tracker.config import Settings
from tracker.store import Store
from workers import redis_broker

QUEUE = "tracker"
# The web sends with one immediate retry: a down broker must fail the enqueue at once (the stored event or
# answer stands, and beat's periodic runs pick the work up), not hold the request through Celery's publish
# retries; the retry, on a fresh connection, is for a pooled one the broker closed meanwhile (a RabbitMQ
# restart), which would otherwise fail the next send, an unhappy answer's alert among them.
WEB_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
RETENTION_INTERVAL = 3600.0  # seconds between retention passes (TRACKER_RETENTION_DAYS)
# A webhook's drain starts this long (seconds) after its kick: the deliveries that come meanwhile find their shard's
# kick set, or their kick group's task pending, and send no task; one drain applies them all. Chosen by measurement
# (README, "Kicks"): with the worker keeping up, every webhook sent a task of its own (~0.36 ms of the web's CPU
# each, and a drain each); 0.1 s, then 0.3 s once a drain's Python was lean enough that a task's own cost and a
# step's fixed round trips were most of the worker's CPU. It stays well under the group's mark's life (1 s).
KICK_DELAYS = {"tracker.drain_kicked": 0.3}


def create_celery(settings: Settings) -> Celery:
    """Build the one Celery app: the web enqueues with it, worker and beat run with it."""
    redis_broker.register()  # a worker outlives a Redis broker's restart (workers.redis_broker)
    broker, options = broker_connection(settings.broker_url)  # a Sentinel's master_name and credentials
    app = Celery("tracker", broker=broker, set_as_current=True)
    # amqps://, a sentinel:// URL with TLS options (the master's; kombu keeps them from one Sentinel's URL to the
    # next): the certificate and its host name checked unless the URL says otherwise.
    if (tls := broker_tls(settings.broker_url)) is not None:
        app.conf.broker_use_ssl = tls
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        # Ack after the task ran, and hand a task back when its worker dies: tasks are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # A lost broker (Redis restarting) is retried for as long as it takes, channel errors too; a worker
        # that still fails exits non-zero (`tracker worker` passes Celery's exit status on) for its supervisor.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        broker_channel_error_retry=True,
        # Tasks are idempotent and acked late: on a lost connection the running ones stop and are redelivered.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Socket timeouts (Redis broker): a broker that accepts and never answers must fail a send in seconds,
        # not hold a web request for minutes; the worker's blocking reads wait 1 s, well inside them.
        # A Sentinel broker's Sentinels get the socket options too (with_sentinel_sockets).
        broker_transport_options=with_sentinel_sockets({"visibility_timeout": 3600, "socket_keepalive": True,
                                                        "health_check_interval": 10, "socket_timeout": 5,
                                                        "socket_connect_timeout": 3, **options}),
        task_soft_time_limit=120,
        task_time_limit=180,
        timezone="UTC",
        beat_schedule={
            "sweep-due-surveys": {"task": "tracker.sweep_surveys", "schedule": settings.sweep_interval},
            # Every shard: what a lost kick left, waiting entries due again, and the trim of old applied entries.
            "drain-events": {"task": "tracker.drain_events", "schedule": 5.0},
            # Aggregate deltas a writer appended and did not forward (it died): every survey bucket's outbox.
            "forward-outbox": {"task": "tracker.forward_outbox", "schedule": 3.0},
            # Notices to event URLs, helpdesks and cases: each bucket's targets from their cursors, retries when due.
            "dispatch-notices": {"task": "tracker.dispatch_notices", "schedule": 2.0},
            # survey.expired for the surveys whose expiry passed since the last pass (a bounded page of SENT).
            "expire-surveys": {"task": "tracker.expire_surveys", "schedule": 60.0},
            # The at-risk ranking kept for TRACKER_AT_RISK_SCORE: filled on an empty Redis and after a change of it.
            "rank-at-risk": {"task": "tracker.rank_at_risk", "schedule": 30.0},
            # The commented answers' index (the dashboard's newest comments): filled once on a Redis from before it.
            "index-comments": {"task": "tracker.index_comments", "schedule": 30.0},
            # The recovery cases' labels (the summary's case numbers under one filter): given once to older cases.
            "label-cases": {"task": "tracker.label_cases", "schedule": 30.0},
            # Alerts held past their kick (lost while the broker was away, or their task died): sent again.
            "resend-held-alerts": {"task": "tracker.resend_held_alerts", "schedule": 60.0},
        },
    )
    if settings.retention_days is not None:
        app.conf.beat_schedule["retire-old-records"] = {"task": "tracker.retire_old_records",
                                                        "schedule": RETENTION_INTERVAL}
    app.tracker_settings = settings
    app.tracker_store = Store.from_url(settings.redis_url)
    from workers import tasks

    tasks.register(app)
    return app


class LostAcks(logging.Filter):
    """Say in one warning line what kombu logs as CRITICAL with a stack trace: a task's message that could not be
    acknowledged or handed back because the broker connection was lost as the task ended. Acked late, it is
    delivered again, and the task (idempotent, as every task here) runs again."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith(("Couldn't ack", "Couldn't reject")) and len(record.args or ()) == 2:
            _tag, reason = record.args  # type: ignore[misc]
            record.msg = "a task's message could not be %s, the broker connection lost (%r): it is delivered and " \
                         "run again"
            record.args = ("acknowledged" if message.startswith("Couldn't ack") else "handed back", reason)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def run_command(app: Celery, argv: list[str]) -> int:
    """Run a Celery command line (worker, beat) with app and return its exit status.

    Celery's own app.start and worker_main drop the status, so a worker that stopped on an unrecoverable
    broker error exited 0 and no supervisor restarted it.
    """
    from celery.bin.celery import celery as command
    from click.exceptions import ClickException, Exit

    request_log = logging.getLogger("celery.worker.request")
    if not any(isinstance(found, LostAcks) for found in request_log.filters):
        request_log.addFilter(LostAcks())
    command.params[0].default = app
    try:
        code = command.main(args=argv, standalone_mode=False)
    except Exit as exc:
        code = exc.exit_code
    except ClickException as exc:  # a wrong Celery option: its usage message, not a traceback
        exc.show()
        code = exc.exit_code
    finally:
        command.params[0].default = None
    return code if isinstance(code, int) else 0 if code is None else 1


def web_enqueue(app: Celery) -> Callable[..., None]:
    """Return the web's enqueue(task name, *task args): no waiting, raising when the broker is down."""

    def enqueue(task: str, *args: Any) -> None:
        app.send_task(task, args=list(args), retry_policy=WEB_RETRY, countdown=KICK_DELAYS.get(task))

    return enqueue


def queue_length(app: Celery) -> Callable[[], int | None]:
    """Return a reader of how many tasks wait in the queue: a count on a Redis or RabbitMQ broker, None on others."""

    def read() -> int | None:
        with app.connection_for_read() as connection:
            driver = connection.transport.driver_type
            if driver not in ("redis", "amqp"):
                return None
            try:
                # Each broker of a failover list (`amqp://n1;amqp://n2`) once, at once: the one that answers counts.
                connection.ensure_connection(max_retries=max(len(connection.alt), 1) - 1, interval_start=0,
                                             interval_step=0, interval_max=0)
                if driver == "redis":
                    return int(connection.default_channel.client.llen(QUEUE))
                return _amqp_ready(connection)
            except OperationalError:  # a broker apart from our Redis is down: the gauge is left out
                return None

    return read


def _amqp_ready(connection: Any) -> int:
    # A passive declare reads the queue's ready count without creating it; RabbitMQ answers a queue that does
    # not exist yet (nothing published) by closing the channel, so a channel of its own is used.
    channel = connection.channel()
    try:
        return int(channel.queue_declare(QUEUE, passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        channel.close()
