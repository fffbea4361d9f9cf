"""The Redis store: the only place that knows key names and Lua."""

from __future__ import annotations

from tracker.store import keys
from tracker.store.apikeys import ApiKeys
from tracker.store.base import StorageError, connect
from tracker.store.log import EventLog
from tracker.store.scores import Scores
from tracker.store.state import State, ticket_key
from tracker.store.surveys import Surveys


class Store(EventLog, State, Surveys, Scores, ApiKeys):
    """Every storage operation of the product, over one Redis client."""

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(connect(url))


__all__ = ["StorageError", "Store", "keys", "ticket_key"]
