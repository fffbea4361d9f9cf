"""Freshdesk write-back: a private note on the ticket, and its tags (API v2).

- Note: `POST /api/v2/tickets/{id}/notes` `{"body": <HTML>, "private": true}` (a private note agents alone see).
- Tags: Freshdesk's ticket update replaces the whole tag list, so the ticket's tags are read first
  (`GET /api/v2/tickets/{id}`, its `tags`), then `PUT /api/v2/tickets/{id}` `{"tags": <current, less the stale
  ones, plus ours>}`; nothing is sent when the list would not change.
- Notes read: `GET /api/v2/tickets/{id}/conversations` (List All Conversations of a Ticket: replies and notes,
  oldest first, paged, no order parameter) with `per_page=100` and `page=1, 2, ...` until a page holds fewer than
  100 (the last) or the note's reference, at most PAGES pages: every conversation's `body` (HTML) and `body_text`,
  newest first; looked through when an earlier try of a note may have written it (a timeout).
- Auth: basic, the API key as user and `X` as password. Rate limit: a 429 carries Retry-After in seconds.
- Probe: `GET /api/v2/agents/me`, the agent the key belongs to.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, current_tags, listed, merged_tags, texts_of

PER_PAGE = 100  # conversations a page, the most Freshdesk sends (30 unless asked)
PAGES = 10  # pages of conversations read at most, oldest first, to reach the newest (1,000 conversations)


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

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        """Return the `body` (HTML) and `body_text` of the ticket's conversations, newest first.

        List All Conversations of a Ticket answers oldest first and takes no order, only `page` and `per_page` (at
        most 100); its Link header, which names the next page, is not kept by `call`. So the pages are read in turn,
        100 conversations each, until one holds fewer (the last page: a full one may be followed by an empty one)
        or the note's reference: the newest conversations come last, and a note just written is on the last page.
        One page is one read for nearly every ticket; a ticket of more than PAGES full pages is not read to its
        end, and its look fails (the caller then writes the note) rather than spend a read per hundred
        conversations on it."""
        url = f"{self._ticket(note)}/conversations"
        found: list[list[str]] = []  # each conversation's texts, oldest first
        for page in range(1, PAGES + 1):
            reply = self.call(session, "GET", url, what="read notes",
                              params={"per_page": str(PER_PAGE), "page": str(page)})
            if not reply.ok:
                return reply.outcome
            conversations = listed(reply, "", "freshdesk read notes")
            if isinstance(conversations, Outcome):
                return conversations
            texts = [texts_of([item], ("body", "body_text")) for item in conversations]
            found += [each for each in texts if each]
            if len(reply.body) < PER_PAGE or any(note.written_in(text) for each in texts for text in each):
                return [text for each in reversed(found) for text in each]
        return Outcome("refused", reply.outcome.code, f"freshdesk read notes: ticket {note.ticket} has more than "
                                                      f"{PAGES * PER_PAGE} conversations; its newest were not read",
                       None)

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
