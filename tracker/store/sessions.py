"""Dashboard sign-ins kept server-side, so signing out ends a session wherever its cookie was copied."""

from __future__ import annotations

from tracker.store import keys
from tracker.store.apikeys import digest
from tracker.store.base import RedisBase


class Sessions(RedisBase):
    """Start, check and end dashboard sessions; only a digest of each session id is stored."""

    def start_session(self, session_id: str, key_name: str, ttl_s: int) -> None:
        """Remember a sign-in with the API key's name for ttl_s seconds."""
        self.redis.set(keys.dashboard_session(digest(session_id)), key_name, ex=ttl_s)

    def session_key_name(self, session_id: str) -> str | None:
        """Return the key name a live session signed in with, None once it ended or expired."""
        name: str | None = self.redis.get(keys.dashboard_session(digest(session_id)))
        return name

    def end_session(self, session_id: str) -> None:
        """Forget a sign-in, so its cookie no longer opens the dashboard."""
        self.redis.delete(keys.dashboard_session(digest(session_id)))
