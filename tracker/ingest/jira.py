"""Jira Cloud users API: fill in the reporter emails that Jira's webhooks leave out.

Registered as the `jira` enrichment hook (tracker.ingest.enrich).

Jira Cloud drops `emailAddress` from the users in a webhook when their profile visibility hides it.
`GET /rest/api/3/user?accountId=<id>` answers one user (Basic auth: the account's email and an API
token); its `emailAddress` is there when the API user may see it, and absent (or empty) when not.
An unknown account is a 404: nothing to fill in, not an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import requests

from tracker.backoff import Backoff
from tracker.config import Settings
from tracker.ingest import lookup
from tracker.ingest.enrich import EnrichmentUnavailable, register
from tracker.model import Event
from tracker.store import Store

SOURCE = "jira"
PATH = "/rest/api/3/user"
ATTEMPTS = 3
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 30.0
MAX_ACCOUNT_ID = 128

log = logging.getLogger(__name__)



class JiraUnavailable(EnrichmentUnavailable):
    """The look-up failed for a reason that may pass; leave the events unacknowledged and retry later."""

    def __init__(self, reason: str):
        super().__init__(SOURCE, reason)


@register(SOURCE)
def enrich(events: Sequence[Event], settings: Settings, store: Store,
           session: requests.Session | None = None) -> list[Event]:
    """Return Jira's events with the missing emails and names of their reporters filled in."""
    if not (settings.jira_api_url and settings.jira_api_user and settings.jira_api_token):
        return list(events)
    wanted = list(dict.fromkeys(e.customer.id for e in events if e.customer.id and not e.customer.email))
    if not wanted:
        return list(events)
    people = lookup.people(store, SOURCE, wanted, lambda account: len(account) <= MAX_ACCOUNT_ID, 1,
                           lambda http, accounts: _with_email(accounts[0], _user(http, settings, accounts[0])),
                           session)
    return [_filled(event, people) for event in events]


def _filled(event: Event, people: dict[str, lookup.Person]) -> Event:
    """Return the event with what Jira knows filled into the reporter's empty fields."""
    customer = event.customer
    known = people.get(customer.id or "") if not customer.email else None
    if not known:
        return event
    return replace(event, customer=replace(customer, email=known["email"], name=customer.name or known.get("name")))


def _with_email(account: str, person: lookup.Person) -> dict[str, lookup.Person]:
    # A user whose email Jira withholds from the API too is not cached: nothing to fill in from it.
    return {account: person} if person.get("email") else {}


def _user(session: requests.Session, settings: Settings, account: str) -> lookup.Person:
    """Fetch one user, retrying transient failures; {} when Jira has no such user, JiraUnavailable on outage."""
    response = lookup.get(_lookup(), session, f"{settings.jira_api_url}{PATH}", params={"accountId": account},
                          auth=(settings.jira_api_user or "", settings.jira_api_token or ""), absent=frozenset({404}))
    return {} if response is None else _person(response)


def _lookup() -> lookup.Lookup:
    return lookup.Lookup(what="Jira user look-up",
                         refused_hint="check TRACKER_JIRA_API_USER and TRACKER_JIRA_API_TOKEN "
                                      "(the API user needs Browse users and groups)",
                         unavailable=JiraUnavailable, attempts=ATTEMPTS,
                         timeouts=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), backoff=_backoff,
                         max_retry_after_s=MAX_RETRY_AFTER_S)


def _person(response: requests.Response) -> lookup.Person:
    """Turn a user answer into {"email", "name"} (email lower-cased), leaving out what Jira withholds."""
    try:
        user = response.json()
        fields = {"email": user.get("emailAddress"), "name": user.get("displayName")}
    except (ValueError, AttributeError):
        raise JiraUnavailable("Jira user look-up returned an unexpected body") from None
    person = {key: value.strip() for key, value in fields.items() if isinstance(value, str) and value.strip()}
    if "email" in person:
        person["email"] = person["email"].lower()
    return person


def _backoff(attempt: int) -> float:
    """Return the house backoff's delay after a failed attempt (BACKOFF_S read here, so tests may shorten it)."""
    return Backoff(first_s=BACKOFF_S, cap_s=MAX_RETRY_AFTER_S, attempts=ATTEMPTS).delay_s(attempt)
