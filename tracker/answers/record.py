"""Answers: find the survey a token points to and record the customer's rating once."""

from __future__ import annotations

from tracker.config import Settings
from tracker.scores.maths import DAY_MS, contribution
from tracker.scores.scales import SCALES
from tracker.store import Store
from tracker.surveys.tokens import read_token

COMMENT_MAX = 2000
REASON_MAX = 200


class SurveyUnavailable(Exception):
    """The token is not genuine or unknown (404), or the survey no longer takes answers (410)."""

    def __init__(self, status: int, reason: str, lang: str = "en"):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.lang = lang


def open_survey(store: Store, settings: Settings, token: str, now_ms: int) -> dict[str, str]:
    """Return the survey a token points to while it takes answers, else raise SurveyUnavailable."""
    sid = read_token(settings.secret_key, token)
    survey = store.survey(sid) if sid else {}
    if not survey or survey.get("status") not in ("sent", "answered", "sending"):
        raise SurveyUnavailable(404, "not_found")
    if now_ms > expires_at(survey, settings):
        raise SurveyUnavailable(410, "expired", survey.get("lang") or "en")
    return survey


def expires_at(survey: dict[str, str], settings: Settings) -> int:
    """Return when a survey stops taking answers (a survey caught mid-send counts from creation)."""
    if survey.get("expires_at"):
        return int(survey["expires_at"])
    return int(survey.get("created_at") or 0) + settings.survey_expiry_days * DAY_MS


def record_answer(store: Store, settings: Settings, survey: dict[str, str], rating: int, comment: str,
                  now_ms: int, reason: str | None = None) -> int:
    """Record or change the answer (reason None keeps the stored one); return 0, 1 (comment or reason), 2."""
    scale = SCALES[survey.get("scale") or settings.survey_scale]
    if rating not in scale.values:
        raise ValueError(f"rating must be between {scale.low} and {scale.high}")
    part = contribution(scale.name, rating, now_ms, settings.score_half_life_days)
    return store.record_answer(survey, rating, comment.strip()[:COMMENT_MAX], now_ms, part,
                               reason=None if reason is None else reason[:REASON_MAX])
