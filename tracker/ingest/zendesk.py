"""Zendesk users API: fill in the emails and names that event-subscription webhooks give as ids only.

Registered as the `zendesk` enrichment hook (tracker.ingest.enrich).

Authentication is Zendesk's API-token scheme: HTTP Basic with `{email}/token` as the user name and
the token as the password. `GET /api/v2/users/show_many.json?ids=1,2` takes at most 100 ids and
leaves deleted users out of its answer; `include=organizations` side-loads the users' organizations in
the same call, so the customer's organisation (the user's `organization_id`) costs no extra request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

import requests

from tracker.backoff import Backoff
from tracker.config import Settings
from tracker.ingest import lookup
from tracker.ingest.enrich import EnrichmentUnavailable, register
from tracker.model import Agent, Customer, Event
from tracker.store import Store

SOURCE = "zendesk"
BATCH = 100
ATTEMPTS = 3
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 30.0
CUSTOMER_FIELDS = ("email", "name", "locale", "organisation")
AGENT_FIELDS = ("email", "name")

log = logging.getLogger(__name__)

PersonT = TypeVar("PersonT", Customer, Agent)


class ZendeskUnavailable(EnrichmentUnavailable):
    """The look-up failed for a reason that may pass; leave the events unacknowledged and retry later."""

    def __init__(self, reason: str):
        super().__init__(SOURCE, reason)


@register(SOURCE)
def enrich(events: Sequence[Event], settings: Settings, store: Store,
           session: requests.Session | None = None) -> list[Event]:
    """Return Zendesk's events with the missing emails, names and locales of customers and agents filled in."""
    if not (settings.zendesk_url and settings.zendesk_email and settings.zendesk_token):
        return list(events)
    wanted = list(dict.fromkeys(pid for event in events for pid in _lacking(event)))
    if not wanted:
        return list(events)
    # Zendesk ids are integers; anything else cannot be looked up and is left for the pipeline to reject.
    people = lookup.people(store, SOURCE, wanted, str.isdigit, BATCH,
                           lambda http, ids: _show_many(http, settings, ids), session)
    return [_filled(event, people) for event in events]


def _lacking(event: Event) -> Iterator[str]:
    """Yield the ids of the customer without an email and the agent without an email or name."""
    if event.customer.id and not event.customer.email:
        yield event.customer.id
    agent = event.ticket.agent if event.ticket else None
    if agent and not (agent.email and agent.name):
        yield agent.id


def _filled(event: Event, people: dict[str, lookup.Person]) -> Event:
    """Return the event with what Zendesk knows filled into the fields it left empty."""
    customer, ticket = event.customer, event.ticket
    if customer.id and not customer.email:
        customer = _with_known(customer, people.get(customer.id, {}), CUSTOMER_FIELDS)
    if ticket and ticket.agent and not (ticket.agent.email and ticket.agent.name):
        ticket = replace(ticket, agent=_with_known(ticket.agent, people.get(ticket.agent.id, {}), AGENT_FIELDS))
    return replace(event, customer=customer, ticket=ticket)


def _with_known(person: PersonT, known: lookup.Person, names: tuple[str, ...]) -> PersonT:
    return replace(person, **{name: known[name] for name in names if known.get(name) and not getattr(person, name)})


def _show_many(session: requests.Session, settings: Settings, ids: list[str]) -> dict[str, lookup.Person]:
    """Fetch up to 100 users in one request, retrying transient failures, or raise ZendeskUnavailable."""
    url = f"{settings.zendesk_url}/api/v2/users/show_many.json?ids={','.join(ids)}&include=organizations"
    auth = (f"{settings.zendesk_email}/token", settings.zendesk_token or "")
    response = lookup.get(_lookup(), session, url, auth=auth)
    assert response is not None  # no status counts as absent here
    return _people(response)


def _lookup() -> lookup.Lookup:
    return lookup.Lookup(what="Zendesk user look-up",
                         refused_hint="check TRACKER_ZENDESK_EMAIL and TRACKER_ZENDESK_TOKEN",
                         unavailable=ZendeskUnavailable, attempts=ATTEMPTS,
                         timeouts=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), backoff=_backoff,
                         max_retry_after_s=MAX_RETRY_AFTER_S)


def _people(response: requests.Response) -> dict[str, lookup.Person]:
    """Turn a show_many answer into {id: {"email", "name", "locale", "organisation"}}, leaving out deleted users."""
    try:
        body = response.json()
        users = body["users"]
        organisations = _organisations(body.get("organizations"))
        people: dict[str, lookup.Person] = {}
        for user in users:
            if user.get("active") is False:
                continue
            fields = {"email": user.get("email"), "name": user.get("name"), "locale": user.get("locale"),
                      "organisation": organisations.get(str(user.get("organization_id")))}
            person = {k: v.strip() for k, v in fields.items() if isinstance(v, str) and v.strip()}
            for key in ("email", "locale"):
                if key in person:
                    person[key] = person[key].lower()
            people[str(user["id"])] = person
        return people
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ZendeskUnavailable("Zendesk user look-up returned an unexpected body") from None


def _organisations(sideloaded: object) -> dict[str, str]:
    """Return {organization id: name} from the `organizations` side-load (absent when Zendesk sends none)."""
    if not isinstance(sideloaded, list):
        return {}
    return {str(org["id"]): org["name"] for org in sideloaded
            if isinstance(org, dict) and org.get("id") is not None and isinstance(org.get("name"), str)}


def _backoff(attempt: int) -> float:
    """Return the house backoff's delay after a failed attempt (BACKOFF_S read here, so tests may shorten it)."""
    return Backoff(first_s=BACKOFF_S, cap_s=MAX_RETRY_AFTER_S, attempts=ATTEMPTS).delay_s(attempt)
