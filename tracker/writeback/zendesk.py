"""Zendesk write-back: a private comment on the ticket, and tags added to it (Ticketing API v2).

- Note: `PUT /api/v2/tickets/{id}.json` `{"ticket": {"comment": {"html_body", "public": false}}}`: Zendesk
  creates comments only through a ticket update; `public: false` makes it an internal note agents alone see. The
  note is HTML, so it goes as `html_body` alone ("use html_body instead of body": body's HTML is stripped), and
  Zendesk keeps its plain text as the comment's `body`.
- Tags: `PUT /api/v2/tickets/{id}/tags.json` `{"tags": [...]}` adds them, keeping the ticket's others (POST would
  replace them all); `DELETE` on the same path with `{"tags": [...]}` removes stale ones.
- Notes read: `GET /api/v2/tickets/{id}/comments` with `page[size]=100` and `sort=-created_at` (cursor pagination,
  newest first): the newest 100 comments' `body`, `html_body` and `plain_body`, looked through when an earlier try
  of a note may have written it (a timeout).
- Auth: basic, `{email}/token` and the API token. Rate limit: a 429 carries Retry-After in seconds.
- A 409 Conflict means another update of the same ticket collided with this one: tried again later.
- Probe: `GET /api/v2/users/me.json`, the authenticated user; Zendesk answers a request it could not authenticate
  as its anonymous user (`"id": null`) rather than always with a 401, so that counts as refused.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, Reply, listed, texts_of


class Zendesk(Helpdesk):
    """Write notes and tags on Zendesk tickets."""

    source = "zendesk"
    transient: ClassVar[frozenset[int]] = frozenset({409})
    whoami: ClassVar[str] = "/api/v2/users/me.json"

    def probe(self, session: requests.Session) -> Reply:
        reply = super().probe(session)
        user = reply.body.get("user") if reply.ok and isinstance(reply.body, dict) else None
        if reply.ok and not (isinstance(user, dict) and user.get("id") is not None):
            return Reply(Outcome("refused", reply.outcome.code, "zendesk credentials check: Zendesk answered as its "
                                 "anonymous user, so the agent email and API token were not accepted", None))
        return reply

    def auth(self) -> tuple[str, str]:
        return (f"{self.api.user}/token", self.api.token)

    def _ticket(self, note: Note) -> str:
        return f"{self.api.url}/api/v2/tickets/{quote(note.ticket, safe='')}"

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        body = {"ticket": {"comment": {"html_body": note.html, "public": False}}}
        return self.call(session, "PUT", f"{self._ticket(note)}.json", what="private comment", json=body).outcome

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        reply = self.call(session, "GET", f"{self._ticket(note)}/comments", what="read comments",
                          params={"page[size]": "100", "sort": "-created_at"})
        if not reply.ok:
            return reply.outcome
        comments = listed(reply, "comments", "zendesk read comments")
        return comments if isinstance(comments, Outcome) else texts_of(comments, ("body", "html_body", "plain_body"))

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        url = f"{self._ticket(note)}/tags.json"
        added = self.call(session, "PUT", url, what="add tags", json={"tags": list(note.tags)})
        if not added.ok or not note.stale_tags:
            return added.outcome
        return self.call(session, "DELETE", url, what="remove stale tags", json={"tags": list(note.stale_tags)}).outcome
