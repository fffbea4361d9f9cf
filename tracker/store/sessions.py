"""Dashboard sign-ins kept server-side, so signing out ends a session wherever its cookie was copied."""

from __future__ import annotations

import json

from tracker.store import keys
from tracker.store.apikeys import digest
from tracker.store.base import RedisBase


class Sessions(RedisBase):
    """Start, check and end dashboard sessions; only a digest of each session id is stored."""

    def start_session(self, session_id: str, key_name: str, ttl_s: int) -> None:
        """Remember a sign-in with the API key's name for ttl_s seconds."""
        self.redis.set(keys.dashboard_session(digest(session_id)), key_name, ex=ttl_s)

    def session_sign_in(self, session_id: str, key_name: str) -> tuple[str | None, int | None]:
        """Return the key name a live session signed in with (None once it ended) and the creation time of the
        live key named key_name (None once revoked), in one round trip: what every dashboard page checks."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.dashboard_session(digest(session_id)))
        pipe.hget(keys.API_KEYS, key_name)
        name, meta = pipe.execute()
        return name, (int(json.loads(meta)["created_at"]) if meta else None)

    def end_session(self, session_id: str) -> None:
        """Forget a sign-in, so its cookie no longer opens the dashboard."""
        self.redis.delete(keys.dashboard_session(digest(session_id)))

    def sign_in_failures(self, client: str) -> tuple[int, int]:
        """Return how many sign-ins failed from client in its window so far, and the milliseconds the window has
        left (0: no window open)."""
        pipe = self.redis.pipeline(transaction=False)  # one key
        pipe.get(keys.sign_in_failures(client))
        pipe.pttl(keys.sign_in_failures(client))
        count, left = pipe.execute()
        return int(count or 0), max(0, int(left))

    def note_sign_in_failure(self, client: str, window_ms: int) -> tuple[int, int]:
        """Count a failed sign-in from client in its window, opening one of window_ms when none is open; return the
        count and the milliseconds the window has left."""
        key = keys.sign_in_failures(client)
        pipe = self.redis.pipeline(transaction=True)  # one key
        pipe.set(key, 0, px=window_ms, nx=True)
        pipe.incr(key)
        pipe.pttl(key)
        _, count, left = pipe.execute()
        if int(left) < 0:  # the window ended between SET and INCR, which made the key anew without one
            self.redis.pexpire(key, window_ms)
            left = window_ms
        return int(count), int(left)
