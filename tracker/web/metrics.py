"""Operational numbers for Prometheus: a collector that reads Redis at scrape time.

The counters live in Redis, where every web and worker process adds to them, so the collector
reports their values as they stand when scraped rather than counting in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tracker.store import Store

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
QueueLength = Callable[[], int | None]


class TrackerCollector(Collector):
    """Read the counters and backlogs from Redis whenever Prometheus scrapes."""

    def __init__(self, store: Store, queue_length: QueueLength | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.queue_length = queue_length
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        counts = self.store.metric_counts()
        lag = self.store.lag()
        received = CounterMetricFamily("tracker_events_received", "Webhook deliveries received, by source and outcome.",
                                       labels=("source", "status"))
        for field, value in sorted(counts.received.items()):
            source, _, status = field.partition("|")
            received.add_metric((source, status), value)
        yield received
        surveys = CounterMetricFamily("tracker_surveys", "Surveys by outcome: sent, or skipped and failed by reason.",
                                      labels=("status", "reason"))
        surveys.add_metric(("sent", ""), counts.sent)
        failed = CounterMetricFamily("tracker_surveys_failed", "Surveys parked as failed, by reason: alert on any "
                                     "increase (the error log names each survey).", labels=("reason",))
        for field, value in sorted(counts.stats.items()):
            status, _, reason = field.partition(":")
            surveys.add_metric((status, reason), value)
            if status == "failed":
                failed.add_metric((reason,), value)
        yield surveys
        yield failed
        yield CounterMetricFamily("tracker_surveys_sent", "Surveys sent.", value=counts.sent)
        yield CounterMetricFamily("tracker_answers", "Surveys answered (a changed answer counts once).",
                                  value=counts.answers)
        yield GaugeMetricFamily("tracker_stream_length", "Entries in the event log (every shard).", value=lag.length)
        yield GaugeMetricFamily("tracker_stream_pending", "Event log entries read but waiting for their customer "
                                "(an alias not known yet, or a source's look-up down).", value=lag.pending)
        yield GaugeMetricFamily("tracker_stream_lag", "Event log entries not yet read by the appliers.",
                                value=lag.lag)
        yield GaugeMetricFamily("tracker_dead_letters", "Events parked because they cannot be applied.",
                                value=counts.dead)
        yield GaugeMetricFamily("tracker_sweep_lag_seconds", "How long the most overdue survey (or reminder) has "
                                "been waiting; 0 when none is overdue.", value=self._sweep_lag(counts.oldest_due_ms))
        yield GaugeMetricFamily("tracker_customers", "Customers known.", value=counts.customers)
        yield from self._memory()
        yield from self._cases()
        yield from self._deliveries()
        queued = self.queue_length() if self.queue_length else None
        if queued is not None:
            yield GaugeMetricFamily("tracker_celery_queue_length", "Tasks waiting in the Celery queue.", value=queued)

    def _memory(self) -> Iterator[Metric]:
        # One INFO memory per master: alert before used reaches maxmemory (a full Redis refuses writes, and the
        # webhooks of that time are answered 503).
        used = GaugeMetricFamily("tracker_redis_used_memory_bytes", "Memory the store's Redis uses, per master "
                                 "(node: its address on a cluster, empty for a standalone Redis).", labels=("node",))
        limit = GaugeMetricFamily("tracker_redis_maxmemory_bytes", "The store's Redis maxmemory, per master (0: no "
                                  "limit); once used reaches it, writes are refused.", labels=("node",))
        for memory in self.store.memory_limits():
            used.add_metric((memory.node,), memory.used)
            limit.add_metric((memory.node,), memory.maximum)
        yield used
        yield limit

    def _cases(self) -> Iterator[Metric]:
        from tracker.cases.stats import case_numbers

        numbers = case_numbers(self.store, int(self.clock() * 1000))
        yield GaugeMetricFamily("tracker_cases_open", "Recovery cases open or contacted.", value=numbers["cases_open"])
        yield GaugeMetricFamily("tracker_cases_overdue", "Recovery cases open or contacted past their due time.",
                                value=numbers["cases_overdue"])
        rate, hours = numbers["recovered_rate"], numbers["first_contact_hours"]
        if rate is not None:
            yield GaugeMetricFamily("tracker_cases_recovered_percent", "Closed recovery cases that were recovered (%).",
                                    value=rate)
        if hours is not None:
            yield GaugeMetricFamily("tracker_cases_first_contact_hours", "Mean hours from a recovery case's opening "
                                    "to its first contact.", value=hours)

    def _deliveries(self) -> Iterator[Metric]:
        # Two round trips: every notice bucket's totals by status, and what each target still owes there.
        attempts = CounterMetricFamily("tracker_notice_deliveries", "Delivery attempts of notices (event URLs, "
                                       "write-back, cases) by how they ended.", labels=("status",))
        for status, value in sorted(self.store.delivery_counts().items()):
            attempts.add_metric((status,), value)
        yield attempts
        behind = GaugeMetricFamily("tracker_notice_oldest_undelivered_seconds", "Age of each target's oldest notice "
                                   "not delivered yet, as the dispatchers last saw it (absent: caught up).",
                                   labels=("target",))
        for target, at_ms in sorted(self.store.oldest_undelivered().items()):
            behind.add_metric((target,), self._sweep_lag(at_ms))
        yield behind

    def _sweep_lag(self, oldest_due_ms: float | None) -> float:
        if oldest_due_ms is None:
            return 0.0
        return round(max(0.0, self.clock() - oldest_due_ms / 1000), 3)


def metrics_registry(store: Store, queue_length: QueueLength | None = None) -> CollectorRegistry:
    """Return a registry of our own holding only the tracker's collector (no process or platform metrics)."""
    registry = CollectorRegistry()
    registry.register(TrackerCollector(store, queue_length))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """Render a scrape in the Prometheus text format; storage errors propagate to the caller."""
    return generate_latest(registry)
