"""Operational numbers in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from tracker.config import Settings
from tracker.store import Store, connect

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REDIS_BROKERS = ("redis://", "rediss://", "unix://")

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def family(name: str, kind: str, text: str, samples: Iterable[Sample]) -> list[str]:
    """Render one metric family: its HELP and TYPE lines and one line per sample."""
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
    return lines


@cache
def _broker(url: str) -> Store:
    return Store(connect(url))


def queue_length(store: Store, settings: Settings) -> int | None:
    """Return the Celery queue's length when the broker is Redis, else None."""
    if settings.broker_url == settings.redis_url:
        return store.queue_length()
    if settings.broker_url.startswith(REDIS_BROKERS):
        return _broker(settings.broker_url).queue_length()
    return None


def render_metrics(store: Store, settings: Settings, now_ms: int) -> str:
    """Read the counters and backlogs and render them for a Prometheus scrape."""
    counts = store.metric_counts()
    lag = store.lag()
    received = []
    for field, value in sorted(counts["received"].items()):
        source, _, status = field.partition("|")
        received.append(({"source": source, "status": status}, value))
    surveys: list[Sample] = [({"status": "sent", "reason": ""}, counts["sent"])]
    for field, value in sorted(counts["stats"].items()):
        status, _, reason = field.partition(":")
        surveys.append(({"status": status, "reason": reason}, value))
    oldest = counts["oldest_due_ms"]
    sweep_lag = max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0
    lines = [
        *family("tracker_events_received_total", "counter",
                "Webhook deliveries received, by source and outcome.", received),
        *family("tracker_surveys_total", "counter",
                "Surveys by outcome: sent, or skipped and failed by reason.", surveys),
        *family("tracker_surveys_sent_total", "counter", "Surveys sent.", [({}, counts["sent"])]),
        *family("tracker_answers_total", "counter", "Surveys answered (a changed answer counts once).",
                [({}, counts["answers"])]),
        *family("tracker_stream_length", "gauge", "Entries in the event log.", [({}, lag["length"])]),
        *family("tracker_stream_pending", "gauge", "Event log entries read but not yet applied.",
                [({}, lag["pending"])]),
        *family("tracker_stream_lag", "gauge", "Event log entries not yet read by the appliers.",
                [({}, lag["lag"])]),
        *family("tracker_dead_letters", "gauge", "Events parked because they cannot be applied.",
                [({}, counts["dead"])]),
        *family("tracker_sweep_lag_seconds", "gauge",
                "How long the most overdue survey (or reminder) has been waiting; 0 when none is overdue.",
                [({}, round(sweep_lag, 3))]),
        *family("tracker_customers", "gauge", "Customers known.", [({}, counts["customers"])]),
    ]
    queued = queue_length(store, settings)
    if queued is not None:
        lines += family("tracker_celery_queue_length", "gauge", "Tasks waiting in the Celery queue.",
                        [({}, queued)])
    return "\n".join(lines) + "\n"
