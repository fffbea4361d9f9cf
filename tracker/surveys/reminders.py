"""The one reminder of an unanswered survey: same links, a "Reminder:" subject, never a second one."""

from __future__ import annotations

import logging
import random
from email.message import EmailMessage

from tracker.config import Settings
from tracker.i18n.catalogue import text
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.store import Store
from tracker.store.reminders import REMINDER_DUE
from tracker.surveys.policy import next_send_time
from tracker.surveys.send import BACKOFF_S, Outcome, Sender, build_message

log = logging.getLogger(__name__)


def reminder_message(settings: Settings, record: dict[str, str], name: str | None) -> EmailMessage:
    """Render the reminder: the survey mail with the same token links, threaded under the first one."""
    message = build_message(settings, record, name, int(record["expires_at"]))
    subject = str(message["Subject"])
    message.replace_header("Subject", f"{text(record['lang'], 'mail.reminder_prefix')} {subject}")
    first = str(message["Message-ID"])
    local, _, domain = first.strip("<>").partition("@")
    message.replace_header("Message-ID", f"<{local}.reminder@{domain}>")
    message["In-Reply-To"] = first
    message["References"] = first
    return message


def _unwanted(store: Store, settings: Settings, record: dict[str, str], profile: dict[str, str],
              now_ms: int) -> str | None:
    """Return why this survey gets no reminder, or None."""
    if settings.reminder_days <= 0:
        return "reminders_off"
    if record.get("status") != "sent" or record.get("reminded_at"):
        return "not_needed"  # answered, never sent, or already reminded
    if now_ms >= int(record.get("expires_at") or 0):
        return "expired"
    if profile.get("unsubscribed"):
        return "unsubscribed"
    if store.is_suppressed(record["customer"]):
        return "suppressed"
    return None


def send_reminder(store: Store, settings: Settings, sender: Sender, member: str, claimed: int,
                  now_ms: int) -> Outcome:
    """Send the reminder of one due `r|<sid>` entry, or drop it when it is no longer wanted."""
    sid = member.removeprefix(REMINDER_DUE)
    record = store.survey(sid)
    profile = store.profile(record["customer"]) if record.get("customer") else {}
    reason = _unwanted(store, settings, record, profile, now_ms) if record.get("customer") else "not_needed"
    if reason:
        store.drop_due(member, claimed)
        return Outcome("none", reason)
    opens_at = next_send_time(settings, now_ms, profile.get("timezone"))
    if opens_at > now_ms:
        if opens_at >= int(record["expires_at"]):
            store.drop_due(member, claimed)
            return Outcome("none", "expired")
        store.reschedule(member, claimed, opens_at)
        return Outcome("deferred", "send_window")
    attempts = store.begin_reminder(sid, now_ms)
    if not attempts:  # answered or reminded by another worker just now
        store.drop_due(member, claimed)
        return Outcome("none", "not_needed")
    try:
        sender.send(reminder_message(settings, record, profile.get("name")))
    except TransientMailError as exc:
        store.undo_reminder(sid, now_ms)
        if attempts >= len(BACKOFF_S):
            store.note_reminder_error(sid, str(exc))
            store.drop_due(member, claimed)
            return Outcome("failed", "smtp_unavailable")
        delay_ms = int(BACKOFF_S[attempts - 1] * 1000 * random.uniform(0.8, 1.2))
        store.reschedule(member, claimed, now_ms + delay_ms)
        log.warning("survey reminder deferred", extra={"survey": sid, "attempt": attempts})
        return Outcome("retry", "smtp_unavailable")
    except PermanentMailError as exc:
        if exc.recipient:
            store.suppress(record["customer"])
        store.note_reminder_error(sid, str(exc))
        store.drop_due(member, claimed)
        log.error("survey reminder failed", extra={"survey": sid})
        return Outcome("failed", "undeliverable")
    store.drop_due(member, claimed)
    log.info("survey reminder sent", extra={"survey": sid})
    return Outcome("reminded")
