"""Replies by email: find the survey a reply answers, read it, and record the answer or why not."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr

from tracker import text as jsontext
from tracker.answers.record import COMMENT_MAX, is_satisfied, record_answer, takes_answers
from tracker.answers.reply_parse.parse import is_auto_reply, parse_reply
from tracker.config import Settings
from tracker.model import Survey
from tracker.scales import SCALES
from tracker.store import Store
from tracker.surveys.tokens import SID_LENGTH, read_token

log = logging.getLogger(__name__)
REPLY_LOCAL = re.compile(r"^reply\+([a-z2-7]+-[a-z2-7]+)$", re.I)
MESSAGE_ID = re.compile(rf"<([a-z2-7]{{{SID_LENGTH}}})@([^<>\s]+)>", re.I)
AnswerHook = Callable[[Survey, int, int], None]


@dataclass(frozen=True)
class InboundReply:
    """One received mail, whichever provider delivered it; headers have lower-case names."""

    recipients: tuple[str, ...]  # To, Cc, the original and envelope recipients, as address lists
    sender: str = ""
    subject: str = ""
    text: str | None = None
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A charset can decode to a lone surrogate (UTF-7's "+2AA-"), which nothing can store: read as U+FFFD.
        mend = jsontext.mended
        object.__setattr__(self, "recipients", tuple(mend(r) for r in self.recipients))
        for name in ("sender", "subject", "text", "html"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, mend(value))
        object.__setattr__(self, "headers", {mend(k): mend(v) for k, v in self.headers.items()})


def _addresses(values: tuple[str, ...]) -> list[str]:
    found = []
    for value in values:
        try:
            pairs = getaddresses([value[:5000]])
        except Exception:  # noqa: S112 - a header no parser understands names no survey
            continue
        found += [address for _name, address in pairs if address]
    return found


def _sid_from_address(settings: Settings, reply: InboundReply) -> str | None:
    for address in _addresses(reply.recipients):
        local = address.rpartition("@")[0].strip().strip('"')
        match = REPLY_LOCAL.match(local)
        sid = read_token(settings.secret_keys, match.group(1)) if match else None
        if sid:
            return sid
    return None


def _sid_from_thread(store: Store, settings: Settings, reply: InboundReply) -> str | None:
    """Find the survey from In-Reply-To/References, for replies that lost the reply+ address."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2].lower() or "localhost"
    sender = parseaddr(reply.sender[:1000])[1].lower()
    thread = f"{reply.headers.get('in-reply-to', '')} {reply.headers.get('references', '')}"[:10_000]
    for sid, host in MESSAGE_ID.findall(thread):
        if host.lower() != domain:
            continue
        survey = store.survey(sid.lower())
        # A Message-ID is no secret, unlike a signed token: only the surveyed customer may answer by it.
        if survey and sender and survey.customer.lower() == sender:
            return sid.lower()
    return None


def handle_reply(store: Store, settings: Settings, reply: InboundReply, now_ms: int,
                 on_answer: AnswerHook | None = None) -> str:
    """Record what a reply says; return answered, ambiguous, no_rating, auto_reply or ignored.

    on_answer(survey, record outcome, rating) runs after a rating is recorded (the web kicks the alert it holds).
    """
    sid = _sid_from_address(settings, reply) or _sid_from_thread(store, settings, reply)
    survey = store.survey(sid) if sid else None
    if not sid or survey is None or not takes_answers(survey, settings, now_ms):
        log.info("reply ignored", extra={"survey": sid or "", "reason": "unknown_or_closed"})
        return "ignored"
    if is_auto_reply(reply.headers, reply.subject):
        store.note_reply(sid, "auto_reply", now_ms)
        log.info("reply ignored", extra={"survey": sid, "reason": "auto_reply"})
        return "auto_reply"
    scale = survey.scale or settings.survey_scale
    parsed = parse_reply(reply.text, reply.html, scale, survey.lang)
    comment = parsed.comment[:COMMENT_MAX]
    if parsed.rating is None:
        store.note_reply(sid, parsed.outcome, now_ms, comment=comment)
        log.info("reply kept unscored", extra={"survey": sid, "outcome": parsed.outcome})
        return parsed.outcome
    if not comment and survey.status == "answered":
        answered = store.response(sid)  # a bare "5" changes the rating, not the comment
        comment = (answered.comment if answered else None) or ""
    # As on the survey page, a satisfied answer clears an earlier reason and an unsatisfied one keeps it.
    satisfied = is_satisfied(survey, settings, parsed.rating) if scale in SCALES else False
    outcome = record_answer(store, settings, survey, parsed.rating, comment, now_ms,
                            reason="" if satisfied else None, alerting=True)
    store.note_reply(sid, "answered", now_ms, comment=comment, via="email")
    log.info("reply answered", extra={"survey": sid})
    if on_answer is not None:
        on_answer(survey, outcome, parsed.rating)
    return "answered"
