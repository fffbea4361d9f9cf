"""Celery tasks: each loads its argument, calls one tracker function, and returns nothing."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from tracker.alerts import delivery, held
from tracker.cases.labels import keep_case_labels
from tracker.errors import StorageUnavailable
from tracker.ingest import apply as ingest
from tracker.mail.http import make_sender
from tracker.notify import dispatch as notices
from tracker.notify import expiry
from tracker.privacy import retention
from tracker.surveys import due

log = logging.getLogger(__name__)
SEND_CHUNK = 50
DATA_LOST_EVERY_S = 300  # how often a worker repeats that the store's Redis lost its data
_data_lost_said = [0.0]  # when this process last said so (time.monotonic)


def _consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _taken_up_later(task: Callable[..., None]) -> Callable[..., None]:
    """Let a task meet Redis unreachable, or its soft time limit, as one warning line, not a failure with a stack
    trace: what it had to do is still in Redis (the log's entries, the due surveys under their lease, the outboxes,
    the notices), and beat's next run of it, or of the periodic task behind it, takes it up."""

    @functools.wraps(task)
    def run(self: Task, *args: Any, **kwargs: Any) -> None:
        try:
            task(self, *args, **kwargs)
        except StorageUnavailable as exc:
            log.warning("%s: Redis is unreachable (%s); its work is taken up by its next run", self.name, exc)
        except SoftTimeLimitExceeded:  # a server that stalled it, or the worker paused (a frozen VM, SIGSTOP)
            log.warning("%s: stopped at its time limit of %s s; its work is taken up by its next run", self.name,
                        self.soft_time_limit or self.app.conf.task_soft_time_limit)

    return run


def _say_if_data_lost(store: Any) -> None:
    """Log an error (every DATA_LOST_EVERY_S) while the store's Redis no longer holds the store this process opened:
    it restarted without persistence, or was flushed, and everything acknowledged before is gone (/readyz says so
    too, tracker.store.layout)."""
    if store.holds_its_data() or time.monotonic() - _data_lost_said[0] < DATA_LOST_EVERY_S:
        return
    _data_lost_said[0] = time.monotonic()
    log.error("the store's Redis no longer holds the store this worker opened (its store id is gone or another): it "
              "restarted without persistence or was flushed; restore it from a backup or an export, then restart the "
              "tracker's processes")


def register(app: Celery) -> None:
    """Register the product's tasks on app under stable explicit names."""

    @app.task(name="tracker.drain_events", shared=False, bind=True)
    @_taken_up_later
    def drain_events(self: Task, shards: list[int] | None = None) -> None:
        # The shards kicked by an append, or every shard (beat): each applied under its own lease.
        if shards is None:  # beat's run, every 5 s
            _say_if_data_lost(self.app.tracker_store)
        _applied, left = ingest.drain(self.app.tracker_store, self.app.tracker_settings, _consumer(), shards=shards)
        if left:
            self.apply_async(args=[list(left)])

    @app.task(name="tracker.drain_kicked", shared=False, bind=True)
    @_taken_up_later
    def drain_kicked(self: Task, group: int) -> None:
        # The web's kick of a group of shards: every shard of it holding unread entries, each under its own lease,
        # again while appends come (ingest.drain_group).
        _applied, left = ingest.drain_group(self.app.tracker_store, self.app.tracker_settings, _consumer(), group)
        if left:
            drain_events.apply_async(args=[list(left)])

    @app.task(name="tracker.sweep_surveys", shared=False, bind=True)
    @_taken_up_later
    def sweep_surveys(self: Task) -> None:
        claim = due.sweep_round(self.app.tracker_store, _now_ms())
        for start in range(0, len(claim.members), SEND_CHUNK):
            send_surveys.delay(claim.members[start:start + SEND_CHUNK], claim.claimed)
        if claim.more:  # a due set was full: go on after the chunks just queued, not at the next beat
            self.apply_async()

    @app.task(name="tracker.retire_old_records", shared=False, bind=True)
    @_taken_up_later
    def retire_old_records(self: Task) -> None:
        report = retention.retire_old_records(self.app.tracker_store, self.app.tracker_settings, _now_ms())
        if report.customers and not report.finished:
            self.apply_async()  # a big pass goes on in the next task, each inside the time limit

    @app.task(name="tracker.forward_outbox", shared=False, bind=True)
    @_taken_up_later
    def forward_outbox(self: Task) -> None:
        # Writers forward their own outbox entries at once; this catches the entries of one that died.
        self.app.tracker_store.forward_all()

    @app.task(name="tracker.dispatch_notices", shared=False, bind=True)
    @_taken_up_later
    def dispatch_notices(self: Task, buckets: list[int] | None = None) -> None:
        # Every notice bucket (beat), or the ones named, each under its own lease; a bucket left goes on at once.
        report = notices.dispatch(self.app.tracker_store, self.app.tracker_settings, _consumer(), _now_ms(),
                                  buckets=buckets)
        if report.left:
            self.apply_async(args=[list(report.left)])

    @app.task(name="tracker.expire_surveys", shared=False, bind=True)
    @_taken_up_later
    def expire_surveys(self: Task) -> None:
        expiry.emit_expired(self.app.tracker_store, self.app.tracker_settings, _now_ms())

    @app.task(name="tracker.rank_at_risk", shared=False, bind=True)
    @_taken_up_later
    def rank_at_risk(self: Task) -> None:
        # One read while the at-risk ranking is kept for TRACKER_AT_RISK_SCORE; a fill on an empty Redis or a change.
        at_risk = self.app.tracker_store.keep_risk_ranking(self.app.tracker_settings.at_risk_score)
        if at_risk is not None:
            log.info("at-risk ranking filled", extra={"threshold": self.app.tracker_settings.at_risk_score,
                                                      "at_risk": at_risk})

    @app.task(name="tracker.index_comments", shared=False, bind=True)
    @_taken_up_later
    def index_comments(self: Task) -> None:
        # One read while the commented answers' index is complete; a filling on a Redis with answers from before it.
        found = self.app.tracker_store.keep_comment_index()
        if found is not None:
            log.info("commented answers indexed", extra={"answers": found})

    @app.task(name="tracker.label_cases", shared=False, bind=True)
    @_taken_up_later
    def label_cases(self: Task) -> None:
        # One read while every recovery case is labelled; a labelling on a Redis with cases from before labels.
        keep_case_labels(self.app.tracker_store)

    # Built from the answer Redis holds: while Redis is unreachable it waits (5 s doubling, at most 5 minutes apart,
    # ±50 %, 10 tries: about 20 minutes), and then stays held for beat's resend (tracker.alerts.held).
    @app.task(name="tracker.send_alert", shared=False, bind=True, max_retries=None)  # it counts its own tries
    def send_alert(self: Task, sid: str, rating: int) -> None:
        # Built here, not in the customer's request; one delivery per URL, so each retries on its own. Released once
        # they are queued: until then beat sends it again; an alert another kick queued is left alone
        # (tracker.alerts.held).
        try:
            held.queue_held(self.app.tracker_store, self.app.tracker_settings, sid, rating, _now_ms(),
                            lambda url, body: deliver_alert.delay(url, body), str(self.request.id))
        except StorageUnavailable as exc:
            attempt = self.request.retries + 1
            if held.SEND_RETRY.gives_up(attempt):
                log.warning("tracker.send_alert: Redis is unreachable (%s); the alert stays held for beat to send",
                            exc)
                return
            raise self.retry(exc=exc, countdown=held.SEND_RETRY.delay_s(attempt)) from None

    @app.task(name="tracker.resend_held_alerts", shared=False, bind=True)
    @_taken_up_later
    def resend_held_alerts(self: Task, older_than_ms: int = held.HELD_FOR_MS) -> None:
        # The alerts whose kick was lost or whose task did not finish: each sent again, at most every 2 minutes.
        held.resend_held(self.app.tracker_store, _now_ms(), lambda sid, rating: send_alert.delay(sid, rating),
                         older_than_ms)

    # Retried on the receiver's failures for about an hour (delivery.ALERT_RETRY), then given up in one line.
    @app.task(name="tracker.deliver_alert", shared=False, bind=True, max_retries=None)  # it counts its own tries
    def deliver_alert(self: Task, url: str, payload_json: str) -> None:
        try:
            delivery.deliver_alert(url, json.loads(payload_json), self.app.tracker_settings)
        except delivery.AlertRefused as exc:
            log.warning("alert not delivered: %s", exc)
        except delivery.AlertRetryable as exc:
            attempt = self.request.retries + 1
            if delivery.ALERT_RETRY.gives_up(attempt):
                log.error("alert not delivered: %s; given up after %d attempts", exc, attempt)
                return
            raise self.retry(exc=exc, countdown=delivery.ALERT_RETRY.delay_s(attempt)) from None

    @app.task(name="tracker.send_surveys", shared=False, bind=True)
    @_taken_up_later
    def send_surveys(self: Task, tkeys: list[str], claimed: int) -> None:
        # One connection (SMTP or API session) for the whole chunk: thousands can fall due after a weekend.
        with make_sender(self.app.tracker_settings) as sender:
            # A time limit is no fault of the survey being sent: it ends the task, the lease brings the rest back.
            chunk = due.send_chunk(self.app.tracker_store, self.app.tracker_settings, sender, tkeys, claimed,
                                   not_isolated=(SoftTimeLimitExceeded,))
        if chunk.left:  # a slow server used up the chunk's time: the rest goes on under the renewed lease
            send_surveys.delay(chunk.left, chunk.claimed)
