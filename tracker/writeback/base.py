"""Helpdesk write-back (SPEC.md §11): what is written on a ticket, the client every helpdesk shares, the target.

The interface every vendor client builds on:

- `Note` is what one notice writes on one ticket: `ticket` (the id as the helpdesk names it: `data.survey.ticket`,
  or `data.ticket.id` for ticket.at_risk), `title` and `lines` (its fields), written as `text` (plain text),
  `html` (escaped HTML), `wiki` (Jira's wiki markup) or `markdown`, the customer's words shown as typed in each,
  `tags` to add
  (`csat-<rating>`, and `csat-unsatisfied` when the answer is not satisfied; empty for ticket.at_risk, which writes
  the note only), `stale_tags` (tags this note makes untrue: on a changed answer the previous `csat-<rating>`, and
  `csat-unsatisfied` when the answer is now satisfied; a client removes them where its tag call allows, never one
  of `tags`), `kind` (the notice type) and `customer` (the email).
  `note_for(notice, ctx) -> Note | None` builds it from the notice data (s10/CONTRACT.md) and the customer's score
  card read at delivery (running score, at risk); None when the notice names no ticket.
- `Helpdesk` is one vendor's client, built as `Client(api: HelpdeskApi)`; set `source` and write
  `add_note(session, note) -> Outcome` (an internal note, never a public reply) and `add_tags(session, note) ->
  Outcome` (called only when `note.tags`). Both make their calls with `self.call(session, method, url, what=...,
  json=..., params=..., headers=...) -> Reply`, which sends one attempt with the house timeouts (3 s connect,
  10 s read, no redirects) and `self.auth()` / `self.headers()`, and maps the answer: 2xx -> `Reply.ok`, the parsed
  JSON in `Reply.body`; 429 -> retry after `self.retry_after_s(response)` (Retry-After, seconds or an HTTP date;
  override for a vendor's own rate-limit header); 5xx, timeouts, connection errors and the statuses in
  `transient` -> retry (their Retry-After honoured); 401, 403, 404, any other 4xx or 3xx -> refused, with the
  vendor's error text (`self.error_text`) in the detail (a 3xx's Location in `Reply.location`, for a vendor that
  documents where a moved ticket went). A method returns `reply.outcome` unless `reply.ok`;
  nothing raises.
- `WritebackTarget(source, client)` (name `writeback:<source>`; tracker.writeback.writeback_target makes it)
  wants survey.answered / survey.changed whose `data.survey.source` is its source and ticket.at_risk whose
  `data.ticket.source` is; deliver writes the note,
  then the tags, and keeps per notice how far it got (store.writeback_step), so a retry after the tags failed
  never writes the note again, and a notice delivered whole is skipped if sent again. The step is `sending` while
  the note's call is out, and stays so after an answer that leaves it unsure whether the helpdesk took the note
  (`Outcome.unsure`: a timeout waiting for the answer, a connection lost after the request went, a 504), or a
  worker killed mid-call: the next try then reads the ticket's newest notes (`note_texts(session, note)`) for the
  note's reference (the last field, `note_reference(notice id)`), and writes it only when it is not there.
- `probe(session) -> Reply` proves the credentials for `tracker check` with a read that changes nothing: by default
  `GET {url}{whoami}`, the credentials' own user or account; a client whose vendor needs more overrides it.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import requests
from urllib3.exceptions import NewConnectionError

from tracker.backoff import record_through_outage, retry_after_s
from tracker.config import HelpdeskApi, Settings
from tracker.errors import StorageUnavailable
from tracker.i18n.catalogue import scale_labels
from tracker.notice_types import TICKET_AT_RISK
from tracker.notify.events import Notice
from tracker.notify.targets import DispatchContext, Outcome
from tracker.scales import SCALES
from tracker.scores.cards import customer_card
from tracker.writeback import markup
from tracker.writeback.markup import LINK

log = logging.getLogger(__name__)
TIMEOUTS = (3.0, 10.0)  # connect, read (seconds)
ANSWER_TYPES = ("survey.answered", "survey.changed")
DASHBOARD_CUSTOMER_PATH = "/dashboard/customers/"
ERROR_TEXT_MAX = 300
REFERENCE_DIGITS = 16
LOOK_AGAIN = (None, 429, 503)  # a look at a ticket's notes that failed so is tried again before writing
SENDING = "sending"  # the write-back step while a note's call is out, and after one whose answer left it unsure


@dataclass(frozen=True)
class Note:
    """What one notice writes on one helpdesk ticket: an internal note and the tags to add (and to drop).

    The note is a title, its fields (name, value) and the link to the customer's page on the dashboard, written in
    the form each helpdesk shows: plain `text`, escaped `html`, Jira's `wiki` markup or `markdown`
    (tracker.writeback.markup). The link is kept apart from the fields, so no field (an extra question's answer,
    whatever its question is called) is ever written as a link."""

    ticket: str
    title: str
    lines: tuple[tuple[str, str], ...]
    link: str
    tags: tuple[str, ...] = ()
    stale_tags: tuple[str, ...] = ()
    kind: str = ""
    customer: str = ""
    reference: str = ""  # note_reference(notice id), also the note's last field: how a later try finds it written

    def written_in(self, text: str) -> bool:
        """Say whether a note's text, in whatever form the helpdesk keeps it, is this note (holds its reference)."""
        return bool(self.reference) and re.search(rf"(?<![0-9a-f]){self.reference}(?![0-9a-f])", text) is not None

    @property
    def text(self) -> str:
        return "\n".join([self.title, *(f"{name}: {value}" for name, value in self.lines), f"{LINK}: {self.link}"])

    @property
    def html(self) -> str:
        cells = [f"<li><strong>{html.escape(name)}:</strong> {html.escape(value)}</li>" for name, value in self.lines]
        cells.append(f'<li><strong>{LINK}:</strong> <a href="{html.escape(self.link, quote=True)}">'
                     f"{html.escape(self.link)}</a></li>")
        return f"<p><strong>{html.escape(self.title)}</strong></p><ul>{''.join(cells)}</ul>"

    @property
    def wiki(self) -> str:
        return markup.jira_wiki(self.title, self.lines, self.link)

    @property
    def markdown(self) -> str:
        return markup.markdown(self.title, self.lines, self.link)


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange's result: its outcome, and the parsed JSON body of a 2xx answer (None if none)."""

    outcome: Outcome
    body: Any = None
    location: str = ""  # a 3xx answer's Location, as sent

    @property
    def ok(self) -> bool:
        return self.outcome.status == "delivered"


def note_reference(notice_id: str) -> str:
    """Name a notice's note on its ticket: 16 hex digits of the notice id's SHA-256, which no markup escapes."""
    return hashlib.sha256(notice_id.encode()).hexdigest()[:REFERENCE_DIGITS]


def customer_link(settings: Settings, email: str) -> str:
    """Return the dashboard address of a customer."""
    return f"{settings.public_url.rstrip('/')}{DASHBOARD_CUSTOMER_PATH}{quote(email, safe='@')}"


def rating_label(scale: str, rating: int) -> str:
    """Return a rating's English label on its scale (the number itself where the scale has no word for it)."""
    if scale not in SCALES:
        return str(rating)
    return dict(scale_labels("en", scale)).get(rating, str(rating))


def note_for(notice: Notice, ctx: DispatchContext) -> Note | None:
    """Build the note and tags a notice writes on its ticket, with the customer's score as it is now."""
    data = notice.data
    email = str((data.get("customer") or {}).get("email") or notice.customer)
    card = customer_card(ctx.store, ctx.settings, email, ctx.now_ms)
    score = card.score if card is not None else None
    at_risk = bool(card.at_risk) if card is not None else False
    standing = _standing(score, at_risk, ctx.settings.at_risk_score)
    link = customer_link(ctx.settings, email)
    name = (data.get("customer") or {}).get("name") or (card.name if card is not None else None)
    who = f"{name} <{email}>" if name else email
    reference = note_reference(notice.id)
    if notice.type == TICKET_AT_RISK:
        ticket = data.get("ticket") or {}
        if not ticket.get("id"):
            return None
        title = "Customer at risk: their running CSAT score is below the at-risk threshold"
        lines = [("Customer", who), ("Running score", standing), ("Reference", reference)]
        return Note(ticket=str(ticket["id"]), title=title, lines=tuple(lines), link=link, kind=notice.type,
                    customer=email, reference=reference)
    survey, answer = data.get("survey") or {}, data.get("answer") or {}
    if not survey.get("ticket") or answer.get("rating") is None:
        return None
    scale, rating = str(answer.get("scale") or survey.get("scale") or ""), int(answer["rating"])
    label = answer.get("label") or rating_label(scale, rating)
    rated = f"{rating} ({label})" + (f" on {scale}" if scale else "")
    satisfied = bool(answer.get("satisfied"))
    title = "CSAT rating"
    stale: list[str] = []
    previous = answer.get("previous_rating")
    if notice.type == "survey.changed" and previous is not None and int(previous) == rating:
        title = "CSAT feedback updated"  # the comment, reason or extra answers changed, the rating did not
    elif notice.type == "survey.changed" and previous is not None:
        title = "CSAT rating changed"
        rated = f"{rating} ({label}), changed from {previous} ({rating_label(scale, int(previous))})" + \
            (f" on {scale}" if scale else "")
        if int(previous) != rating:
            stale.append(f"csat-{previous}")
    if satisfied:
        stale.append("csat-unsatisfied")
    lines = [("Rating", rated), ("Satisfied", "yes" if satisfied else "no"),
             ("Comment", str(answer.get("comment") or "—")), ("Follow-up reason", str(answer.get("reason") or "—")),
             *_extra_lines(answer.get("extra")),
             ("Customer", who), ("Running score", standing), ("Reference", reference)]
    tags = (f"csat-{rating}",) + (() if satisfied else ("csat-unsatisfied",))
    return Note(ticket=str(survey["ticket"]), title=title, lines=tuple(lines), link=link, tags=tags,
                stale_tags=tuple(t for t in stale if t not in tags), kind=notice.type, customer=email,
                reference=reference)


def _extra_lines(extra: Any) -> list[tuple[str, str]]:
    """Return a line per answer to a custom survey's extra questions (question id: answer)."""
    if not isinstance(extra, dict):
        return []
    return [(str(question), str(value)) for question, value in extra.items()]


def _standing(score: float | None, at_risk: bool, threshold: float) -> str:
    if score is None:
        return "none yet"
    return f"{score:g}" + (f" (at risk: below {threshold:g})" if at_risk else " (not at risk)")


class Helpdesk(ABC):
    """One helpdesk's write-back client: an internal note and tags on a ticket, over its documented API."""

    source: ClassVar[str]
    transient: ClassVar[frozenset[int]] = frozenset()  # 4xx statuses this vendor documents as "try again"
    whoami: ClassVar[str]  # the path of a read of the credentials' own user or account (probe)

    def __init__(self, api: HelpdeskApi):
        self.api = api

    @abstractmethod
    def add_note(self, session: requests.Session, note: Note) -> Outcome:
        """Write note.text / note.html on note.ticket as an internal note (never seen by the customer)."""

    @abstractmethod
    def add_tags(self, session: requests.Session, note: Note) -> Outcome:
        """Add note.tags to note.ticket, keeping its other tags (dropping note.stale_tags where the call allows)."""

    def note_texts(self, session: requests.Session, note: Note) -> list[str] | Outcome:
        """Return the texts of note.ticket's newest notes (at least the newest 100 where the API pages them), each in
        the form the helpdesk keeps it (HTML, plain text, wiki markup, Markdown), or the Outcome of a read that
        failed. Called only when an earlier try of the note may have written it (Outcome.unsure)."""
        return Outcome("refused", None, f"{self.source}: this client cannot read a ticket's notes", None)

    def probe(self, session: requests.Session) -> Reply:
        """Prove the credentials (and the URL) with a read that changes nothing; never raises. An answer that
        neither proves nor refuses them comes back `skipped` (unconfirmed)."""
        return self.unconfirmed(self.call(session, "GET", f"{self.api.url}{self.whoami}", what="credentials check"))

    def unconfirmed(self, reply: Reply) -> Reply:
        """Mark a probe's 404 or 405 (which the vendor's API does not answer to it: a proxy's, or a stand-in's), 429
        or 5xx (busy or down for now) as not confirmed, `skipped`; any other answer is returned as it is."""
        code = reply.outcome.code
        if code is None or not (code in (404, 405, 429) or code >= 500):
            return reply
        why = (f"which {self.source} does not: the credentials are not confirmed (is it the {self.source} API's URL?)"
               if code in (404, 405) else "busy or down for now: the credentials are not confirmed")
        return Reply(Outcome("skipped", code, f"{self.api.url} answers GET {self.whoami} with HTTP {code}, {why}",
                             None))

    def auth(self) -> Any:
        """Return the requests auth of every call (a (user, password) pair, an AuthBase, or None)."""
        return None

    def headers(self) -> dict[str, str]:
        """Return the headers of every call, beyond Accept and the JSON body's Content-Type."""
        return {}

    def retry_after_s(self, response: requests.Response) -> float | None:
        """Return how long a rate-limited (or unavailable) answer asks to wait, None when it does not say."""
        return retry_after_s(response.headers.get("Retry-After"))

    def error_text(self, response: requests.Response) -> str:
        """Return the vendor's own words about a refused call, short (its JSON error fields, else its text)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            found = [body[k] for k in ("error", "message", "description", "errors", "error_description", "detail",
                                       "_embedded") if body.get(k)]
            text = "; ".join(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in found)
        else:
            text = response.text
        text = " ".join(text.split())
        return text[:ERROR_TEXT_MAX] + ("…" if len(text) > ERROR_TEXT_MAX else "")

    def call(self, session: requests.Session, method: str, url: str, *, what: str, json: Any = None,
             params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             auth: Any = None) -> Reply:
        """Send one attempt and map its answer to an Outcome (see the module docstring); never raises."""
        sent = {"Accept": "application/json", **self.headers(), **(headers or {})}
        label = f"{self.source} {what}"
        try:
            response = session.request(method, url, json=json, params=params, headers=sent,
                                       auth=auth if auth is not None else self.auth(), timeout=TIMEOUTS,
                                       allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            return Reply(Outcome("retry", None, f"{label}: {type(exc).__name__}", None, unsure=maybe_taken(exc)))
        except requests.RequestException as exc:
            return Reply(Outcome("refused", None, f"{label}: {type(exc).__name__}", None))
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            return Reply(Outcome("delivered", status, f"{label}: HTTP {status}", None), body)
        if status == 429 or status >= 500 or status in self.transient:
            wait = self.retry_after_s(response)
            reason = "rate-limited" if status == 429 else "unavailable" if status >= 500 else "busy"
            return Reply(Outcome("retry", status, f"{label} {reason}: HTTP {status}", wait, unsure=status == 504))
        if 300 <= status < 400:
            where = response.headers.get("Location", "")
            return Reply(Outcome("refused", status, f"{label} redirected (HTTP {status}) to {where[:200]}; check "
                                                    f"the {self.source} API URL", None), location=where)
        return Reply(Outcome("refused", status, f"{label} refused: HTTP {status}: {self.error_text(response)}",
                             None))


def maybe_taken(exc: requests.RequestException) -> bool:
    """Say whether a call that failed with exc may have reached the helpdesk whole: yes for a timeout waiting for its
    answer or a connection lost mid-exchange, no when the connection was never made (refused, no such host, TLS)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.ReadTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(reason, NewConnectionError)


def listed(reply: Reply, path: str, what: str) -> list[dict[str, Any]] | Outcome:
    """Return the objects of the list at `path` in a read's answer (keys joined by dots; "" for the body itself),
    leaving out any item that is not an object, or the retry Outcome when the answer holds no list there (a proxy's
    page, an API change)."""
    found: Any = reply.body
    for key in filter(None, path.split(".")):
        found = found.get(key) if isinstance(found, dict) else None
    if not isinstance(found, list):
        where = f" under {path!r}" if path else f" (a body of type {type(reply.body).__name__})"
        return Outcome("retry", reply.outcome.code, f"{what}: the answer held no list{where}", None)
    return [item for item in found if isinstance(item, dict)]


def texts_of(items: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[str]:
    """Return each item's non-empty text in each of fields, in order (a note as a helpdesk keeps it: HTML, plain)."""
    return [text for item in items for text in (item.get(field) for field in fields) if isinstance(text, str) and text]


def current_tags(reply: Reply, key: str, what: str, name_of: Any = None) -> list[str] | Outcome:
    """Return the tag list a helpdesk's read answered (`reply.body[key]`, each item's name `name_of(item)`, the item
    itself by default), or the retry Outcome when the answer is not of that shape.

    A vendor whose tag write replaces the whole list loses every tag it was not sent, so an answer this client cannot
    read whole (not a JSON object, a list of something else, an item without a name: a proxy's page, an API change)
    writes nothing, and the notice is tried again later. An absent or null list is a ticket without tags."""
    body = reply.body
    found = body.get(key) if isinstance(body, dict) else body
    if isinstance(body, dict) and found is None:
        return []
    names = [name_of(item) if name_of else item for item in found] if isinstance(found, list) else None
    if names is None or not all(isinstance(name, str) and name for name in names):
        shape = type(found).__name__ if isinstance(body, dict) else f"a body of type {type(body).__name__}"
        return Outcome("retry", reply.outcome.code, f"{what}: the answer held no list of tag names under "
                                                    f"{key!r} ({shape}); the tags are left as they are", None)
    return names


def merged_tags(current: list[str], note: Note) -> list[str]:
    """Return a ticket's tag list with note.tags added and note.stale_tags dropped, in the order it had them."""
    stale = {t.lower() for t in note.stale_tags}
    kept = [t for t in current if t.lower() not in stale]
    have = {t.lower() for t in kept}
    return kept + [t for t in note.tags if t.lower() not in have]


class WritebackTarget:
    """The dispatch target `writeback:<source>`: writes each answer's note and tags on its ticket, once."""

    def __init__(self, source: str, client: Helpdesk | None):
        self.source = source
        self.name = f"writeback:{source}"
        self.client = client  # None: a source no client serves, each of whose notices is refused saying so

    def wants(self, notice: Notice) -> bool:
        if notice.type in ANSWER_TYPES:
            return (notice.data.get("survey") or {}).get("source") == self.source
        if notice.type == TICKET_AT_RISK:
            return (notice.data.get("ticket") or {}).get("source") == self.source
        return False

    def deliver(self, notice: Notice, ctx: DispatchContext) -> Outcome:
        if self.client is None:
            return Outcome("refused", None, f"no write-back client for {self.source}", None)
        try:
            return self._deliver(self.client, notice, ctx)
        except StorageUnavailable as exc:
            return Outcome("retry", None, f"storage unavailable: {exc}", None)

    def _deliver(self, client: Helpdesk, notice: Notice, ctx: DispatchContext) -> Outcome:
        step = ctx.store.writeback_step(self.name, notice.customer, notice.id)
        if step == "done":
            return Outcome("skipped", None, f"{self.source}: note and tags were written before", None)
        note = note_for(notice, ctx)
        if note is None:
            return Outcome("skipped", None, f"{self.source}: the notice names no ticket", None)
        if step != "noted":
            outcome = self._write_note(client, notice, note, ctx, look_first=step == SENDING)
            if outcome is not None:
                return outcome
        if note.tags:
            outcome = client.add_tags(ctx.session, note)
            if outcome.status != "delivered":
                return Outcome(outcome.status, outcome.code, f"note written; {outcome.detail}",
                               outcome.retry_after_s)
        ctx.store.mark_writeback_step(self.name, notice.customer, notice.id, "done")
        detail = f"{self.source}: note" + (f" and tags {', '.join(note.tags)}" if note.tags else "") + \
            f" written on ticket {note.ticket}"
        return Outcome("delivered", None, detail, None)

    def _write_note(self, client: Helpdesk, notice: Notice, note: Note, ctx: DispatchContext,
                    look_first: bool) -> Outcome | None:
        """Write the note once and record it; None when it is written (now or by an earlier try), else the Outcome
        to return. A try that may have written it (SENDING left by an unsure answer, a worker killed mid-call or a
        record given up) looks on the ticket first, and writes only when the note is not there."""
        store, customer = ctx.store, notice.customer
        if look_first:
            found = client.note_texts(ctx.session, note)
            if isinstance(found, Outcome) and found.status == "retry" and found.code in LOOK_AGAIN:
                # Unreachable, slow, busy: a note written now could be the second. Any other failure to read (a
                # route it does not have, a refusal, an answer of another shape) writes it, rather than never.
                return Outcome("retry", found.code, f"note not written: whether an earlier try wrote it cannot be "
                                                    f"read now ({found.detail})", found.retry_after_s)
            if isinstance(found, list) and any(note.written_in(text) for text in found):
                self._mark_noted(store, notice)
                return None
            if isinstance(found, Outcome):
                log.warning("write-back: whether an earlier try wrote the note cannot be read (%s); writing it",
                            found.detail, extra={"notice": notice.id, "target": self.name})
        store.mark_writeback_step(self.name, customer, notice.id, SENDING)  # before the call: a crash leaves it
        outcome = client.add_note(ctx.session, note)
        if outcome.status == "delivered":
            self._mark_noted(store, notice)
            return None
        if not outcome.unsure:  # surely not written: the next try writes without looking
            store.forget_writeback_step(self.name, customer, notice.id)
        return outcome

    def _mark_noted(self, store: Any, notice: Notice) -> None:
        # Written: a try after a failed mark would look for it first, so the mark waits out an outage.
        record_through_outage(
            lambda: store.mark_writeback_step(self.name, notice.customer, notice.id, "noted"), log,
            "write-back note written; recording it waits for storage",
            "write-back note written but not recorded; the next try looks for it on the ticket",
            {"notice": notice.id, "target": self.name})
