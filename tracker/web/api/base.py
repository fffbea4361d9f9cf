"""What every leads' API view shares: the key check (scopes and rate limit) and query loading."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from flask import g, request
from marshmallow import Schema

from tracker.schema_cache import schema as shared
from tracker.scores.summary import FILTERS, Facets
from tracker.web.api.ratelimit import over_limit, rate_window_ms
from tracker.web.context import Tracker, current_tracker
from tracker.web.errors import envelope

# What a view reads with the key check: given the view's arguments, a function queueing the reads on a pipeline.
Reads = Callable[..., Callable[[Any], None] | None]


def now_ms() -> int:
    return int(time.time() * 1000)


def tracker() -> Tracker:
    return current_tracker()


def require_key(scope: str = "read", reads: Reads | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a request through only with `Authorization: Bearer <key>` of a key holding scope, within its rate.

    reads: given the view's arguments, what the view reads (queued on a pipeline), or None: it is read with the
    key check, in the same round trip, and the view gets the replies as `prefetched`. A request the key check
    turns away (401, 403, 429) gets nothing of them.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            found = None
            app = tracker()
            queue = None
            if scheme.lower() == "bearer" and key.strip():
                queue = reads(**kwargs) if reads is not None else None
                # One round trip for the check, the rate count and the view's reads together: every API request
                # pays it (two for a key this process has not seen yet).
                found, replies = app.store.admit_key_and_read(key.strip(), rate_window_ms(app.settings), now_ms(),
                                                              queue)
            if found is None:
                return envelope(401, "A valid API key is required: Authorization: Bearer <key>.",
                                headers={"WWW-Authenticate": 'Bearer realm="tracker"'})
            limited = over_limit(app.settings, found)
            if limited is not None:
                return limited
            if scope not in found.scopes:
                return envelope(403, f"This API key lacks the {scope!r} scope.")
            g.api_key = found.name
            if queue is not None:
                kwargs["prefetched"] = replies
            return view(*args, **kwargs)

        return guarded

    return decorate


def load_query(schema: type[Schema]) -> dict[str, Any]:
    """Load the query string through a schema; a ValidationError becomes the 422 envelope."""
    return dict(shared(schema).load(request.args))


def filters_of(query: Mapping[str, Any]) -> Facets:
    """Read the filters out of a loaded query string."""
    return Facets(**{name: query.get(name) for name in FILTERS})
