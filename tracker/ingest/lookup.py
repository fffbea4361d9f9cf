"""One vendor API look-up for the enrichment hooks: a GET with timeouts that retries only what may pass.

Connection errors, timeouts, 429 (honouring a short Retry-After) and 502/503/504 are retried with
the house backoff; 401/403 and other statuses are refused at once, with a hint naming the settings
to check. Every failure raises the hook's own EnrichmentUnavailable, so its events stay pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import requests

from tracker.backoff import retry_after_s
from tracker.ingest.enrich import EnrichmentUnavailable
from tracker.store import Store

RETRIED_STATUSES = frozenset({429, 502, 503, 504})

Person = dict[str, str]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lookup:
    """Say how one vendor's API is asked: its name in messages and its limits (built per call: tests shorten them)."""

    what: str  # "Zendesk user look-up"
    refused_hint: str  # "check TRACKER_ZENDESK_EMAIL and TRACKER_ZENDESK_TOKEN"
    unavailable: Callable[[str], EnrichmentUnavailable]
    attempts: int
    timeouts: tuple[float, float]  # connect, read
    backoff: Callable[[int], float]  # delay after a failed attempt
    max_retry_after_s: float


def get(lookup: Lookup, session: requests.Session, url: str, auth: tuple[str, str],
        params: Mapping[str, str] | None = None, absent: frozenset[int] = frozenset()) -> requests.Response | None:
    """Return the 200 answer, None for a status in absent (the thing does not exist), or raise unavailable."""
    problem = "no attempt made"
    for attempt in range(1, lookup.attempts + 1):
        try:
            response = session.get(url, params=params, auth=auth, headers={"Accept": "application/json"},
                                   timeout=lookup.timeouts, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem, wait = type(exc).__name__, lookup.backoff(attempt)
        except requests.RequestException as exc:
            raise lookup.unavailable(f"{lookup.what} failed: {type(exc).__name__}") from None
        else:
            status = response.status_code
            if status == 200:
                return response
            if status in absent:
                return None
            problem = f"HTTP {status}"
            if status in (401, 403):
                raise lookup.unavailable(f"{lookup.what} refused ({problem}); {lookup.refused_hint}")
            if status not in RETRIED_STATUSES:
                raise lookup.unavailable(f"{lookup.what} failed: {problem}")
            retry_after = _retry_after(lookup, response, attempt) if status == 429 else lookup.backoff(attempt)
            if retry_after is None:
                raise lookup.unavailable(f"{lookup.what} rate-limited ({problem}) for more than "
                                         f"{lookup.max_retry_after_s:g} s")
            wait = retry_after
        if attempt < lookup.attempts:
            log.warning("%s: %s on attempt %d of %d, retrying in %.1f s", lookup.what, problem, attempt,
                        lookup.attempts, wait)
            time.sleep(wait)
    raise lookup.unavailable(f"{lookup.what} failed: {problem} after {lookup.attempts} attempts")


def _retry_after(lookup: Lookup, response: requests.Response, attempt: int) -> float | None:
    """Return the vendor's Retry-After in seconds, a backoff when it is absent, or None when too long."""
    seconds = retry_after_s(response.headers.get("Retry-After"))
    if seconds is None:
        return lookup.backoff(attempt)
    return seconds if seconds <= lookup.max_retry_after_s else None


def people(store: Store, source: str, wanted: Sequence[str], askable: Callable[[str], bool], chunk: int,
           fetch: Callable[[requests.Session, list[str]], dict[str, Person]],
           session: requests.Session | None = None) -> dict[str, Person]:
    """Return the vendor's people among wanted: cached ones, then the rest fetched a chunk at a time and cached.

    Each chunk is cached as soon as it is fetched, so a look-up that fails half-way keeps what it found.
    """
    known = store.cached_people(source, list(wanted))
    missing = [pid for pid in wanted if pid not in known and askable(pid)]
    if not missing:
        return known
    http = session or requests.Session()
    try:
        for start in range(0, len(missing), chunk):
            found = fetch(http, missing[start:start + chunk])
            if found:
                store.cache_people(source, found)
            known.update(found)
    finally:
        if session is None:
            http.close()
    log.info("Looked up %d %s users, %d found (%d cached)", len(missing), source,
             sum(pid in known for pid in missing), len(wanted) - len(missing))
    return known
