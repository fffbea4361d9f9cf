"""Help Scout write-back: a note on the conversation, and its tags (Mailbox/Inbox API 2.0).

- Auth: OAuth2 client credentials: `POST /v2/oauth2/token` with `grant_type=client_credentials`, `client_id`
  (TRACKER_HELPSCOUT_API_USER, the app id) and `client_secret` (TRACKER_HELPSCOUT_API_TOKEN) returns
  `{"access_token", "token_type", "expires_in"}`; the token is kept per process until shortly before it expires
  and fetched again once when a call answers 401 (revoked or expired early).
- Note: `POST /v2/conversations/{id}/notes` `{"text": ...}` (201, Resource-ID header); a note is seen by the
  team only. Thread text is shown as HTML, so the HTML form of the note is sent.
- Tags: `PUT /v2/conversations/{id}/tags` `{"tags": [...]}` replaces the whole list (204), so the conversation's
  tags are read first (`GET /v2/conversations/{id}`, `tags[].tag`).
- Merged conversations: a conversation merged into another is no longer reached by its old id. Get Conversation
  answers 301 Moved Permanently with a Location naming the conversation it went to, and a write to it answers 404
  ("call the Get Conversation endpoint to get a new conversation location", Delete Conversation). So a note
  refused 404 (or 301) asks the conversation where it went, and the tags' read follows the 301: on this API's own
  host only, at most MERGES moves, the note and tags then written on the conversation it became.
- Notes read: `GET /v2/conversations/{id}/threads` (List Threads, newest first; paged, `page=2`, ... while
  `page.totalPages` says there are more) until the newest THREADS threads are read or one holds the note's
  reference: each thread's `body` (a note's HTML as kept), whatever its type; looked through when an earlier try of
  a note may have written it (a timeout). A plain read of the conversation id: a merged one answers 404, and the
  note is then written (add_note follows the merge), at worst a second time.
- Rate limit: a 429 carries X-RateLimit-Retry-After (seconds).
- Probe: a token, then `GET /v2/users/me`, the user the app acts as.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from tracker.backoff import retry_after_s
from tracker.notify.targets import Outcome
from tracker.writeback.base import Helpdesk, Note, Reply, current_tags, listed, merged_tags, texts_of

EARLY_S = 60.0  # a token is fetched again this long before Help Scout says it expires
MERGES = 3  # moves of a merged conversation followed (merged into one that was merged again), at most
THREADS = 100  # the newest threads a look for a note reads, at least (List Threads pages them by 25 or 50)
PAGES = 4  # pages of threads read at most (THREADS at the smallest page size)


class HelpScout(Helpdesk):
    """Write notes and tags on Help Scout conversations."""

    source = "helpscout"
    whoami: ClassVar[str] = "/v2/users/me"
    _tokens: ClassVar[dict[tuple[str, str], tuple[str, float]]] = {}  # (url, app id) -> (token, good until)
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def retry_after_s(self, response: requests.Response) -> float | None:
        found = retry_after_s(response.headers.get("X-RateLimit-Retry-After"))
        return found if found is not None else super().retry_after_s(response)

    def _conversation(self, note: Note) -> str:
        return f"{self.api.url}/v2/conversations/{quote(note.ticket, safe='')}"

    def _token(self, session: requests.Session) -> str | Reply:
        key = (self.api.url, self.api.user)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            response = session.post(f"{self.api.url}/v2/oauth2/token", timeout=(3.0, 10.0), allow_redirects=False,
                                    data={"grant_type": "client_credentials", "client_id": self.api.user,
                                          "client_secret": self.api.token},
                                    headers={"Accept": "application/json"})
        except (requests.ConnectionError, requests.Timeout) as exc:
            return Reply(Outcome("retry", None, f"helpscout access token: {type(exc).__name__}", None))
        except requests.RequestException as exc:
            return Reply(Outcome("refused", None, f"helpscout access token: {type(exc).__name__}", None))
        if response.status_code == 429 or response.status_code >= 500:
            return Reply(Outcome("retry", response.status_code,
                                 f"helpscout access token unavailable: HTTP {response.status_code}",
                                 self.retry_after_s(response)))
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            token, lifetime = "", 0.0
        if response.status_code != 200 or not token:
            return Reply(Outcome("refused", response.status_code,
                                 f"helpscout access token refused: HTTP {response.status_code}: "
                                 f"{self.error_text(response)}; check TRACKER_HELPSCOUT_API_USER and "
                                 "TRACKER_HELPSCOUT_API_TOKEN (the app id and secret)", None))
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(lifetime - EARLY_S, 0.0))
        return token

    def _forget(self, token: str) -> None:
        key = (self.api.url, self.api.user)
        with self._lock:
            if self._tokens.get(key, ("", 0.0))[0] == token:
                del self._tokens[key]

    def _authed(self, session: requests.Session, method: str, url: str, *, what: str,
                json: object = None, params: dict[str, str] | None = None) -> Reply:
        """Call with the cached access token; on a 401 fetch a new token once and call again."""
        for attempt in (1, 2):
            token = self._token(session)
            if isinstance(token, Reply):
                return token
            reply = self.call(session, method, url, what=what, json=json, params=params,
                              headers={"Authorization": f"Bearer {token}"})
            if reply.outcome.code != 401 or attempt == 2:
                return reply
            self._forget(token)
        raise AssertionError("unreachable")

    def probe(self, session: requests.Session) -> Reply:
        return self.unconfirmed(self._authed(session, "GET", f"{self.api.url}{self.whoami}",
                                             what="credentials check"))

    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        url = self._conversation(note)
        reply = self._authed(session, "POST", f"{url}/notes", what="note", json={"text": note.html})
        if reply.outcome.code not in (301, 404):
            return reply.outcome
        # Nothing was written: if the conversation was merged, its read names the one it became.
        moved, found = self._current(session, note)
        if moved == url or not found.ok:
            return reply.outcome if moved == url and found.ok else found.outcome
        written = self._authed(session, "POST", f"{moved}/notes", what="note", json={"text": note.html}).outcome
        return Outcome(written.status, written.code, f"{written.detail} (conversation {note.ticket} was merged into "
                                                     f"{moved.rpartition('/')[2]})", written.retry_after_s)

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        texts: list[str] = []
        read = 0
        for page in range(1, PAGES + 1):
            reply = self._authed(session, "GET", f"{self._conversation(note)}/threads", what="read threads",
                                 params={"page": str(page)} if page > 1 else None)
            if not reply.ok:
                return reply.outcome
            threads = listed(reply, "_embedded.threads", "helpscout read notes")
            if isinstance(threads, Outcome):
                return threads
            texts += texts_of(threads, ("body",))
            read += len(threads)
            paging = reply.body.get("page")
            total = paging.get("totalPages") if isinstance(paging, dict) else None
            if (read >= THREADS or not threads or not isinstance(total, int) or page >= total
                    or any(note.written_in(text) for text in texts)):
                break
        return texts

    def _current(self, session: requests.Session, note: Note) -> tuple[str, Reply]:
        """Read the note's conversation, following the 301 of a merged one; return its URL and the last answer."""
        url = self._conversation(note)
        for _ in range(MERGES + 1):
            reply = self._authed(session, "GET", url, what="read conversation")
            moved = self._merged_into(url, reply)
            if moved is None:
                return url, reply
            url = moved
        return url, Reply(Outcome("refused", 301, f"helpscout conversation {note.ticket} was merged more than "
                                                  f"{MERGES} times over: not followed further", None))

    def _merged_into(self, url: str, reply: Reply) -> str | None:
        """Return the conversation a 301 names (its Location on this API's host, /v2/conversations/<id>), None for
        any other answer."""
        if reply.outcome.code != 301 or not reply.location:
            return None
        target, api = urlsplit(urljoin(url, reply.location)), urlsplit(self.api.url)
        prefix = f"{api.path.rstrip('/')}/v2/conversations/"
        ident = target.path[len(prefix):].strip("/") if target.path.startswith(prefix) else ""
        if (target.scheme, target.netloc) != (api.scheme, api.netloc) or not ident or "/" in ident:
            return None
        return f"{self.api.url}/v2/conversations/{ident}"

    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        url, conversation = self._current(session, note)
        if not conversation.ok:
            return conversation.outcome
        current = current_tags(conversation, "tags", "helpscout read conversation tags",
                               lambda tag: tag.get("tag") if isinstance(tag, dict) else None)
        if isinstance(current, Outcome):
            return current
        wanted = merged_tags(current, note)
        if wanted == current:
            return conversation.outcome
        return self._authed(session, "PUT", f"{url}/tags", what="update tags", json={"tags": wanted}).outcome
