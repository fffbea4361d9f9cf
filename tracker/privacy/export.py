"""A data-access request: everything held about one customer, read with the product's own readers."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.config import Settings
from tracker.model import Answer, Case, OptOut, Profile, StoredOrder, StoredTicket, Survey, TimelineEntry
from tracker.store import Store
from tracker.store.state import TIMELINE_MAX
from tracker.surveys.optout import opt_out


@dataclass(frozen=True)
class CustomerExport:
    """Everything the tracker holds about one customer (their opt-out included)."""

    customer: str
    profile: Profile | None
    tickets: tuple[StoredTicket, ...]
    orders: tuple[StoredOrder, ...]
    surveys: tuple[Survey, ...]
    answers: tuple[Answer, ...]
    timeline: tuple[TimelineEntry, ...]  # the applied events (tickets and orders), oldest first
    opt_out: OptOut
    cases: tuple[Case, ...] = ()  # recovery cases, with the leads' notes



def export_customer(store: Store, settings: Settings, email: str) -> CustomerExport | None:
    """Return everything held about a customer, oldest first; None when nothing is."""
    email = email.strip().lower()
    surveys, answers = store.every_survey_and_answer(email)
    export = CustomerExport(
        customer=email, profile=store.profile(email), tickets=tuple(store.customer_tickets(email)),
        orders=tuple(store.customer_orders(email)), surveys=tuple(surveys), answers=tuple(answers),
        timeline=tuple(sorted(store.timeline_events(email, TIMELINE_MAX), key=lambda e: e.at_ms)),
        opt_out=opt_out(store, settings, email), cases=tuple(store.cases_of(email)))
    if export.profile is None and not (export.tickets or export.orders or export.surveys or export.answers):
        return None
    return export
