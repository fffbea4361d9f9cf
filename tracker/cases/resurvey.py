"""TRACKER_CASE_RESURVEY: one new survey about the case's ticket when a lead closes the case, within the throttle.

Closing adds the due entry `c|<case id>` once (a case remembers it scheduled one); the sweep sends it like any
due survey (tracker.surveys.due.send_due), under the customer's throttle and send window. Its survey id is
derived from the case, so closing, reopening and closing again, or a worker sending it twice, mails it once. A case
carried from another install by a replay whose new survey was still to send there gets its due entry back at the
time it was due there (place_carried_resurvey).
"""

from __future__ import annotations

import logging

from tracker.backoff import record_through_outage
from tracker.config import Settings
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.model import Case, Survey
from tracker.scores.maths import DAY_MS
from tracker.store import Store, keys
from tracker.surveys.message import build_message
from tracker.surveys.optout import opt_out, suppress
from tracker.surveys.outcome import MAIL_RETRY, Outcome, Sender, retry_delay_ms
from tracker.surveys.policy import next_send_time
from tracker.surveys.send import handoff_wait
from tracker.surveys.tokens import survey_id

log = logging.getLogger(__name__)
DONE = ("sent", "answered", "skipped", "failed")


def resurvey_sid(case: Case, tkey: str) -> str:
    """Name the one new survey a case may get."""
    return survey_id(tkey, f"case:{case.id}")


def schedule_resurvey(store: Store, case: Case, now_ms: int) -> bool:
    """Schedule the closed case's new survey unless it was scheduled before; say whether it was now."""
    if case.resurvey:
        return False
    store.schedule_resurvey(case.id, now_ms)  # first: a crash before the mark below leaves it due, sent once
    return store.mark_resurvey(case.id, f"{keys.CASE_DUE}{case.id}")


def place_carried_resurvey(store: Store, case_id: str) -> bool:
    """Schedule the new survey of a case carried from another install at the time it was due there
    (Store.carry_resurvey), once the survey the case is about is recorded here too, unless it was sent here already;
    say whether it was scheduled now.

    The case is written by replay, its survey by the workers, in either order: each calls this once its own part is
    written, so the second one schedules it (the sweep drops a case's entry whose survey it cannot find)."""
    due = store.carried_resurvey(case_id)
    case = store.case(case_id) if due is not None else None
    original = store.survey(case.survey) if case is not None else None
    if due is None or case is None or original is None:
        return False
    sent = store.survey(resurvey_sid(case, original.tkey))
    if sent is not None and sent.status in DONE:
        return False
    return store.schedule_resurvey(case_id, due)


def _fresh(original: Survey, sid: str, now_ms: int) -> Survey:
    return Survey(sid=sid, tkey=original.tkey, kind=original.kind, scale=original.scale, customer=original.customer,
                  source=original.source, status="sending", ticket_id=original.ticket_id, subject=original.subject,
                  agent_id=original.agent_id, agent_name=original.agent_name, team=original.team,
                  brand=original.brand, channel=original.channel, tags=original.tags,
                  organisation=original.organisation, resolved_by=original.resolved_by, lang=original.lang,
                  solved_at_ms=original.solved_at_ms, created_at_ms=now_ms)


def send_resurvey(store: Store, settings: Settings, sender: Sender, member: str, claimed: int,
                  now_ms: int) -> Outcome:
    """Send the new survey of one due `c|<case id>` entry, or drop it when it is no longer wanted."""
    case = store.case(member.removeprefix(keys.CASE_DUE))
    original = store.survey(case.survey) if case is not None else None
    if case is None or original is None or not case.closed:
        store.drop_resurvey(member, claimed)  # erased, or reopened since (its next closing does not add another)
        return Outcome("none", "not_needed")
    sid = resurvey_sid(case, original.tkey)
    existing = store.survey(sid)
    if existing is not None and existing.status in DONE:
        store.drop_resurvey(member, claimed)
        return Outcome("none", "done")
    if existing is not None and existing.status == "sending" and (wait_until := handoff_wait(store, sid, now_ms)):
        store.reschedule(member, claimed, wait_until)  # its mail was handed off: its worker may still record it
        return Outcome("deferred", "handoff_in_progress")
    reason = opt_out(store, settings, case.customer).reason
    if reason:
        store.drop_resurvey(member, claimed)
        return Outcome("skipped", reason)
    if settings.survey_throttle_days:
        holder = store.reserve_throttle(case.customer, sid, settings.survey_throttle_days * DAY_MS)
        if holder != sid:  # the customer had a survey lately: this one waits until the throttle lets it go
            store.reschedule(member, claimed, now_ms + max(store.throttle_left_ms(case.customer), 1000))
            return Outcome("deferred", "throttled")
    profile = store.profile(case.customer)
    opens_at = next_send_time(settings, now_ms, profile.timezone if profile else None)
    if opens_at > now_ms:
        store.release_throttle(case.customer, sid)
        store.reschedule(member, claimed, opens_at)
        return Outcome("deferred", "send_window")
    survey = store.create_survey(_fresh(original, sid, now_ms))
    expires_ms = now_ms + settings.survey_expiry_days * DAY_MS
    try:
        store.begin_handoff(survey, now_ms)
        sender.send(build_message(settings, survey, profile.name if profile else None, expires_ms))
    except TransientMailError as exc:
        store.release_throttle(case.customer, sid)
        if MAIL_RETRY.gives_up(survey.attempts):
            store.drop_resurvey(member, claimed)
            return Outcome("failed", "smtp_unavailable")
        store.note_failure(sid, str(exc), now_ms + retry_delay_ms(survey.attempts))
        store.reschedule(member, claimed, now_ms + retry_delay_ms(survey.attempts))
        return Outcome("retry", "smtp_unavailable")
    except PermanentMailError as exc:
        store.release_throttle(case.customer, sid)
        if exc.recipient:
            suppress(store, settings, case.customer, now_ms)
        store.drop_resurvey(member, claimed)
        return Outcome("failed", exc.reason)

    def record() -> None:  # both safe to repeat
        store.mark_sent(survey, now_ms, expires_ms, None, indexed=True)
        store.drop_resurvey(member, claimed)

    record_through_outage(record, log, "case survey mailed; recording it waits for storage",
                          "case survey mailed but not recorded; it is mailed again once its lease and hand-off grace "
                          "end", {"survey": sid})
    log.info("case survey sent", extra={"survey": sid})
    return Outcome("sent")
