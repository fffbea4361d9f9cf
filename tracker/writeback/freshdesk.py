"""Freshdesk write-back: a private note on the ticket, and its tags (API v2).

- Note: `POST /api/v2/tickets/{id}/notes` `{"body": <HTML>, "private": true}` (a private note agents alone see).
- Tags: Freshdesk's ticket update replaces the whole tag list, so the ticket's tags are read first
  (`GET /api/v2/tickets/{id}`, its `tags`), then `PUT /api/v2/tickets/{id}` `{"tags": <current, less the stale
  ones, plus ours>}`; nothing is sent when the list would not change.
- Auth: basic, the API key as user and `X` as password. Rate limit: a 429 carries Retry-After in seconds.
- Probe: `GET /api/v2/agents/me`, the agent the key belongs to.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, current_tags, merged_tags


class Freshdesk(Helpdesk):
    """Write notes and tags on Freshdesk tickets."""

    source = "freshdesk"
    whoami: ClassVar[str] = "/api/v2/agents/me"

    def auth(self) -> tuple[str, str]:
        return (self.api.token, "X")

    def _ticket(self, note: Note) -> str:
        return f"{self.api.url}/api/v2/tickets/{quote(note.ticket, safe='')}"

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        body = {"body": note.html, "private": True}
        return self.call(session, "POST", f"{self._ticket(note)}/notes", what="private note", json=body).outcome

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        ticket = self.call(session, "GET", self._ticket(note), what="read ticket tags")
        if not ticket.ok:
            return ticket.outcome
        current = current_tags(ticket, "tags", "freshdesk read ticket tags")
        if isinstance(current, Outcome):
            return current
        wanted = merged_tags(current, note)
        if wanted == current:
            return ticket.outcome
        return self.call(session, "PUT", self._ticket(note), what="update tags", json={"tags": wanted}).outcome
