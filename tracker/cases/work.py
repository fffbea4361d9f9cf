"""Working recovery cases: open one per unsatisfied answer, recover them on a satisfied one, and a lead's changes.

Every write is a compare-and-set on the case's rev (Store.write_case), redone on a conflict, and every write is
announced once: `case.opened:<id>`, then `case.updated:<id>:<rev>` (the rev the write made), emitted after the
write and again by the next touch of the case when a crash came between (the case keeps the rev it announced).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tracker.cases.labels import case_labels
from tracker.config import Settings
from tracker.events import to_epoch_ms
from tracker.model import CASE_ACTIVE, Case, CaseNote
from tracker.notify.events import emit
from tracker.store import Store, keys
from tracker.store.cases import CaseConflict

HOUR_MS = 3_600_000
ATTEMPTS = 8  # compare-and-set tries before a write gives up (each lost only to another writer's success)
NOTES_KEPT = 200  # the newest notes a case keeps
# Which status a lead may move a case to from each status (the same status is no change, never an error).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "open": frozenset({"contacted", "recovered", "not_recovered"}),
    "contacted": frozenset({"recovered", "not_recovered"}),
    "recovered": frozenset({"open", "contacted"}),
    "not_recovered": frozenset({"open", "contacted"}),
}
UNSET: Any = object()


class CaseNotFound(LookupError):
    """No case has that id."""


class InvalidChange(ValueError):
    """The change is not allowed (a status transition); `field` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def ms_from_iso(text: str) -> int:
    """Read an ISO 8601 time (a Z or an offset; none means UTC) as epoch milliseconds."""
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return to_epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def choose_owner(settings: Settings, agent_id: str | None, team: str | None) -> str | None:
    """Return the case owner TRACKER_CASE_OWNERS names for the agent, else for the team, else None."""
    owners = settings.case_owners
    if agent_id and (owner := owners.get(f"agent:{agent_id}")):
        return owner
    if team and (owner := owners.get(f"team:{team.strip().lower()}")):
        return owner
    return None


def _customer(case: Case) -> dict[str, Any]:
    return {"email": case.customer, "name": case.name}


def announce(store: Store, case: Case, now_ms: int, changes: list[str] | None = None) -> None:
    """Emit the notice of the case's current rev unless it was emitted already (an id emitted twice appends once)."""
    from tracker.cases.schemas import case_json

    if case.notified >= case.rev:
        return
    if case.rev <= 1:
        store_id, type_ = f"case.opened:{case.id}", "case.opened"
        data: dict[str, Any] = {"case": case_json(case, now_ms), "customer": _customer(case)}
    else:
        store_id, type_ = f"case.updated:{case.id}:{case.rev}", "case.updated"
        data = {"case": case_json(case, now_ms), "customer": _customer(case), "changes": changes or []}
    emit(store, type_, case.customer, data, store_id, now_ms)
    store.note_case_notified(case.id, case.rev)


def open_for_answer(store: Store, settings: Settings, data: Mapping[str, Any], now_ms: int) -> Case:
    """Open the case of an unsatisfied answer (the data of a survey.answered/changed notice); once per survey."""
    survey, answer, customer = data["survey"], data["answer"], data["customer"]
    email = str(customer["email"]).strip().lower()
    cid = keys.case_id(str(survey["id"]), email)
    existing = store.case(cid)
    if existing is not None:
        announce(store, existing, now_ms)  # a crash may have come between its write and its notice
        return existing
    answered = ms_from_iso(answer["answered_at"]) if answer.get("answered_at") else now_ms
    agent = survey.get("agent") or {}
    source, ticket = survey.get("source"), survey.get("ticket")
    case = Case(
        id=cid, customer=email, name=customer.get("name"),
        ticket=survey.get("ticket_key") or (f"{source}:{ticket}" if source and ticket else ticket),
        owner=choose_owner(settings, agent.get("id"), survey.get("team")), status="open",
        opened_at_ms=answered, due_at_ms=answered + settings.case_due_hours * HOUR_MS, survey=str(survey["id"]),
        rating=answer.get("rating"), scale=answer.get("scale") or survey.get("scale"), comment=answer.get("comment"),
        source=source, team=survey.get("team"), agent_id=agent.get("id"), agent_name=agent.get("name"))
    case = replace(case, labels=case_labels(case, store.survey(case.survey)))
    rev = store.write_case(case, None)
    opened = store.case(cid) if rev == 0 else replace(case, rev=rev)
    assert opened is not None
    announce(store, opened, now_ms)
    return opened


def _change(store: Store, case_id: str, now_ms: int,
            change: Callable[[Case], tuple[Case, list[str]]]) -> tuple[Case, list[str]]:
    """Apply change to the case as stored, compare-and-set, redone on a conflict; announce what it changed."""
    for _ in range(ATTEMPTS):
        case = store.case(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        announce(store, case, now_ms)
        new, changes = change(case)
        if not changes:
            return case, []
        if new.labels is None:  # opened before labels: a reopening moves it behind beat's labelling walk, so label it
            new = replace(new, labels=case_labels(new, store.survey(new.survey)))
        try:
            rev = store.write_case(new, case)
        except CaseConflict:
            continue
        written = replace(new, rev=rev, notified=case.rev)
        announce(store, written, now_ms, changes)
        return replace(written, notified=rev), changes
    raise CaseConflict(case_id)


def recover_for_answer(store: Store, settings: Settings, data: Mapping[str, Any], now_ms: int) -> list[Case]:
    """Mark the customer's open and contacted cases recovered by a satisfied answer given after they opened."""
    survey, answer = data["survey"], data["answer"]
    email = str(data["customer"]["email"]).strip().lower()
    answered = ms_from_iso(answer["answered_at"]) if answer.get("answered_at") else now_ms
    recovered = []
    for case in store.active_cases_of(email):
        if case.opened_at_ms > answered:
            continue

        def recover(current: Case) -> tuple[Case, list[str]]:
            if current.status not in CASE_ACTIVE:
                return current, []
            outcome = current.outcome or f"The customer answered {answer.get('rating')} ({answer.get('scale')}) " \
                                         f"on survey {survey.get('id')}."
            changes = ["status", "closed_at"] + (["outcome"] if outcome != current.outcome else [])
            return replace(current, status="recovered", closed_at_ms=answered, outcome=outcome), changes

        done, changes = _change(store, case.id, now_ms, recover)
        if changes:
            recovered.append(done)
    return recovered


def update_case(store: Store, settings: Settings, case_id: str, now_ms: int, by: str, *, status: str | None = None,
                note: str | None = None, notes: Sequence[str] = (), owner: Any = UNSET,
                outcome: Any = UNSET) -> Case:
    """Apply a lead's change: a status (transitions checked), a note (note, then each of notes), a new owner ("" or
    None: none), an outcome.

    A case a lead closes gets one new survey when TRACKER_CASE_RESURVEY is on (tracker.cases.resurvey).
    """
    def apply(case: Case) -> tuple[Case, list[str]]:
        new, changes = case, []
        if status is not None and status != case.status:
            if status not in TRANSITIONS.get(case.status, frozenset()):
                raise InvalidChange("status", f"A case cannot go from {case.status} to {status}.")
            closing = status in ("recovered", "not_recovered")
            new = replace(new, status=status, closed_at_ms=now_ms if closing else None)
            changes += ["status", "closed_at"] if closing or case.closed_at_ms is not None else ["status"]
        added = [text for text in (note, *notes) if text]
        if added:
            kept = (*new.notes, *(CaseNote(now_ms, by, text) for text in added))[-NOTES_KEPT:]
            new = replace(new, notes=kept)
            changes.append("notes")
        if owner is not UNSET and (owner or None) != case.owner:
            new = replace(new, owner=owner or None)
            changes.append("owner")
        if outcome is not UNSET and (outcome or None) != case.outcome:
            new = replace(new, outcome=outcome or None)
            changes.append("outcome")
        # A note on a case already closed (a recovery noted afterwards) is not a contact with the customer.
        if new.first_contact_at_ms is None and not case.closed and (added or new.status == "contacted") and changes:
            new = replace(new, first_contact_at_ms=now_ms)
            changes.append("first_contact_at")
        return new, changes

    case, changes = _change(store, case_id, now_ms, apply)
    if "status" in changes and case.closed and settings.case_resurvey:
        from tracker.cases.resurvey import schedule_resurvey

        schedule_resurvey(store, case, now_ms)
    return case
