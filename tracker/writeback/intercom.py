"""Intercom write-back: an admin note on the conversation, and tags on it (REST API 2.11).

- Note: `POST /conversations/{id}/reply` `{"message_type": "note", "type": "admin", "admin_id", "body"}`; a note is
  seen by teammates only, and its body takes some HTML.
- Tags: Intercom tags a conversation by tag id, not name. `POST /tags` `{"name"}` returns the tag, creating it
  when the workspace has none of that name, so it doubles as the look-up; then `POST /conversations/{id}/tags`
  `{"id", "admin_id"}` attaches it (attaching a tag the conversation already has changes nothing). Stale tags
  are read from the conversation (`GET /conversations/{id}`, its `tags.tags` name the ids) and detached with
  `DELETE /conversations/{id}/tags/{tag_id}` `{"admin_id"}`, so a tag is never created only to be removed.
- Notes read: `GET /conversations/{id}` (Retrieve a conversation) returns its parts, the newest 500 at most, in
  `conversation_parts.conversation_parts[]`: each part's `body` (HTML as kept: no `display_as=plaintext`, the
  note's reference reads the same either way), whatever its `part_type`, newest (`created_at`) first; looked
  through when an earlier try of a note may have written it (a timeout).
- Auth `Authorization: Bearer <access token>`; `Intercom-Version: 2.11` pins the documented shapes.
- Rate limit: a 429 carries `X-RateLimit-Reset`, the Unix time (seconds) the window resets; Intercom sends no
  Retry-After. TRACKER_INTERCOM_API_USER is the admin id that authors the note and the tag changes.
- Probe: `GET /me`, the admin the token belongs to, then `GET /admins/{admin_id}`: an unknown admin id (404) would
  refuse every note. A token that may not read admins (401, 403 on that second call) leaves the id unconfirmed.
"""

from __future__ import annotations

import math
import time
from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.backoff import retry_after_s
from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, Reply, listed, texts_of

VERSION = "2.11"
# Intercom resets its windows every 10 seconds; a reset further off than this is a clock or header fault.
MAX_RESET_WAIT_S = 300.0


class Intercom(Helpdesk):
    """Intercom's client: admin notes and conversation tags."""

    source: ClassVar[str] = "intercom"
    whoami: ClassVar[str] = "/me"

    def probe(self, session: requests.Session) -> Reply:
        reply = super().probe(session)
        if not reply.ok:
            return reply
        admin = self.call(session, "GET", f"{self.api.url}/admins/{quote(self.api.user, safe='')}",
                          what=f"admin {self.api.user} check")
        if admin.outcome.code == 404:
            return Reply(Outcome("refused", 404, f"intercom: the workspace has no admin {self.api.user} "
                                 "(TRACKER_INTERCOM_API_USER, the admin id notes are written as)", None))
        return admin if admin.outcome.code not in (401, 403) else reply

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api.token}", "Intercom-Version": VERSION}

    def retry_after_s(self, response: requests.Response) -> float | None:
        """Return the wait a 429 asks for: until X-RateLimit-Reset (Unix seconds), else a Retry-After if any."""
        try:
            reset = float(response.headers.get("X-RateLimit-Reset", "").strip())
        except ValueError:
            reset = math.nan
        if math.isfinite(reset):
            return min(max(reset - time.time(), 0.0), MAX_RESET_WAIT_S)
        return retry_after_s(response.headers.get("Retry-After"))

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        body = {"message_type": "note", "type": "admin", "admin_id": self.api.user, "body": note.html}
        return self.call(session, "POST", f"{self._conversation(note)}/reply", what="note", json=body).outcome

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        reply = self.call(session, "GET", self._conversation(note), what="read conversation")
        if not reply.ok:
            return reply.outcome
        parts = listed(reply, "conversation_parts.conversation_parts", "intercom read notes")
        if isinstance(parts, Outcome):
            return parts
        parts.sort(key=lambda part: part["created_at"] if isinstance(part.get("created_at"), int) else 0,
                   reverse=True)  # their order is not documented; an undated part goes last
        return texts_of(parts, ("body",))

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        last = Outcome("delivered", None, "intercom tags: nothing to do", None)
        for name in note.tags:
            tag = self.call(session, "POST", f"{self.api.url}/tags", what=f"tag {name}", json={"name": name})
            if not tag.ok:
                return tag.outcome
            tag_id = str((tag.body or {}).get("id") or "") if isinstance(tag.body, dict) else ""
            if not tag_id:
                return Outcome("refused", tag.outcome.code, f"intercom tag {name}: the answer names no tag id", None)
            attached = self.call(session, "POST", f"{self._conversation(note)}/tags", what=f"tag {name}",
                                 json={"id": tag_id, "admin_id": self.api.user})
            if not attached.ok:
                return attached.outcome
            last = attached.outcome
        if note.stale_tags:
            return self._detach(session, note) or last
        return last

    def _detach(self, session: requests.Session, note: Note) -> Outcome | None:
        """Detach the note's stale tags the conversation has; an Outcome only when a call failed."""
        conversation = self.call(session, "GET", self._conversation(note), what="conversation")
        if not conversation.ok:
            return conversation.outcome
        body = conversation.body if isinstance(conversation.body, dict) else {}
        tags = body.get("tags")
        present = tags.get("tags") if isinstance(tags, dict) else None
        present = present if isinstance(present, list) else []
        stale = {name.lower() for name in note.stale_tags}
        for tag in present:
            if not isinstance(tag, dict) or str(tag.get("name") or "").lower() not in stale or not tag.get("id"):
                continue
            removed = self.call(session, "DELETE", f"{self._conversation(note)}/tags/{quote(str(tag['id']), safe='')}",
                                what=f"untag {tag['name']}", json={"admin_id": self.api.user})
            # 404: the tag went between the read and the delete, which is what was wanted.
            if not removed.ok and removed.outcome.code != 404:
                return removed.outcome
        return None

    def _conversation(self, note: Note) -> str:
        return f"{self.api.url}/conversations/{quote(note.ticket, safe='')}"
