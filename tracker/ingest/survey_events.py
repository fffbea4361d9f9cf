"""Survey events and stale solves: answers collected elsewhere, surveys reported sent, solves too old to survey.

A `survey.answered` event counts through the product's one answer path (tracker.answers.record), once
per ticket: it lands on the survey the ticket already has (ours, or an earlier imported one), else on
one survey made for it, which counts as sent. An older event than the one counted changes nothing, so
any arrival order ends where the in-order run does. Neither event mails anyone or takes the throttle.
A replayed export's survey event comes with its restore (tracker.ingest.restore): the survey keeps its own id
and is recorded as it was stored (failed, when it failed; its reason, extra answers and how it was answered; a sent
one's reminder still due is scheduled with it), and a carried case's new survey waiting for it is scheduled once it
is recorded (tracker.cases.resurvey.place_carried_resurvey).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TypeVar

from tracker.answers.record import record_answer
from tracker.cases.resurvey import place_carried_resurvey
from tracker.config import Settings
from tracker.events import ANSWERED, SENT, SKIPPED
from tracker.i18n.catalogue import normalise_locale
from tracker.ingest.restore import Restore
from tracker.model import Event, Survey, SurveyedTicket
from tracker.scores.maths import DAY_MS
from tracker.store import Store, keys, ticket_key
from tracker.surveys.policy import TOO_OLD
from tracker.surveys.send import new_survey
from tracker.surveys.tokens import survey_id

log = logging.getLogger(__name__)
T = TypeVar("T")
IMPORTED = "answered"  # names the one survey of a ticket that no solve of ours surveyed
DONE = ("sent", "answered")
FAILED_UNSENT = ("mail_not_built",)  # failures before the mail's hand-off (tracker.surveys.send), which indexes


def survey_key(event: Event) -> str:
    """Return the due member of the ticket (or order) a survey event is about."""
    assert event.ticket is not None and event.answer is not None  # the schema requires both
    key = ticket_key(event.source, event.ticket.id)
    return keys.ORDER_DUE + key if event.answer.about == "order" else key


@dataclass
class Known:
    """What a batch of survey events has read already: tickets' states as stored, each good until an event about
    its ticket is applied (taken out on first use), and customers' languages (no survey event changes them)."""

    tickets: dict[str, SurveyedTicket | None] = field(default_factory=dict)
    langs: dict[str, str] = field(default_factory=dict)

    def take_ticket(self, store: Store, tkey: str) -> SurveyedTicket | None:
        """Return the ticket's (order's) state as stored: read before, else now."""
        if tkey in self.tickets:
            return self.tickets.pop(tkey)
        read = store.surveyed_states([tkey])
        return read[tkey] if tkey in read else store.surveyed(tkey)  # a record that does not read raises

    def lang(self, store: Store, email: str) -> str:
        if email not in self.langs:
            profile = store.profile(email)
            self.langs[email] = normalise_locale(profile.locale if profile else None)
        return self.langs[email]


def about_ticket(event: Event) -> bool:
    return event.answer is not None and event.answer.about == "ticket"


def introduces_with(event: Event, tickets: dict[str, SurveyedTicket | None]) -> bool:
    """Say whether a survey event is the first word of its ticket, given the tickets' states read before the batch
    (Store.surveyed_states): then it makes the ticket known (for the customer's timeline and erasure); a known
    ticket keeps what its own events say."""
    # A ticket whose record does not read (left out) is not introduced: applying the event raises on it.
    return about_ticket(event) and survey_key(event) in tickets and tickets[survey_key(event)] is None


def apply_survey_event(store: Store, settings: Settings, event: Event, email: str,
                       known: Known | None = None, restore: Restore | None = None) -> str | None:
    """Count a survey.sent, survey.answered or survey.skipped event once; return None, or why it cannot apply.

    restore (a replayed export's, tracker.ingest.restore) gives the survey back as it was stored: its own id, a
    failure, its times, the answer's reason, extra answers and how it arrived, and what it counted for.
    """
    assert event.answer is not None
    known = Known() if known is None else known
    quiet = restore is not None  # a replayed export's survey: the install it came from told it (and wrote its notes)
    restore = restore or Restore()
    tkey = survey_key(event)
    surveyed = known.take_ticket(store, tkey)
    sid = restore.survey or _sid(store, event, tkey, surveyed)
    survey = store.survey(sid)
    if restore.survey and survey is not None and survey.tkey != tkey:
        return f"the survey {sid} is about another ticket than {tkey}"
    if event.type == SKIPPED:
        # Only a survey that never went out may be recorded skipped (or failed); a sent or answered one stays.
        fresh = restore.dimensions(_survey(store, settings, event, tkey, sid, surveyed, email, known))
        status = restore.status or "skipped"
        if restore.error:
            fresh = replace(fresh, error=restore.error)
        reason = event.answer.reason or status
        if status == "failed" and reason not in FAILED_UNSENT:
            store.index_entities(fresh)  # the hand-off before the failure named them in the lists
        store.finish_due(-1, fresh, status, reason, event.at_ms)
        return None
    if survey is not None and survey.customer and survey.customer != email:
        return f"the survey of {tkey} belongs to another customer"
    if survey is not None and survey.status in DONE and survey.scale != event.answer.scale:
        return f"the survey of {tkey} uses the {survey.scale} scale, not {event.answer.scale}"
    if survey is None or survey.status not in DONE:
        # A skipped or failed record of ours never reached the customer: the event's word replaces it.
        fresh = store.restate_survey(restore.dimensions(_survey(store, settings, event, tkey, sid, surveyed, email,
                                                                known)))
        sent_ms = restore.sent_at_ms or event.at_ms
        expires_ms = restore.expires_at_ms or sent_ms + settings.survey_expiry_days * DAY_MS
        # A replayed survey.sent line's reminder, still due where it came from, is scheduled with it (one script).
        reminder_ms = restore.reminder_at_ms if event.type == SENT else None
        marked = store.mark_sent(fresh, sent_ms, expires_ms, reminder_ms, quiet=quiet)
        # No claim (-1); when this is the survey the sweep would send for the ticket's solve, its due entry goes.
        solve = fresh.solved_at_ms if survey_id(tkey, fresh.solved_at_ms) == sid else None
        if solve is not None or sid == survey_id(tkey, IMPORTED) or not restore.survey:
            store.settle_sent(tkey, -1, sid, expires_ms, solve)
        # else a survey of its own (a case's second one): as when it was sent, the ticket keeps its survey.
        # The record as marked sent now; one another writer marked meanwhile is read back.
        survey = replace(fresh, status="sent", sent_at_ms=sent_ms, expires_at_ms=expires_ms,
                         next_attempt_at_ms=None, error=None) if marked else store.survey(sid)
        assert survey is not None  # written just now
    if quiet and event.type == ANSWERED and keys.case_bucket(case := keys.case_id(sid, email)) is not None:
        # Recorded now, the survey a carried case is about lets the case's new survey be scheduled, when a
        # case.resurvey line was replayed before it (tracker.ingest.resurvey_lines).
        place_carried_resurvey(store, case)
    if event.type != ANSWERED or event.answer.rating is None:
        return None
    mark = f"{event.at_ms:015d}|{event.id}"
    stored = store.response(sid)
    newest = max(store.answer_event(sid), f"{stored.at_ms:015d}|" if stored else "")
    if mark <= newest:
        return None  # a duplicate, or older than the answer that counts
    try:
        record_answer(store, settings, survey, event.answer.rating, event.answer.comment or "", event.at_ms,
                      reason=restore.reason, extra=restore.extra, quiet=quiet)
    except ValueError as exc:
        return str(exc)
    if restore.answered_via:
        store.note_reply(sid, "answered", event.at_ms, via=restore.answered_via)
    store.mark_answer_event(sid, mark)
    return None


def _sid(store: Store, event: Event, tkey: str, surveyed: SurveyedTicket | None) -> str:
    """Name the survey an event counts for: the solve it names, else the ticket's survey (for a ticket forgotten
    since, the survey its customer answered about it, as Store.surveyed tells), else its own."""
    assert event.answer is not None
    if event.answer.solved_at_ms is not None:
        return survey_id(tkey, event.answer.solved_at_ms)
    if surveyed is not None and not surveyed.survey and surveyed.customer:
        surveyed = replace(surveyed, survey=store.answered_about(surveyed.customer, tkey))
    return (surveyed.survey if surveyed else None) or survey_id(tkey, IMPORTED)


def _said(said: T | None, kept: T) -> T:
    """Return what the event said, else what the ticket kept."""
    return said if said is not None else kept


def _survey(store: Store, settings: Settings, event: Event, tkey: str, sid: str,
            surveyed: SurveyedTicket | None, email: str, known: Known) -> Survey:
    """Describe the survey an event reports, attributed as the event says, gaps filled from the ticket."""
    assert event.ticket is not None and event.answer is not None
    ticket, agent = event.ticket, event.ticket.agent
    kept = surveyed or SurveyedTicket(tkey)
    record = replace(kept, customer=email, source=event.source, id=ticket.id,
                     subject=_said(ticket.subject, kept.subject),
                     agent_id=_said(agent.id if agent else None, kept.agent_id),
                     agent_name=_said(agent.name if agent else None, kept.agent_name),
                     team=_said(ticket.team, kept.team), brand=_said(ticket.brand, kept.brand),
                     channel=_said(ticket.channel, kept.channel),
                     solved_at_ms=_said(event.answer.solved_at_ms, kept.solved_at_ms))
    if record.solved_at_ms is None:
        record = replace(record, solved_at_ms=event.at_ms)
    lang = known.lang(store, email)
    return replace(new_survey(settings, record, tkey, sid, lang, event.at_ms), scale=event.answer.scale)


def stale_key(event: Event) -> str:
    """Return the due member of the ticket (or order) a solve (fulfilment) is about."""
    if event.order is not None:
        return keys.ORDER_DUE + ticket_key(event.source, event.order.id)
    assert event.ticket is not None
    return ticket_key(event.source, event.ticket.id)


def skip_stale_solve(store: Store, settings: Settings, event: Event, now_ms: int, known: Known | None = None) -> None:
    """Record the survey of a solve (or fulfilment) too old to survey as skipped, reason too_old."""
    known = Known() if known is None else known
    tkey = stale_key(event)
    surveyed = known.take_ticket(store, tkey)
    if surveyed is None or surveyed.solved_at_ms is None:
        return
    sid = survey_id(tkey, surveyed.solved_at_ms)
    lang = known.lang(store, surveyed.customer) if surveyed.customer else normalise_locale(None)
    store.finish_due(-1, new_survey(settings, surveyed, tkey, sid, lang, now_ms), "skipped", TOO_OLD, now_ms)
    log.info("survey skipped", extra={"survey": sid, "reason": TOO_OLD})
