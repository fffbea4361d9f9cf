"""Jira Service Management write-back: an internal comment on the request, and labels on its issue.

- Note: `POST {url}/rest/servicedeskapi/request/{issueIdOrKey}/comment` `{"body", "public": false}` (answers 201
  with the comment); `public: false` makes it internal, seen by agents only. Jira renders the body as wiki markup,
  so the note is sent in it, the customer's words escaped (tracker.writeback.markup).
- Labels: `PUT {url}/rest/api/3/issue/{issueIdOrKey}` `{"update": {"labels": [{"add": "csat-5"}, {"remove": …}]}}`
  (answers 204), which adds and removes without touching the issue's other labels. A Jira label cannot hold a
  space.
- Notes read: `GET {url}/rest/api/2/issue/{issueIdOrKey}/comment` (the platform's Get comments) with
  `orderBy=-created` and `maxResults=100`: the issue's newest 100 comments, newest first, in one read, internal
  ones among them (to an agent); each one's `body`, the wiki markup as kept (v2 answers it as a string, v3 as an
  Atlassian Document), and `renderedBody` (HTML) where given; looked through when an earlier try of a note may
  have written it (a timeout). Service Management's own Get request comments answers oldest first, paged
  (`start`, `limit`, `isLastPage`) with no total, so its newest 100 would take every page before them.
- Auth: Basic with the account's email (TRACKER_JIRA_API_USER) and an API token, as tracker.ingest.jira uses.
- Rate limit: a 429 carries `Retry-After` (seconds) and `X-RateLimit-Reset` (when the limit resets, ISO 8601 such
  as `2026-12-01T00:31Z`); some 503s carry Retry-After too.
- Probe: `GET /rest/api/3/myself`, the account the token belongs to.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from tracker.backoff import MAX_RETRY_AFTER_S, retry_after_s
from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, listed, texts_of

COMMENTS = 100  # the newest comments a look for a note reads: one page (Jira Cloud pages comments by 100 at most)


class Jira(Helpdesk):
    """Jira Service Management's client: internal request comments and issue labels."""

    source: ClassVar[str] = "jira"
    whoami: ClassVar[str] = "/rest/api/3/myself"

    def auth(self) -> Any:
        return (self.api.user, self.api.token)

    def retry_after_s(self, response: requests.Response) -> float | None:
        """Return the wait a 429 asks for: Retry-After, else until X-RateLimit-Reset (ISO 8601)."""
        wait = retry_after_s(response.headers.get("Retry-After"))
        if wait is not None:
            return wait
        reset = response.headers.get("X-RateLimit-Reset", "").strip()
        try:
            until = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):  # not a time, or one no clock reaches
            return None
        return min(max(until - time.time(), 0.0), MAX_RETRY_AFTER_S)

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        url = f"{self.api.url}/rest/servicedeskapi/request/{quote(note.ticket, safe='')}/comment"
        return self.call(session, "POST", url, what="comment", json={"body": note.wiki, "public": False}).outcome

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        """Return the `body` (wiki markup) and `renderedBody` (HTML, where given) of the issue's newest COMMENTS
        comments, newest first: one read of Get comments ordered `-created`. The request comment our note is
        written as is an issue comment too (internal: a JSM property, not another list), so the platform's read
        sees it; Service Management's Get request comments pages oldest first without a total and cannot ask for
        the newest."""
        url = f"{self.api.url}/rest/api/2/issue/{quote(note.ticket, safe='')}/comment"
        reply = self.call(session, "GET", url, what="read notes",
                          params={"orderBy": "-created", "maxResults": str(COMMENTS)})
        if not reply.ok:
            return reply.outcome
        comments = listed(reply, "comments", "jira read notes")
        return comments if isinstance(comments, Outcome) else texts_of(comments, ("body", "renderedBody"))

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        changes = [{"add": label(tag)} for tag in note.tags] + \
            [{"remove": label(tag)} for tag in note.stale_tags if tag not in note.tags]
        url = f"{self.api.url}/rest/api/3/issue/{quote(note.ticket, safe='')}"
        return self.call(session, "PUT", url, what="labels", json={"update": {"labels": changes}}).outcome


def label(tag: str) -> str:
    """Return a tag as a Jira label: Jira refuses labels with spaces, so whitespace becomes a hyphen."""
    return re.sub(r"\s+", "-", tag.strip())
