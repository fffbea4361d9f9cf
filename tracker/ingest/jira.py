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
CACHE_TTL_S = 86400
MAX_ACCOUNT_ID = 128

log = logging.getLogger(__name__)

Person = dict[str, str]


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
    people = store.cached_people(SOURCE, wanted)
    missing = [account for account in wanted if account not in people and len(account) <= MAX_ACCOUNT_ID]
    if missing:
        http = session or requests.Session()
        try:
            for account in missing:
                found = _user(http, settings, account)
                if found.get("email"):
                    store.cache_people(SOURCE, {account: found}, ttl_s=CACHE_TTL_S)
                    people[account] = found
        finally:
            if session is None:
                http.close()
        log.info("Looked up %d Jira users, %d with an email (%d cached)", len(missing),
                 sum(account in people for account in missing), len(wanted) - len(missing))
    return [_filled(event, people) for event in events]


def _filled(event: Event, people: dict[str, Person]) -> Event:
    """Return the event with what Jira knows filled into the reporter's empty fields."""
    customer = event.customer
    known = people.get(customer.id or "") if not customer.email else None
    if not known:
        return event
    return replace(event, customer=replace(customer, email=known["email"], name=customer.name or known.get("name")))


def _user(session: requests.Session, settings: Settings, account: str) -> Person:
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


def _person(response: requests.Response) -> Person:
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
