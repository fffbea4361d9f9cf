"""Chatwoot write-back: a private note on the conversation, and labels on it (Application API v1).

- Note: `POST {url}/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages`
  `{"content", "message_type": "outgoing", "private": true}`; a private note is shown to agents only. Chatwoot's
  dashboard renders a message's content as Markdown (markdown-it with linkify, line breaks kept, images, and its
  own mention links: app/javascript/shared/helpers/MessageFormatter.js), so the note is sent as Markdown with the
  customer's words escaped: no image of a stranger's server loads, no link or mention is theirs.
- Labels: `POST .../conversations/{conversation_id}/labels` `{"labels": [...]}` replaces the conversation's whole
  list, so the current list is read first (`GET .../labels` answers `{"payload": [...]}`) and written back with
  the new labels added and the stale ones dropped; nothing is written when that changes nothing. The write answers
  the conversation's labels as kept: one of ours missing there (an installation that keeps only labels the
  account defines) is refused, naming it, not reported written.
- Notes read: `GET .../conversations/{conversation_id}/messages` (Get messages) answers `{"meta", "payload": [...]}`,
  the conversation's newest 20 messages, oldest first; `before={message id}` the 20 before that one. Pages are read
  newest first until MESSAGES messages are read, a page holds fewer than 20 (the conversation's start) or the
  note's reference, at most PAGES reads: each message's `content` (a note's Markdown as written) and
  `processed_message_content` where given, newest first; looked through when an earlier try of a note may have
  written it (a timeout). The API has no larger page and no order parameter (`after` reads forward, 100 at a time,
  from a message id, which would need the one 100 messages back).
- Auth: an agent's (user's) access token, in the header Chatwoot documents as `api_access_token`. It is sent as
  `Api-Access-Token`: nginx (Chatwoot's usual proxy) drops header names with underscores by default, and Rack maps
  both spellings to the HTTP_API_ACCESS_TOKEN Chatwoot reads. An agent bot's token may create messages but not
  set labels. TRACKER_CHATWOOT_API_USER is the account id; the conversation id is the one the
  webhooks name (Chatwoot's display id, which is what the API's paths take).
- Rate limit: Chatwoot's Rack::Attack answers 429, without Retry-After by default (the house backoff then waits).
- Probe: `GET /api/v1/profile`, the token's user, whose `accounts` must hold TRACKER_CHATWOOT_API_USER.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import requests

from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, Reply, current_tags, listed, merged_tags, texts_of

PAGE = 20  # messages a Get messages page holds (the newest, or those `before` a message id)
MESSAGES = 100  # the newest messages a look for a note reads, at least
PAGES = MESSAGES // PAGE  # reads of Get messages a look makes at most


class Chatwoot(Helpdesk):
    """Chatwoot's client: private notes and conversation labels."""

    source: ClassVar[str] = "chatwoot"
    whoami: ClassVar[str] = "/api/v1/profile"

    def probe(self, session: requests.Session) -> Reply:
        reply = super().probe(session)
        accounts = reply.body.get("accounts") if reply.ok and isinstance(reply.body, dict) else None
        if not isinstance(accounts, list):
            return reply
        ids = [str(account.get("id")) for account in accounts if isinstance(account, dict)]
        if self.api.user in ids:
            return reply
        return Reply(Outcome("refused", reply.outcome.code, f"chatwoot: the token's user is not in account "
                             f"{self.api.user} (TRACKER_CHATWOOT_API_USER); its accounts: {', '.join(ids) or 'none'}",
                             None))

    def headers(self) -> dict[str, str]:
        return {"Api-Access-Token": self.api.token}

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        body = {"content": note.markdown, "message_type": "outgoing", "private": True}
        return self.call(session, "POST", f"{self._conversation(note)}/messages", what="note", json=body).outcome

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        """Return the `content` and `processed_message_content` of the conversation's newest MESSAGES messages,
        newest first, private notes and replies alike.

        Get messages answers the newest PAGE, oldest first, and `before=<id>` the PAGE before that message: so up
        to PAGES pages are read backwards from the newest, each one's oldest id naming the next, stopping early at
        a short page (the conversation's first messages), an empty one, one whose ids do not go back (a server
        that ignores `before`), or one holding the note's reference (a note just written is on the first)."""
        texts: list[str] = []
        before: int | None = None
        for _ in range(PAGES):
            reply = self.call(session, "GET", f"{self._conversation(note)}/messages", what="read notes",
                              params={"before": str(before)} if before is not None else None)
            if not reply.ok:
                return reply.outcome
            page = listed(reply, "payload", "chatwoot read notes")
            if isinstance(page, Outcome):
                return page
            texts += texts_of(reversed(page), ("content", "processed_message_content"))
            ids = [message["id"] for message in page
                   if isinstance(message.get("id"), int) and not isinstance(message["id"], bool)]
            oldest = min(ids, default=None)
            if (len(page) < PAGE or oldest is None or (before is not None and oldest >= before)
                    or any(note.written_in(text) for text in texts)):
                break
            before = oldest
        return texts

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        current = self.call(session, "GET", f"{self._conversation(note)}/labels", what="labels")
        if not current.ok:
            return current.outcome
        labels = current_tags(current, "payload", "chatwoot labels")
        if isinstance(labels, Outcome):
            return labels
        merged = merged_tags(labels, note)
        if merged == labels:
            return Outcome("delivered", current.outcome.code, "chatwoot labels: already set", None)
        # Another agent's label change between the read and this write would be lost: the API has no "add".
        written = self.call(session, "POST", f"{self._conversation(note)}/labels", what="labels",
                            json={"labels": merged})
        kept = written.body.get("payload") if written.ok and isinstance(written.body, dict) else None
        if not isinstance(kept, list):
            return written.outcome
        have = {label.lower() for label in kept if isinstance(label, str)}
        dropped = [tag for tag in note.tags if tag.lower() not in have]
        if not dropped:
            return written.outcome
        return Outcome("refused", written.outcome.code,
                       f"chatwoot labels: the conversation kept {', '.join(map(str, kept)) or 'none'} but not "
                       f"{', '.join(dropped)}: an installation that keeps only the account's own labels needs them "
                       "created (Settings, Labels)", None)

    def _conversation(self, note: Note) -> str:
        account = quote(self.api.user, safe="")
        return f"{self.api.url}/api/v1/accounts/{account}/conversations/{quote(note.ticket, safe='')}"
