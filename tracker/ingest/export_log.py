"""Write the event log, every survey outcome, the recovery cases, the opt-outs and the API keys as JSON lines that
`tracker replay` reads back to the same scores, cases, opt-outs and keys.

The log's events come first, oldest first, each with its `source`; then every customer's surveys, oldest
first: a `survey.answered` event for each answer (its survey named by the solve it was about, so it
keeps its id), a `survey.sent` event for each survey still unanswered (counted as sent, never
mailed again) and a `survey.skipped` event for each survey skipped or failed (never mailed). Each carries
its `restore` (tracker.ingest.restore): the survey's id, a failure and its error, its times (a sent survey's
reminder, when one is still due, among them), the answer's reason, extra answers and how it arrived, and what it
counted for. Survey events found in the log are left out: the stored answer they led to says it. Last, every
recovery case (after the answers that opened them) and what the case counters hold beyond them
(tracker.ingest.case_lines), each closed case's new survey still to send (tracker.ingest.resurvey_lines), what
retention retired: every entity's retired sums and the first activity (tracker.ingest.retired_lines), every
unsubscribe and suppression, in plain and by hash (tracker.ingest.optout_lines), every customer's profile: name, ids
and orders, which the trimmed log no longer says (tracker.ingest.profile_lines), and every API key that works, as
stored (tracker.ingest.apikey_lines): lines that replay writes back itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

from tracker.events import ANSWERED, SENT, SKIPPED, SURVEY_TYPES, event_from_record, standard_event
from tracker.ingest.apikey_lines import key_lines
from tracker.ingest.case_lines import CASE, RETIRED, case_lines
from tracker.ingest.optout_lines import optout_line, stored_optouts
from tracker.ingest.profile_lines import LoggedOrders, profile_lines
from tracker.ingest.restore import FIELD as RESTORE
from tracker.ingest.restore import Restore, restore_line
from tracker.ingest.resurvey_lines import resurvey_lines
from tracker.ingest.retired_lines import FIRST, retired_lines
from tracker.ingest.survey_events import IMPORTED
from tracker.model import Agent, Customer, Event, Profile, Rating, Survey, Ticket
from tracker.store import Store, keys
from tracker.surveys.tokens import survey_id

EXPORTED = ("sent", "answered", "skipped", "failed")  # a survey still sending is mailed by the new install


@dataclass
class ExportReport:
    """How many lines of each kind were written, and how many log records could not be read."""

    events: int = 0
    answers: int = 0
    sent: int = 0
    reminders: int = 0  # of the unanswered surveys, those whose reminder is still due (carried with the survey)
    skipped: int = 0
    failed: int = 0
    unreadable: int = 0
    cases: int = 0
    retired: bool = False  # the case counters hold more than the cases (closed ones retention deleted)
    resurveys: int = 0  # closed cases whose new survey is still to send
    retired_sums: int = 0  # entities whose retired sums hold what retention deleted
    first_activity: bool = False  # the first activity retention kept
    unsubscribed: int = 0  # in plain (the profile's)
    suppressed: int = 0  # in plain (the suppression list)
    kept_by_hash: int = 0  # unsubscribes and suppressions kept as a keyed hash of the address
    profiles: int = 0  # customers whose name, ids or orders a customer.profile line carries
    orders: int = 0  # the orders those lines carry
    beyond_log: int = 0  # of those customers, the ones the log names no more, or not about every order of theirs
    api_keys: int = 0  # API keys that work, as stored (their digests)


class OutputError(Exception):
    """Writing to the output failed (a full disk, a closed pipe); error is the OSError the write raised.

    Kept apart from the store's own failures, so the command can say the file could not be written and name it,
    rather than mistake a full disk for an unreachable Redis (or the other way round).
    """

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def export_log(store: Store, out: IO[str], fingerprints: Sequence[str] = (), now_ms: int | None = None) -> ExportReport:
    """Write every logged event, every sent, answered, skipped or failed survey (with its reminder still due), every
    recovery case and its new survey still to send, what retention retired, every opt-out, every customer's profile
    and every API key to out, one JSON object a line. fingerprints: the secret keys'
    (optout_lines.key_fingerprints), written with each opt-out kept by hash, so that a replay can tell whether it holds
    the key the hash was made with.

    A failed write raises OutputError; the store's failures (StorageUnavailable) pass through unchanged.
    """
    report = ExportReport()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    logged = LoggedOrders()
    for payload in store.iter_log():
        try:
            event = event_from_record(json.loads(payload))
        except ValueError:
            report.unreadable += 1
            continue
        if event.type in SURVEY_TYPES:
            continue
        _write(out, event)
        logged.add(event)
        report.events += 1
    for event, restore in _survey_events(store):
        _write(out, event, restore)
        if event.type == ANSWERED:
            report.answers += 1
        elif event.type == SENT:
            report.sent += 1
            report.reminders += restore.reminder_at_ms is not None
        elif restore.status == "failed":
            report.failed += 1
        else:
            report.skipped += 1
    for line in case_lines(store, now_ms):
        _write_line(out, line)
        report.cases += line["type"] == CASE
        report.retired |= line["type"] == RETIRED
    for line in resurvey_lines(store):
        _write_line(out, line)
        report.resurveys += 1
    for line in retired_lines(store):
        _write_line(out, line)
        report.first_activity |= line["type"] == FIRST
        report.retired_sums += line["type"] != FIRST
    for optout in stored_optouts(store, fingerprints):
        _write_line(out, optout_line(optout))
        if optout.digest:
            report.kept_by_hash += 1
        elif optout.kind == "unsubscribed":
            report.unsubscribed += 1
        else:
            report.suppressed += 1
    for line, beyond in profile_lines(store, logged, now_ms):
        _write_line(out, line)
        report.profiles += 1
        report.beyond_log += beyond
        report.orders += len(line.get("orders", ()))
    for line in key_lines(store):
        _write_line(out, line)
        report.api_keys += 1
    return report


def _write(out: IO[str], event: Event, restore: Restore | None = None) -> None:
    fields = {"source": event.source, **standard_event(event)}
    if restore is not None:
        fields[RESTORE] = restore_line(restore)
    _write_line(out, fields)


def _write_line(out: IO[str], fields: dict[str, Any]) -> None:
    line = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    try:
        out.write(line + "\n")
    except OSError as exc:
        raise OutputError(exc) from exc


def _survey_events(store: Store) -> Iterator[tuple[Event, Restore]]:
    """Yield a survey.answered event per answered survey, survey.sent per unanswered one (with when its reminder is
    due, unless it was reminded), survey.skipped per skip and per failure, each with what restores the survey as it
    is stored."""
    profiles: dict[str, Profile | None] = {}
    for survey in store.iter_customer_surveys():
        if survey.status not in EXPORTED or not survey.customer:
            continue
        answer = store.response(survey.sid) if survey.status == "answered" else None
        about = "order" if survey.kind == "order" else "ticket"
        key = survey.tkey.removeprefix(keys.ORDER_DUE)
        # Name the solve only when it gives the survey its id (an imported answer's survey has its own).
        solved = survey.solved_at_ms if survey.sid == survey_id(survey.tkey, survey.solved_at_ms) else None
        if survey.sid == survey_id(survey.tkey, IMPORTED):
            solved = None
        ticket = _ticket(survey, key.split(":", 1)[1] if ":" in key else survey.ticket_id)
        if survey.customer not in profiles:
            profiles.clear()  # a customer's surveys come together: one profile read each
            profiles[survey.customer] = store.profile(survey.customer)
        customer = _customer(survey.customer, profiles[survey.customer], survey.source)
        kept = Restore(survey=survey.sid, tags=survey.tags, organisation=survey.organisation,
                       resolved_by=survey.resolved_by, dimensioned=True)
        if survey.status in ("skipped", "failed"):
            failed = survey.status == "failed"
            event = Event(SKIPPED, f"{'fail' if failed else 'skip'}:{survey.sid}", survey.source,
                          survey.closed_at_ms or survey.created_at_ms, customer, ticket=ticket,
                          answer=Rating(scale=survey.scale, about=about, solved_at_ms=solved, reason=survey.reason))
            yield event, replace(kept, status="failed", error=survey.error) if failed else kept
            continue
        kept = replace(kept, sent_at_ms=survey.sent_at_ms, expires_at_ms=survey.expires_at_ms)
        if answer is not None:
            event = Event(ANSWERED, f"answer:{survey.sid}", survey.source, answer.at_ms, customer, ticket=ticket,
                          answer=Rating(scale=answer.scale, rating=answer.rating, comment=answer.comment,
                                        about=about, solved_at_ms=solved))
            yield event, replace(kept, reason=answer.reason, extra=answer.extra or None,
                                 answered_via=answer.answered_via)
        else:
            event = Event(SENT, f"survey:{survey.sid}", survey.source, survey.sent_at_ms or survey.created_at_ms,
                          customer, ticket=ticket, answer=Rating(scale=survey.scale, about=about, solved_at_ms=solved))
            # Its one reminder, while due and not gone: a reminded survey gets none again.
            reminder = store.reminder_due_at(survey.sid) if survey.reminded_at_ms is None else None
            yield event, replace(kept, reminder_at_ms=reminder)


def _customer(email: str, profile: Profile | None, source: str) -> Customer:
    """Describe the customer as their profile has them: a customer known only through answers (survey.answered)
    is introduced by these lines, name, and their id in the survey's source (their alias there), and all."""
    if profile is None:
        return Customer(email=email)
    alias = next((ident for named, ident in profile.aliases if named == source and not ident.startswith("order:")),
                 None)
    return Customer(email=email, id=alias, name=profile.name, locale=profile.locale, timezone=profile.timezone,
                    organisation=profile.organisation)


def _ticket(survey: Survey, ticket_id: str) -> Ticket:
    """Describe the ticket as the survey saw it: its attribution is what the answer counts for."""
    attribution: dict[str, Any] = {"subject": survey.subject, "team": survey.team, "brand": survey.brand,
                                   "channel": survey.channel}
    agent = Agent(survey.agent_id, survey.agent_name) if survey.agent_id else None
    return Ticket(id=ticket_id or survey.ticket_id, agent=agent, tags=survey.tags, resolved_by=survey.resolved_by,
                  **attribution)
