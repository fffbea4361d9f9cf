"""Sending a due survey: who gets one for a solved ticket (or fulfilled order), when, and exactly once."""

from __future__ import annotations

import logging
from dataclasses import replace

from tracker.backoff import record_through_outage
from tracker.config import Settings
from tracker.events import RESOLVED_STATUSES
from tracker.i18n.catalogue import normalise_locale
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.model import Survey, SurveyedTicket
from tracker.notify.events import emit
from tracker.scores.maths import DAY_MS
from tracker.store import Store, keys
from tracker.store.surveys import with_known_dimensions
from tracker.surveys.message import build_message
from tracker.surveys.optout import opt_out, suppress
from tracker.surveys.outcome import MAIL_RETRY, Outcome, Sender, retry_delay_ms
from tracker.surveys.policy import TOO_OLD, choose_scale, due_too_long_ago, next_send_time, skip_reason
from tracker.surveys.tokens import survey_id

log = logging.getLogger(__name__)
# What must still be true when the survey goes out: the ticket solved, the order fulfilled.
SURVEYED_STATUSES = {"ticket": RESOLVED_STATUSES, "order": ("fulfilled",)}
# A hand-off younger than this may still be recorded by the worker that made it (a slow server, the record
# retrying, a worker paused: a frozen VM, a swap storm, SIGSTOP): another claim waits it out rather than mail the
# customer a second time. Well past the send task's hard time limit (180 s) and the record's tries (about 45 s),
# which end every live attempt; a survey whose worker died mid-send goes out 15 minutes late, no harm to a survey.
HANDOFF_GRACE_MS = 15 * 60_000


def new_survey(settings: Settings, ticket: SurveyedTicket, tkey: str, sid: str, lang: str,
               now_ms: int) -> Survey:
    """Describe the survey a solved ticket (or fulfilled order) gets, as it stands when it falls due."""
    return Survey(
        sid=sid, tkey=tkey, kind="order" if tkey.startswith(keys.ORDER_DUE) else "ticket",
        scale=choose_scale(settings, ticket.source, ticket.brand),
        customer=ticket.customer, source=ticket.source, status="sending",
        ticket_id=ticket.id, subject=ticket.subject or None,
        agent_id=ticket.agent_id or None, agent_name=ticket.agent_name or None,
        team=ticket.team or None, brand=ticket.brand or None, channel=ticket.channel or None,
        lang=lang, solved_at_ms=ticket.solved_at_ms or 0, created_at_ms=now_ms)


def tell_skipped(store: Store, survey: Survey, name: str | None, reason: str, at_ms: int) -> None:
    """Emit survey.skipped for a survey about to be recorded skipped (once per survey: id survey.skipped:<sid>)."""
    if not survey.customer:
        return  # no customer, no one to tell of (and no notice bucket)
    data = {"ticket": {"id": survey.ticket_id, "source": survey.source, "key": survey.tkey},
            "customer": {"email": survey.customer, "name": name or None}, "reason": reason}
    emit(store, "survey.skipped", survey.customer, data, f"survey.skipped:{survey.sid}", at_ms)


def _blocker(store: Store, settings: Settings, ticket: SurveyedTicket, survey: Survey, now_ms: int) -> str | None:
    """Return why this customer must not get this survey now, or None."""
    previous = ticket.survey
    if previous and previous != survey.sid:
        earlier = store.survey(previous)
        if earlier and (earlier.status == "answered" or (
                earlier.status == "sent" and now_ms < (earlier.expires_at_ms or 0))):
            return "already_surveyed"
    opted_out = opt_out(store, settings, survey.customer).reason  # also after the address was erased
    if opted_out:
        return opted_out
    if settings.survey_throttle_days:
        holder = store.reserve_throttle(survey.customer, survey.sid, settings.survey_throttle_days * DAY_MS)
        if holder != survey.sid:
            return "throttled"
    return None


def send_survey(store: Store, settings: Settings, sender: Sender, tkey: str, claimed: int, now_ms: int) -> Outcome:
    """Send the survey for one due ticket (or order), or record why not; safe to run again after a crash."""
    ticket = store.surveyed(tkey)
    kind = "order" if tkey.startswith(keys.ORDER_DUE) else "ticket"
    if ticket is None or ticket.solved_at_ms is None or ticket.status not in SURVEYED_STATUSES[kind]:
        store.drop_due(tkey, claimed)  # reopened (or cancelled) while due; that already cancelled it
        return Outcome("none", "not_solved")
    sid = survey_id(tkey, ticket.solved_at_ms)
    existing = store.survey(sid)
    if existing and existing.status in ("sent", "answered", "skipped", "failed"):
        store.drop_due(tkey, claimed)
        return Outcome("none", "done")
    if existing and existing.status == "sending" and (wait_until := handoff_wait(store, sid, now_ms)):
        store.reschedule(tkey, claimed, wait_until)
        return Outcome("deferred", "handoff_in_progress")
    profile = store.profile(ticket.customer) if ticket.customer else None
    survey = new_survey(settings, ticket, tkey, sid, normalise_locale(profile.locale if profile else None), now_ms)
    # Its dimensions from the ticket and profile just read (create_survey need not read them again).
    survey = with_known_dimensions(survey, ticket.tags, profile.organisation if profile else None,
                                   ticket.resolved_by, ticket.agent_involved)
    # Workers stopped for longer than the expiry leave surveys due that could no longer be answered.
    stale = TOO_OLD if due_too_long_ago(settings, kind, ticket.solved_at_ms, now_ms) else None
    reason = stale or skip_reason(settings, ticket, sid) or _blocker(store, settings, ticket, survey, now_ms)
    if reason:
        # Told before it is recorded: a crash between the two skips it again, and the notice's id keeps it one.
        tell_skipped(store, survey, profile.name if profile else None, reason, now_ms)
        store.finish_due(claimed, survey, "skipped", reason, now_ms)
        log.info("survey skipped", extra={"survey": sid, "reason": reason})
        return Outcome("skipped", reason)
    opens_at = next_send_time(settings, now_ms, profile.timezone if profile else None)
    if opens_at > now_ms:
        # Waiting is not a skip; the throttle slot is taken when the mail goes out, not while it waits.
        store.release_throttle(survey.customer, sid)
        store.reschedule(tkey, claimed, opens_at)
        return Outcome("deferred", "send_window")
    name = profile.name if profile else None
    return _mail(store, settings, sender, store.create_survey(survey, dimensioned=True), name, claimed, now_ms)


def _mail(store: Store, settings: Settings, sender: Sender, survey: Survey, name: str | None, claimed: int,
          now_ms: int) -> Outcome:
    """Hand the survey mail to the sender and record what came of it."""
    expires_ms = now_ms + settings.survey_expiry_days * DAY_MS
    try:
        message = build_message(settings, survey, name, expires_ms)
    except Exception as exc:  # whatever stops this one mail must not stop the others
        return _fail(store, claimed, survey, "mail_not_built", f"{type(exc).__name__}: {exc}", now_ms)
    store.begin_handoff(survey, now_ms)
    try:
        sender.send(message)
    except TransientMailError as exc:
        if MAIL_RETRY.gives_up(survey.attempts):
            return _fail(store, claimed, survey, "smtp_unavailable", str(exc), now_ms)
        retry_at = now_ms + retry_delay_ms(survey.attempts)
        store.note_failure(survey.sid, str(exc), retry_at)
        store.reschedule(survey.tkey, claimed, retry_at)
        log.warning("survey mail deferred", extra={"survey": survey.sid, "attempt": survey.attempts})
        return Outcome("retry", "smtp_unavailable")
    except PermanentMailError as exc:
        if exc.recipient:
            suppress(store, settings, survey.customer, now_ms)  # the address itself was refused: no more mails to it
        return _fail(store, claimed, survey, exc.reason, str(exc), now_ms)
    reminder_ms = now_ms + settings.reminder_days * DAY_MS
    _record_sent(store, survey, now_ms, expires_ms, claimed,
                 reminder_ms if settings.reminder_days and reminder_ms < expires_ms else None)
    log.info("survey sent", extra={"survey": survey.sid})
    return Outcome("sent")


def _record_sent(store: Store, survey: Survey, now_ms: int, expires_ms: int, claimed: int,
                 reminder_ms: int | None) -> None:
    """Record a mail the server took, retrying through a storage outage: giving up means a resend later."""

    def record() -> None:
        # The survey's slot first (marked sent once, counted through the outbox), then the ticket's: its
        # survey_sid, the due entry dropped, its state kept until the survey can no longer be answered.
        # Both are safe to repeat, so a retry after an outage finishes whichever did not happen.
        store.mark_sent(survey, now_ms, expires_ms, reminder_ms, indexed=True)
        store.settle_sent(survey.tkey, claimed, survey.sid, expires_ms)

    record_through_outage(record, log, "survey mailed; recording it waits for storage",
                          "survey mailed but not recorded; it is mailed again once its lease and hand-off grace end",
                          {"survey": survey.sid})


def handoff_wait(store: Store, sid: str, now_ms: int) -> int | None:
    """Return until when a survey being sent must wait, when its mail was handed off lately and not recorded since:
    the worker that handed it off may still be recording it (HANDOFF_GRACE_MS). None: send it (again, once the
    grace is over: its worker died between the hand-off and the record, and the operator hears of it)."""
    handed = store.handoff_at(sid)
    if handed is None:
        return None
    if now_ms < handed + HANDOFF_GRACE_MS:
        return handed + HANDOFF_GRACE_MS
    # The mail may have gone, so the resend keeps its Message-ID (derived from the survey id).
    log.warning("survey mailed again after an unrecorded hand-off", extra={"survey": sid})
    return None


def park_survey(store: Store, tkey: str, claimed: int, reason: str, error: str, now_ms: int) -> Outcome:
    """Park the survey of a due entry that raised where no rule expected it, so the entry is not claimed again."""
    try:
        ticket = store.surveyed(tkey)
    except ValueError:  # a damaged solve time: no survey of it was made or throttled
        ticket = None
    sid = survey_id(tkey, ticket.solved_at_ms) if ticket and ticket.solved_at_ms is not None else None
    survey = store.survey(sid) if sid else None
    if survey is not None and survey.status == "sending":
        return _fail(store, claimed, survey, reason, error, now_ms)
    if ticket and sid:
        store.release_throttle(ticket.customer, sid)
    store.park_due(tkey, claimed, reason)
    log.error("survey parked", extra={"survey": sid, "reason": reason})
    return Outcome("failed", reason)


def _fail(store: Store, claimed: int, survey: Survey, reason: str, error: str, now_ms: int) -> Outcome:
    store.release_throttle(survey.customer, survey.sid)
    store.finish_due(claimed, replace(survey, error=error[:200]), "failed", reason, now_ms)
    log.error("survey mail failed", extra={"survey": survey.sid, "reason": reason})
    return Outcome("failed", reason)
