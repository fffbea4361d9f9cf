"""Alerts on unhappy answers: when one is due, and the Standard Webhooks event that describes it."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from tracker.config import Settings
from tracker.events import iso_from_ms
from tracker.model import Answer, ScoreCard, Survey
from tracker.scores.cards import customer_card, public_ref
from tracker.store import Store, keys

log = logging.getLogger(__name__)
EVENT_TYPE = "answer.unsatisfied"


def alert_payload(survey: Survey, answer: Answer, card: ScoreCard | None,
                  public_url: str | None = None) -> dict[str, Any]:
    """Describe an unhappy answer as a Standard Webhooks event (`type`, `timestamp`, `data`).

    `data.case` names the recovery case the answer opens (its id comes from the survey's, so it can be named
    before the case is opened) and, with public_url, its dashboard page.
    """
    answered = iso_from_ms(answer.at_ms)
    case = keys.case_id(survey.sid, survey.customer)
    return {
        "type": EVENT_TYPE,
        "timestamp": answered,
        "data": {
            "survey": survey.sid,
            "customer": {"email": survey.customer, "name": card.name if card else None,
                         "score": card.score if card else None, "at_risk": bool(card and card.at_risk)},
            "rating": answer.rating,
            "scale": answer.scale,
            "value": answer.value,
            "comment": answer.comment or None,
            "ticket": public_ref(survey.tkey),
            "subject": survey.subject,
            "agent": {"id": survey.agent_id, "name": survey.agent_name} if survey.agent_id else None,
            "team": survey.team,
            "brand": survey.brand,
            "source": survey.source or None,
            "answered_at": answered,
            "case": {"id": case, "url": f"{public_url.rstrip('/')}/dashboard/cases/{case}" if public_url else None},
        },
    }


def alerts_for(store: Store, settings: Settings, sid: str, rating: int, now_ms: int) -> list[tuple[str, str]]:
    """Return (url, JSON body) for every alert URL about the answer `rating` to survey sid; none when it is gone.

    A later change of the rating supersedes it: that change was judged on its own and alerts if unhappy.
    """
    survey, answer = store.survey(sid), store.response(sid)
    if survey is None or answer is None or answer.rating != rating:
        log.info("alert dropped: the answer changed or was erased", extra={"survey": sid})
        return []
    card = customer_card(store, settings, survey.customer, now_ms)
    payload = alert_payload(survey, answer, card, settings.public_url)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return [(url, body) for url in settings.alert_urls]


def message_id(payload: dict[str, Any]) -> str:
    """Name the alert the same on every retry (per survey and rating), so receivers can dedupe."""
    data = payload["data"]
    return "msg_" + hashlib.sha256(f"{data['survey']}\x1f{data['rating']}".encode()).hexdigest()[:24]
