"""A test survey (`tracker survey test-send`): one real survey mail whose answer no score counts and no one hears of."""

from __future__ import annotations

import secrets

from tracker.config import Settings
from tracker.i18n.catalogue import normalise_locale
from tracker.model import Survey
from tracker.scores.maths import DAY_MS
from tracker.store import Store
from tracker.surveys.message import build_message
from tracker.surveys.outcome import Sender
from tracker.surveys.policy import choose_scale
from tracker.surveys.tokens import make_token, survey_id

TEST_SOURCE = "test"
TEST_KEY = "test:"  # the ticket key of a test survey: no ticket has it, so no due entry, throttle or state is touched


def make_test_survey(settings: Settings, email: str, brand: str | None, source: str | None, locale: str | None,
                     scale: str | None, now_ms: int) -> Survey:
    """Describe a test survey to one address, as a survey of this brand, source and language would be."""
    ident = secrets.token_hex(8)
    tkey = f"{TEST_KEY}{ident}"
    source = (source or "").strip().lower() or TEST_SOURCE
    brand = (brand or "").strip() or None
    return Survey(sid=survey_id(tkey, now_ms), tkey=tkey, kind="ticket",
                  scale=scale or choose_scale(settings, source, brand), customer=email, source=source,
                  status="sending", ticket_id=f"TEST-{ident[:6].upper()}", brand=brand,
                  lang=normalise_locale(locale), created_at_ms=now_ms, test="1")


def send_test_survey(store: Store, settings: Settings, sender: Sender, survey: Survey, now_ms: int) -> str:
    """Mail a test survey through the normal mail path, then record it sent; return its survey link.

    The sender's mail errors (tracker.mail.errors) pass through, and then nothing was written. The customer's
    throttle is neither checked nor taken, and the send counts nowhere (Survey.test).
    """
    expires_ms = now_ms + settings.survey_expiry_days * DAY_MS
    sender.send(build_message(settings, survey, None, expires_ms))
    store.mark_sent(store.create_survey(survey), now_ms, expires_ms)
    return f"{settings.public_url}/s/{make_token(settings.secret_key, survey.sid)}"
