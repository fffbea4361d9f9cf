"""An alert an answer calls for is held in Redis until a worker has queued its deliveries, so none is lost.

The answer and its alert are written by one script (record_answer with alerting, tracker.store.alerts); the web then
kicks `tracker.send_alert`, which builds the alert from the answer Redis holds, queues one delivery per URL and
releases it. A kick the broker did not take, a web process killed before its kick, or a task that never ran to its
end (a worker killed, Redis unreachable past the task's retries) leaves the alert held: beat's
`tracker.resend_held_alerts` sends every alert held longer than HELD_FOR_MS again. An alert may so be delivered twice
(a task slower than that, or killed between queueing and releasing), under the same webhook-id
(payload.message_id), which receivers dedupe by; it is never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tracker.answers.record import calls_for_alert
from tracker.backoff import Backoff
from tracker.config import Settings
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


def resend_held(store: Store, now_ms: int, send: Callable[[str, int], None], older_than_ms: int = HELD_FOR_MS) -> int:
    """Send again every alert held longer than older_than_ms (each then waits as long again); return how many."""
    held = store.alerts_held_before(now_ms - older_than_ms, RESEND_BATCH)
    for sid, rating in held:
        store.renew_alert(sid, rating, now_ms)
        send(sid, rating)
    if held:
        log.warning("alerts sent again: their kick was lost or their task did not finish", extra={"alerts": len(held)})
    return len(held)
