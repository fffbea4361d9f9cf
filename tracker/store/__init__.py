"""The Redis store: the only place that knows key names and Lua."""

from __future__ import annotations

import redis

from tracker.store import keys
from tracker.store.alerts import HeldAlerts
from tracker.store.apikeys import ApiKeys
from tracker.store.base import connect
from tracker.store.cases import Cases
from tracker.store.commented import CommentIndex
from tracker.store.dispatch import Dispatch
from tracker.store.due import Due
from tracker.store.erasure import Erasure
from tracker.store.expiry import Expiries
from tracker.store.layout import Layout
from tracker.store.log import EventLog
from tracker.store.metrics import Metrics
from tracker.store.notices import Notices
from tracker.store.optouts import OptOuts
from tracker.store.outbox import Outbox
from tracker.store.profiles import Profiles
from tracker.store.queries import Queries
from tracker.store.records import Records
from tracker.store.reminders import Reminders
from tracker.store.replies import Replies
from tracker.store.retention import Retention
from tracker.store.risk import RiskRanking
from tracker.store.scores import Scores
from tracker.store.search import Search
from tracker.store.sessions import Sessions
from tracker.store.state import State, ticket_key
from tracker.store.surveys import Surveys
from tracker.store.timeline import Timeline
from tracker.store.writeback import Writeback


class Store(EventLog, State, Surveys, Due, Scores, ApiKeys, Reminders, Queries, Erasure, Metrics, Replies,
            OptOuts, Records, Retention, Sessions, Timeline, Layout, Outbox, Expiries,
            Notices, Dispatch, Writeback, Cases, Search, RiskRanking, CommentIndex, HeldAlerts, Profiles):
    """Every storage operation of the product, over one Redis client."""

    @classmethod
    def never_asked(cls) -> Store:
        """A store that asks Redis nothing and opens no connection (a page rendered without Redis: `tracker survey
        preview`, the start-up check of the operator's page templates); a command sent by mistake fails at once
        instead of reaching a Redis, such as another application's on localhost:6379."""
        return cls(redis.Redis(host="never-asked.invalid", socket_connect_timeout=1))

    @classmethod
    def from_url(cls, url: str) -> Store:
        store = cls(connect(url))
        store.note_layout()  # an empty Redis is marked as this key layout's, once per store opened
        return store


__all__ = ["Store", "keys", "ticket_key"]
