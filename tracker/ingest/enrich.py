"""Per-source enrichment hooks: fill in what a vendor's webhook leaves out before the events apply.

Some sources send ids where the tracker needs emails and names (Zendesk's event subscriptions name
the requester and assignee by id only). A source's module registers a hook for its name; the
ingest runs the hooks without knowing any vendor. A hook that cannot reach its look-up service
raises EnrichmentUnavailable: the events that needed it stay unacknowledged and recovery retries
them, while the rest of the batch applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from tracker.config import Settings
from tracker.model import Event
from tracker.store import Store

log = logging.getLogger(__name__)

# A hook takes the events of its source and returns them, in the same order, filled in where it could.
Hook = Callable[[Sequence[Event], Settings, Store], list[Event]]

HOOKS: dict[str, Hook] = {}


class EnrichmentUnavailable(Exception):
    """A source's look-up failed for a reason that may pass; its events wait for a later attempt."""

    def __init__(self, source: str, reason: str):
        super().__init__(reason)
        self.source = source


def register(source: str) -> Callable[[Hook], Hook]:
    """Register the decorated function as the enrichment hook of source."""
    def decorate(hook: Hook) -> Hook:
        HOOKS[source] = hook
        return hook
    return decorate


def enrich(events: Sequence[Event], settings: Settings, store: Store) -> tuple[list[Event], frozenset[str]]:
    """Run each source's hook over its events; return the events, enriched, and the sources whose look-up is down."""
    result = list(events)
    down: set[str] = set()
    for source, hook in HOOKS.items():
        positions = [i for i, event in enumerate(result) if event.source == source]
        if not positions:
            continue
        try:
            enriched = hook([result[i] for i in positions], settings, store)
        except EnrichmentUnavailable as exc:
            log.warning("%s look-up failed (%s); events that need it stay pending", source, exc)
            down.add(source)
            continue
        for i, event in zip(positions, enriched, strict=True):
            result[i] = event
    return result, frozenset(down)
