"""Survey policy and sending: who gets a survey for a solved ticket, when, and exactly once."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Protocol

from tracker.config import Settings
from tracker.events import RESOLVED_STATUSES
from tracker.i18n.catalogue import normalise_locale, scale_labels
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.mail.message import SurveyMail, build_survey_message
from tracker.scores.maths import DAY_MS
from tracker.store import Store, keys
from tracker.store.reminders import REMINDER_DUE
from tracker.surveys.policy import choose_scale, next_send_time, skip_reason
from tracker.surveys.tokens import make_token, survey_id

log = logging.getLogger(__name__)
LEASE_MS = 5 * 60_000  # longer than one batch of sends; a dead worker's claims come back after it
BACKOFF_S = (15, 60, 120, 300, 600, 1800, 3600, 3600)
# What must still be true when the survey goes out: the ticket solved, the order fulfilled.
SURVEYED_STATUSES = {"ticket": RESOLVED_STATUSES, "order": ("fulfilled",)}
TICKET_FIELDS = ("source", "ticket_id", "customer", "subject", "agent_id", "agent_name", "team", "brand",
                 "channel")


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one due survey."""

    status: str  # sent, skipped, failed, retry, deferred (send window), reminded, none
    reason: str = ""


def sweep(store: Store, now_ms: int, limit: int = 500) -> tuple[int, list[str]]:
    """Lease the surveys that are due now; return the lease score and the ticket keys."""
    return store.claim_due(now_ms, LEASE_MS, limit)


def survey_links(settings: Settings, token: str, lang: str, scale: str) -> list[tuple[int, str, str]]:
    return [(value, label, f"{settings.public_url}/s/{token}?rating={value}")
            for value, label in scale_labels(lang, scale)]


def build_message(settings: Settings, record: dict[str, str], name: str | None, expires_ms: int) -> EmailMessage:
    """Render the survey mail for a survey record."""
    token = make_token(settings.secret_key, record["sid"])
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return build_survey_message(SurveyMail(
        to_email=record["customer"],
        to_name=name or None,
        lang=record["lang"],
        scale_name=record["scale"],
        ticket_subject=record.get("subject") or None,
        ticket_ref=f"#{record['ticket_id']}",
        mail_from=settings.mail_from,
        message_id=f"<{record['sid']}@{domain}>",
        links=survey_links(settings, token, record["lang"], record["scale"]),
        unsubscribe_url=f"{settings.public_url}/u/{token}",
        unsubscribe_mailto=None,
        reply_to=f"reply+{token}@{settings.reply_domain}" if settings.reply_domain else None,
        expires_at=datetime.fromtimestamp(expires_ms / 1000, tz=UTC),
        kind=record.get("kind") or "ticket",
    ), template_dir=os.path.join(settings.template_dir, "mail") if settings.template_dir else None)


def _blocker(store: Store, settings: Settings, ticket: dict[str, str], sid: str, email: str,
             profile: dict[str, str], now_ms: int) -> str | None:
    """Return why this customer must not get this survey now, or None."""
    previous = ticket.get("survey_sid")
    if previous and previous != sid:
        earlier = store.survey(previous)
        if earlier.get("status") == "answered" or (
                earlier.get("status") == "sent" and now_ms < int(earlier.get("expires_at") or 0)):
            return "already_surveyed"
    if profile.get("unsubscribed"):
        return "unsubscribed"
    if store.is_suppressed(email):
        return "suppressed"
    if settings.survey_throttle_days:
        holder = store.reserve_throttle(email, sid, settings.survey_throttle_days * DAY_MS)
        if holder != sid:
            return "throttled"
    return None


def send_due(store: Store, settings: Settings, sender: Sender, tkey: str, claimed: int, now_ms: int) -> Outcome:
    """Send the survey for one due ticket (or order), or record why not; safe to run again after a crash."""
    if tkey.startswith(REMINDER_DUE):
        from tracker.surveys.reminders import send_reminder  # reminders reuse this module's mail; imported late

        return send_reminder(store, settings, sender, tkey, claimed, now_ms)
    kind = "order" if tkey.startswith(keys.ORDER_DUE) else "ticket"
    ticket = store.surveyed(tkey)
    if not ticket.get("solved_at") or ticket.get("status") not in SURVEYED_STATUSES[kind]:
        store.drop_due(tkey, claimed)  # reopened (or cancelled) while due; that already cancelled it
        return Outcome("none", "not_solved")
    sid = survey_id(tkey, ticket["solved_at"])
    existing = store.survey(sid)
    if existing.get("status") in ("sent", "answered", "skipped", "failed"):
        store.drop_due(tkey, claimed)
        return Outcome("none", "done")
    email = ticket.get("customer", "")
    profile = store.profile(email)
    fields: dict[str, Any] = {f: ticket.get(f, "") for f in TICKET_FIELDS}
    scale = choose_scale(settings, ticket.get("source"), ticket.get("brand"))
    fields.update(sid=sid, tkey=tkey, kind=kind, scale=scale,
                  ticket_id=ticket.get("ticket_id") or ticket.get("order_id", ""),
                  lang=normalise_locale(profile.get("locale")), solved_at=ticket["solved_at"], created_at=now_ms,
                  status="sending")
    reason = skip_reason(settings, ticket, sid) or _blocker(store, settings, ticket, sid, email, profile, now_ms)
    if reason:
        store.finish_due(tkey, claimed, sid, email, "skipped", reason, now_ms, fields)
        log.info("survey skipped", extra={"survey": sid, "reason": reason})
        return Outcome("skipped", reason)
    opens_at = next_send_time(settings, now_ms, profile.get("timezone"))
    if opens_at > now_ms:
        # Waiting is not a skip; the throttle slot is taken when the mail goes out, not while it waits.
        store.release_throttle(email, sid)
        store.reschedule(tkey, claimed, opens_at)
        return Outcome("deferred", "send_window")
    record = store.create_survey(sid, fields)
    expires_ms = now_ms + settings.survey_expiry_days * DAY_MS
    try:
        sender.send(build_message(settings, record, profile.get("name"), expires_ms))
    except TransientMailError as exc:
        attempts = int(record.get("attempts", 1))
        if attempts >= len(BACKOFF_S):
            return _fail(store, tkey, claimed, record, "smtp_unavailable", str(exc), now_ms)
        delay_ms = int(BACKOFF_S[attempts - 1] * 1000 * random.uniform(0.8, 1.2))
        store.note_failure(sid, str(exc), now_ms + delay_ms)
        store.reschedule(tkey, claimed, now_ms + delay_ms)
        log.warning("survey mail deferred", extra={"survey": sid, "attempt": attempts})
        return Outcome("retry", "smtp_unavailable")
    except PermanentMailError as exc:
        if exc.recipient:
            store.suppress(email)  # the address itself was refused: no more mails to it
        return _fail(store, tkey, claimed, record, "undeliverable", str(exc), now_ms)
    if settings.reminder_days and now_ms + settings.reminder_days * DAY_MS < expires_ms:
        # Scheduled before marking sent: a crash in between resends, and the reminder is never lost.
        store.schedule_reminder(sid, now_ms + settings.reminder_days * DAY_MS)
    store.mark_sent(record, now_ms, expires_ms, claimed)
    log.info("survey sent", extra={"survey": sid})
    return Outcome("sent")


def _fail(store: Store, tkey: str, claimed: int, record: dict[str, str], reason: str, error: str,
          now_ms: int) -> Outcome:
    store.release_throttle(record["customer"], record["sid"])
    store.finish_due(tkey, claimed, record["sid"], record["customer"], "failed", reason, now_ms,
                     {"error": error[:200]})
    log.error("survey mail failed", extra={"survey": record["sid"], "reason": reason})
    return Outcome("failed", reason)
