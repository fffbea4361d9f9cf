"""Zendesk users API: fill in the emails and names that event-subscription webhooks give as ids only.

Authentication is Zendesk's API-token scheme: HTTP Basic with `{email}/token` as the user name and
the token as the password. `GET /api/v2/users/show_many.json?ids=1,2` takes at most 100 ids and
leaves deleted users out of its answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from typing import Any

import requests

from tracker.config import Settings
from tracker.store import Store

SOURCE = "zendesk"
BATCH = 100
ATTEMPTS = 3
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 30.0
CACHE_TTL_S = 86400
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
CUSTOMER_FIELDS = ("email", "name", "locale")
AGENT_FIELDS = ("email", "name")

log = logging.getLogger(__name__)

Person = dict[str, str]


class ZendeskUnavailable(Exception):
    """The look-up failed for a reason that may pass; leave the events unacknowledged and retry later."""


def enrich(records: list[dict[str, Any]], settings: Settings, store: Store,
           session: requests.Session | None = None) -> None:
    """Fill in missing emails, names and locales of Zendesk customers and agents, in place."""
    if not (settings.zendesk_url and settings.zendesk_email and settings.zendesk_token):
        return
    wanted = list(dict.fromkeys(str(person["id"]) for person, _ in _lacking(records)))
    if not wanted:
        return
    people = store.cached_people(SOURCE, wanted)
    # Zendesk ids are integers; anything else cannot be looked up and is left for the pipeline to reject.
    missing = [pid for pid in wanted if pid not in people and pid.isdigit()]
    if missing:
        http = session or requests.Session()
        try:
            for start in range(0, len(missing), BATCH):
                found = _show_many(http, settings, missing[start:start + BATCH])
                if found:
                    store.cache_people(SOURCE, found, ttl_s=CACHE_TTL_S)
                people.update(found)
        finally:
            if session is None:
                http.close()
        log.info("Looked up %d Zendesk users, %d found (%d cached)", len(missing),
                 sum(pid in people for pid in missing), len(wanted) - len(missing))
    for person, fields in _lacking(records):
        known = people.get(str(person["id"]), {})
        for name in fields:
            if known.get(name) and not person.get(name):
                person[name] = known[name]


def _lacking(records: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Yield each Zendesk customer without an email and agent without an email or name, with its fields."""
    for record in records:
        if record.get("source") != SOURCE:
            continue
        customer = record.get("customer")
        if isinstance(customer, dict) and customer.get("id") and not customer.get("email"):
            yield customer, CUSTOMER_FIELDS
        ticket = record.get("ticket")
        agent = ticket.get("agent") if isinstance(ticket, dict) else None
        if isinstance(agent, dict) and agent.get("id") and not (agent.get("email") and agent.get("name")):
            yield agent, AGENT_FIELDS


def _show_many(session: requests.Session, settings: Settings, ids: list[str]) -> dict[str, Person]:
    """Fetch up to 100 users in one request, retrying transient failures, or raise ZendeskUnavailable."""
    url = f"{settings.zendesk_url}/api/v2/users/show_many.json?ids={','.join(ids)}"
    auth = (f"{settings.zendesk_email}/token", settings.zendesk_token or "")
    problem = "no attempt made"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = session.get(url, auth=auth, headers={"Accept": "application/json"},
                                   timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem, wait = type(exc).__name__, _backoff(attempt)
        except requests.RequestException as exc:
            raise ZendeskUnavailable(f"Zendesk user look-up failed: {type(exc).__name__}") from None
        else:
            status = response.status_code
            if status == 200:
                return _people(response)
            problem = f"HTTP {status}"
            if status in (401, 403):
                raise ZendeskUnavailable(f"Zendesk user look-up refused ({problem}); check "
                                         "TRACKER_ZENDESK_EMAIL and TRACKER_ZENDESK_TOKEN")
            if status not in RETRIED_STATUSES:
                raise ZendeskUnavailable(f"Zendesk user look-up failed: {problem}")
            retry_after = _retry_after(response, attempt) if status == 429 else _backoff(attempt)
            if retry_after is None:
                raise ZendeskUnavailable(f"Zendesk user look-up rate-limited ({problem}) for more than "
                                         f"{MAX_RETRY_AFTER_S:g} s")
            wait = retry_after
        if attempt < ATTEMPTS:
            log.warning("Zendesk user look-up: %s on attempt %d of %d, retrying in %.1f s",
                        problem, attempt, ATTEMPTS, wait)
            time.sleep(wait)
    raise ZendeskUnavailable(f"Zendesk user look-up failed: {problem} after {ATTEMPTS} attempts")


def _people(response: requests.Response) -> dict[str, Person]:
    """Turn a show_many answer into {id: {"email", "name", "locale"}}, leaving out deleted users."""
    try:
        users = response.json()["users"]
        people: dict[str, Person] = {}
        for user in users:
            if user.get("active") is False:
                continue
            fields = {"email": user.get("email"), "name": user.get("name"), "locale": user.get("locale")}
            person = {k: v.strip() for k, v in fields.items() if isinstance(v, str) and v.strip()}
            for key in ("email", "locale"):
                if key in person:
                    person[key] = person[key].lower()
            people[str(user["id"])] = person
        return people
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ZendeskUnavailable("Zendesk user look-up returned an unexpected body") from None


def _retry_after(response: requests.Response, attempt: int) -> float | None:
    """Return Zendesk's Retry-After in seconds, a backoff when it is absent, or None when too long."""
    raw = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return _backoff(attempt)
    return max(seconds, 0.0) if seconds <= MAX_RETRY_AFTER_S else None


def _backoff(attempt: int) -> float:
    """Return an exponential delay with jitter, so that workers retrying together spread out."""
    return BACKOFF_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
