"""The one reminder of an unanswered survey: same links, a "Reminder:" subject, never a second one."""

from __future__ import annotations

import logging

from tracker.config import Settings
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.model import Survey
from tracker.store import Store
from tracker.store.reminders import REMINDER_DUE
from tracker.surveys.message import reminder_message
from tracker.surveys.optout import opt_out, suppress
from tracker.surveys.outcome import MAIL_RETRY, Outcome, Sender, retry_delay_ms
from tracker.surveys.policy import next_send_time

log = logging.getLogger(__name__)


def _unwanted(store: Store, settings: Settings, survey: Survey, now_ms: int) -> str | None:
    """Return why this survey gets no reminder, or None."""
    if settings.reminder_days <= 0:
        return "reminders_off"
    if survey.status != "sent" or survey.reminded_at_ms is not None:
        return "not_needed"  # answered, never sent, or already reminded
    if now_ms >= (survey.expires_at_ms or 0):
        return "expired"
    return opt_out(store, settings, survey.customer).reason


def send_reminder(store: Store, settings: Settings, sender: Sender, member: str, claimed: int,
                  now_ms: int) -> Outcome:
    """Send the reminder of one due `r|<sid>` entry, or drop it when it is no longer wanted."""
    sid = member.removeprefix(REMINDER_DUE)
    survey = store.survey(sid)
    profile = store.profile(survey.customer) if survey and survey.customer else None
    reason = _unwanted(store, settings, survey, now_ms) if survey and survey.customer else "not_needed"
    if reason or survey is None:
        store.drop_due(member, claimed)
        return Outcome("none", reason or "not_needed")
    opens_at = next_send_time(settings, now_ms, profile.timezone if profile else None)
    if opens_at > now_ms:
        if opens_at >= (survey.expires_at_ms or 0):
            store.drop_due(member, claimed)
            return Outcome("none", "expired")
        store.reschedule(member, claimed, opens_at)
        return Outcome("deferred", "send_window")
    attempts = store.begin_reminder(sid, now_ms)
    if not attempts:  # answered or reminded by another worker just now
        store.drop_due(member, claimed)
        return Outcome("none", "not_needed")
    return _mail(store, settings, sender, survey, profile.name if profile else None, member, claimed, attempts, now_ms)


def _mail(store: Store, settings: Settings, sender: Sender, survey: Survey, name: str | None, member: str,
          claimed: int, attempts: int, now_ms: int) -> Outcome:
    """Hand the reminder to the sender and record what came of it."""
    try:
        sender.send(reminder_message(settings, survey, name))
    except TransientMailError as exc:
        store.undo_reminder(survey.sid, now_ms)
        if MAIL_RETRY.gives_up(attempts):
            store.note_reminder_error(survey.sid, str(exc))
            store.drop_due(member, claimed)
            return Outcome("failed", "smtp_unavailable")
        store.reschedule(member, claimed, now_ms + retry_delay_ms(attempts))
        log.warning("survey reminder deferred", extra={"survey": survey.sid, "attempt": attempts})
        return Outcome("retry", "smtp_unavailable")
    except PermanentMailError as exc:
        if exc.recipient:
            suppress(store, settings, survey.customer, now_ms)
        store.note_reminder_error(survey.sid, str(exc))
        store.drop_due(member, claimed)
        log.error("survey reminder failed", extra={"survey": survey.sid})
        return Outcome("failed", "undeliverable")
    store.drop_due(member, claimed)
    log.info("survey reminder sent", extra={"survey": survey.sid})
    return Outcome("reminded")


def park_reminder(store: Store, member: str, claimed: int, error: str, now_ms: int) -> Outcome:
    """Give up a reminder that raised where no rule expected it, so its entry is not claimed again."""
    sid = member.removeprefix(REMINDER_DUE)
    store.undo_reminder(sid, now_ms)  # its claim, if taken, names this very time
    store.note_reminder_error(sid, error)
    store.drop_due(member, claimed)
    log.error("survey reminder parked", extra={"survey": sid, "reason": "internal_error"})
    return Outcome("failed", "internal_error")
