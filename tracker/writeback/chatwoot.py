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
from tracker.writeback.base import Helpdesk, Note, Reply, current_tags, merged_tags


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
