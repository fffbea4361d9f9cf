"""Gorgias write-back: an internal note on the ticket, and tags added to it (REST API).

- Note: `POST /api/tickets/{id}/messages` with `channel: "internal-note"` (never sent to the customer),
  `via: "api"`, `from_agent: true`, `sender: {"email": <the API user>}`, `body_text` and `body_html`.
- Tags: `POST /api/tickets/{id}/tags` `{"names": [...]}` adds them by name (201); `DELETE` on the same path with
  `{"names": [...]}` removes stale ones (PUT would replace them all).
- Notes read: `GET /api/messages` (List messages) with `ticket_id`, `limit=100` (the most) and
  `order_by=created_datetime:desc`: one page of the ticket's newest 100 messages (cursor paged, `meta.next_cursor`
  for older ones, not read), each one's `body_html`, `body_text`, `stripped_html` and `stripped_text`; looked
  through when an earlier try of a note may have written it (a timeout). `GET /api/tickets/{id}/messages` is
  deprecated and lists oldest first.
- Auth: basic, the account email and the API key. Rate limit: a 429 carries Retry-After in seconds (and
  X-Gorgias-Account-Api-Call-Limit, used/limit, which says nothing about when to retry).
- Probe: `GET /api/account`, the account the key's user belongs to.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, listed, texts_of

MESSAGES = 100  # the newest messages a look for a note reads: List messages' largest `limit`
TEXTS = ("body_html", "body_text", "stripped_html", "stripped_text")  # a message's texts, as Gorgias keeps them


class Gorgias(Helpdesk):
    """Write internal notes and tags on Gorgias tickets."""

    source = "gorgias"
    whoami: ClassVar[str] = "/api/account"

    def auth(self) -> tuple[str, str]:
        return (self.api.user, self.api.token)

    def _ticket(self, note: Note) -> str:
        return f"{self.api.url}/api/tickets/{quote(note.ticket, safe='')}"

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        body = {"channel": "internal-note", "via": "api", "from_agent": True, "sender": {"email": self.api.user},
                "body_text": note.text, "body_html": note.html}
        return self.call(session, "POST", f"{self._ticket(note)}/messages", what="internal note", json=body).outcome

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        """Return the texts of the ticket's newest 100 messages (internal notes among them), newest first."""
        params = {"ticket_id": note.ticket, "limit": str(MESSAGES), "order_by": "created_datetime:desc"}
        reply = self.call(session, "GET", f"{self.api.url}/api/messages", what="read messages", params=params)
        if not reply.ok:
            return reply.outcome
        messages = listed(reply, "data", "gorgias read messages")
        return messages if isinstance(messages, Outcome) else texts_of(messages, TEXTS)

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        url = f"{self._ticket(note)}/tags"
        added = self.call(session, "POST", url, what="add tags", json={"names": list(note.tags)})
        if not added.ok or not note.stale_tags:
            return added.outcome
        return self.call(session, "DELETE", url, what="remove stale tags",
                         json={"names": list(note.stale_tags)}).outcome
