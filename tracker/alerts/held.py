"""An alert an answer calls for is held in Redis until a worker has queued its deliveries, so none is lost.

The answer and its alert are written by one script (record_answer with alerting, tracker.store.alerts); the web then
kicks `tracker.send_alert`, which builds the alert from the answer Redis holds, queues one delivery per URL and
releases it. A kick the broker did not take, a web process killed before its kick, or a task that never ran to its
end (a worker killed, Redis unreachable past the task's retries) leaves the alert held: beat's
`tracker.resend_held_alerts` sends every alert held longer than HELD_FOR_MS again.

So one alert may be kicked more than once: its first kick only waited behind a backlog longer than HELD_FOR_MS, and
beat's kick joined it. Each task first claims the held alert (Store.take_alert): one released (queued already) or
claimed by another task meanwhile is left alone, so its deliveries are queued once. The release waits out a Redis
outage (record_through_outage): queueing is done outside the store, and an alert left held would be queued again.
Only a worker killed between queueing and releasing, or a Redis away for longer than the release waits, has the
alert delivered twice, under the same webhook-id
(payload.message_id), which receivers dedupe by; an alert is never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from tracker.alerts.payload import alerts_for
from tracker.answers.record import calls_for_alert
from tracker.backoff import Backoff, record_through_outage
from tracker.config import Settings
from tracker.errors import StorageUnavailable
from tracker.model import Survey
from tracker.store import Store

log = logging.getLogger(__name__)
HELD_FOR_MS = 120_000  # a held alert not released by then is sent again: its kick was lost or its task died
RESEND_BATCH = 100
SEND_RETRY = Backoff(first_s=5.0, cap_s=300.0, attempts=10)  # tracker.send_alert while Redis is unreachable


def alert_answer(settings: Settings, kick: Callable[..., bool], survey: Survey, outcome: int, rating: int) -> None:
    """Kick the alert a just-recorded answer holds (its rating counted and calls_for_alert), if any."""
    if outcome == 2 and calls_for_alert(settings, survey, rating):
        kick("tracker.send_alert", survey.sid, rating)


def queue_held(store: Store, settings: Settings, sid: str, rating: int, now_ms: int,
               queue: Callable[[str, str], None], token: str) -> int | None:
    """Queue one delivery (url, JSON body) of a held alert per alert URL and release it; return how many were queued
    (0: the answer changed or was erased since), or None when it is not this call's to queue (already queued and
    released, or claimed under another token now). token: the task's, the same on each of its retries."""
    if not store.take_alert(sid, rating, token, HELD_FOR_MS):
        log.info("alert left alone: queued already, or by another task now", extra={"survey": sid})
        return None
    deliveries = alerts_for(store, settings, sid, rating, now_ms)  # Redis away: raised, and the task tries again
    for url, body in deliveries:
        queue(url, body)
    try:
        record_through_outage(partial(store.release_alert, sid, rating), log,
                              "alert queued; releasing it waits for storage",
                              "alert queued but not released; beat queues it again", {"survey": sid})
    except StorageUnavailable:  # said; not raised, or the task's retry would queue it again at once
        pass
    return len(deliveries)


def resend_held(store: Store, now_ms: int, send: Callable[[str, int], None], older_than_ms: int = HELD_FOR_MS) -> int:
    """Send again every alert held longer than older_than_ms (each then waits as long again); return how many."""
    held = store.alerts_held_before(now_ms - older_than_ms, RESEND_BATCH)
    for sid, rating in held:
        store.renew_alert(sid, rating, now_ms)
        send(sid, rating)
    if held:
        log.warning("alerts sent again: their kick was lost or their task did not finish", extra={"alerts": len(held)})
    return len(held)
