"""The data of the notices the store emits itself (tracker.notify.events names them; the store must not import it).

The outbox forwarder (survey.sent, survey.answered, survey.changed, customer.at_risk) and the log's apply
(ticket.at_risk) emit where what they tell became true; they build the notice data here, in the shape
CONTRACT.md gives, from the hashes they read in the round trips they make anyway; the expiry pass
(tracker.notify.expiry) builds its with the same functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from tracker.scales import SCALES

SENT = "survey.sent"
SKIPPED = "survey.skipped"
ANSWERED = "survey.answered"
CHANGED = "survey.changed"
EXPIRED = "survey.expired"
CUSTOMER_AT_RISK = "customer.at_risk"
TICKET_AT_RISK = "ticket.at_risk"


def iso(ms: int | str | None) -> str | None:
    """Render epoch milliseconds as ISO 8601 UTC ("...Z"); None (or '') stays None."""
    if ms is None or ms == "":
        return None
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json(data: Mapping[str, Any]) -> str:
    """Serialise notice data as tracker.notify.events.emit does."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def score_of(n: Any, weight: Any, weighted: Any) -> float | None:
    """Return a running score as the score card shows it (tracker.scores.maths.score_card): None without answers."""
    count, total = int(n or 0), float(weight or 0)
    return round(float(weighted or 0) / total, 2) if count > 0 and total > 0 else None


def at_risk(score: float | None, threshold: float) -> bool:
    """Say whether a score is at risk, as the score card says it (tracker.scores.cards.customer_card)."""
    return score is not None and score < threshold


@cache
def label(scale: str, rating: int) -> str:
    """Return a rating's English label on its scale (the survey page's words), or the number where it has none."""
    from tracker.i18n.catalogue import scale_labels  # the catalogues load once, and only where a notice is built

    if scale not in SCALES:
        return str(rating)
    return dict(scale_labels("en", scale)).get(rating, str(rating))


def customer_data(email: str, name: str | None) -> dict[str, Any]:
    return {"email": email, "name": name or None}


def survey_data(record: Mapping[str, str]) -> dict[str, Any]:
    """Return SURVEY (CONTRACT.md) from a survey's hash."""
    agent = {"id": record["agent_id"], "name": record.get("agent_name") or None} if record.get("agent_id") else None
    return {"id": record.get("sid"), "scale": record.get("scale") or None, "ticket": record.get("ticket_id") or None,
            "source": record.get("source") or None, "ticket_key": record.get("tkey") or None, "agent": agent,
            "team": record.get("team") or None, "brand": record.get("brand") or None,
            "subject": record.get("subject") or None, "sent_at": iso(record.get("sent_at"))}


def answer_data(record: Mapping[str, str], rating: int, scale: str, satisfied: bool, at_ms: int | str
                ) -> dict[str, Any]:
    """Return a notice's answer: this rating (the entry's), the comment and reason the survey's hash holds now."""
    return {"rating": rating, "scale": scale, "label": label(scale, rating), "satisfied": satisfied,
            "comment": record.get("comment") or None, "reason": record.get("answer_reason") or None,
            "extra": extra_answers(record.get("extra")), "answered_at": iso(at_ms)}


def extra_answers(raw: str | None) -> dict[str, str] | None:
    """Read the extra answers a survey hash keeps (JSON: question id -> answer); None when there are none."""
    try:
        loaded = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(loaded, dict) or not loaded:
        return None
    return {str(key): str(value) for key, value in loaded.items()}


def sums_of(pairs: Sequence[Sequence[Any]]) -> dict[str, float]:
    return {str(name): float(value) for name, value in pairs}
