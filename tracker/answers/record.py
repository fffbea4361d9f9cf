"""Answers: find the survey a token points to and record the customer's rating once."""

from __future__ import annotations

from collections.abc import Mapping

from tracker.config import Settings
from tracker.model import Aggregate, Survey
from tracker.scales import scale_of
from tracker.scores.maths import DAY_MS
from tracker.store import Store
from tracker.surveys.tokens import read_token

COMMENT_MAX = 2000
REASON_MAX = 200
OPEN_STATUSES = ("sent", "answered", "sending")  # "sending": caught between the mail and its mark


class SurveyUnavailable(Exception):
    """The token is not genuine or unknown (404), or the survey no longer takes answers (410)."""

    def __init__(self, status: int, reason: str, lang: str = "en"):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.lang = lang


def open_survey(store: Store, settings: Settings, token: str, now_ms: int) -> Survey:
    """Return the survey a token points to while it takes answers, else raise SurveyUnavailable."""
    sid = read_token(settings.secret_keys, token)
    survey = store.survey(sid) if sid else None
    if survey is None or survey.status not in OPEN_STATUSES:
        raise SurveyUnavailable(404, "not_found")
    if now_ms > expires_at(survey, settings):
        raise SurveyUnavailable(410, "expired", survey.lang)
    return survey


def takes_answers(survey: Survey | None, settings: Settings, now_ms: int) -> bool:
    """Say whether a survey exists and still takes answers."""
    return survey is not None and survey.status in OPEN_STATUSES and now_ms <= expires_at(survey, settings)


def expires_at(survey: Survey, settings: Settings) -> int:
    """Return when a survey stops taking answers (a survey caught mid-send counts from creation)."""
    if survey.expires_at_ms:
        return survey.expires_at_ms
    return survey.created_at_ms + settings.survey_expiry_days * DAY_MS


def is_satisfied(survey: Survey, settings: Settings, rating: int) -> bool:
    """Say whether a rating counts as satisfied on the survey's scale (SPEC.md §5)."""
    return scale_of(survey.scale, settings.survey_scale).satisfied(rating)


def calls_for_alert(settings: Settings, survey: Survey, rating: int) -> bool:
    """Say whether a rating, once counted, calls for an alert: unsatisfied, not a test survey, and somewhere to send
    it (TRACKER_ALERT_URLS)."""
    return bool(settings.alert_urls) and not survey.test and not is_satisfied(survey, settings, rating)


def record_answer(store: Store, settings: Settings, survey: Survey, rating: int, comment: str,
                  now_ms: int, reason: str | None = None, extra: Mapping[str, str] | None = None,
                  alerting: bool = False, quiet: bool = False) -> int:
    """Record or change the answer; return 0 (unchanged), 1 (comment, reason or extra answers), 2 (rating).

    reason and extra (the answers to a custom survey's extra questions) None keep the stored ones. alerting: the
    caller alerts on the answers it records (the survey page and replies by mail): a counted rating that calls for
    an alert holds it with the answer, for tracker.alerts.held to send. quiet: the answer counts and tells nothing
    (no notice: a replayed export's, which the install it came from told already).
    """
    scale = scale_of(survey.scale, settings.survey_scale)
    if rating not in scale.values:
        raise ValueError(f"rating must be between {scale.low} and {scale.high}")
    counted = Aggregate.of_answer(scale, rating, now_ms, settings.score_half_life_days)
    return store.record_answer(survey, rating, comment.strip()[:COMMENT_MAX], now_ms, counted,
                               reason=None if reason is None else reason[:REASON_MAX],
                               at_risk_score=settings.at_risk_score, extra=extra,
                               alert=alerting and calls_for_alert(settings, survey, rating), quiet=quiet)
