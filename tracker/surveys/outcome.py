"""What sending a survey or its reminder needs and gives back: a sender, the retry policy, an outcome."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from tracker.backoff import Backoff
from tracker.mail.wire import EncodedMail

# A mail server that says "try later" gets 8 tries, 15 s apart at first and at most an hour apart.
MAIL_RETRY = Backoff(first_s=15, cap_s=3600, attempts=8, factor=3)


class Sender(Protocol):
    def send(self, message: EmailMessage | EncodedMail) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one due survey."""

    status: str  # sent, skipped, failed, retry, deferred (send window), reminded, none
    reason: str = ""


def retry_delay_ms(attempt: int) -> int:
    """Return how long to wait before the next try after failed attempt number `attempt`."""
    return int(MAIL_RETRY.delay_s(attempt) * 1000)
