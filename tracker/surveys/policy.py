"""Survey rules: which scale a survey uses, which surveys are skipped, and when one may go out."""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.config import Settings
from tracker.model import SurveyedTicket
from tracker.scores.maths import DAY_MS

SAMPLE_BUCKETS = 10_000  # sampling resolution: hundredths of a percent


def choose_scale(settings: Settings, source: str | None, brand: str | None) -> str:
    """Return the scale for a survey: the brand's, else the source's, else the global one."""
    by_brand = settings.scale_by_brand.get((brand or "").strip().lower())
    if by_brand:
        return by_brand
    return settings.scale_by_source.get((source or "").strip().lower()) or settings.survey_scale


def sampled(sid: str, percent: float) -> bool:
    """Say whether a survey falls inside the sample; the same survey id always gets the same answer."""
    if percent >= 100:
        return True
    bucket = int.from_bytes(hashlib.sha256(sid.encode()).digest()[:8], "big") % SAMPLE_BUCKETS
    return bucket < round(percent * SAMPLE_BUCKETS / 100)


def skip_reason(settings: Settings, ticket: SurveyedTicket, sid: str) -> str | None:
    """Return why the rules say this ticket (or order) gets no survey, or None."""
    if ticket.source.lower() in settings.disabled_sources:
        return "source_disabled"
    if (ticket.brand or "").lower() in settings.disabled_brands:
        return "brand_disabled"
    if settings.skip_tags and {tag.strip().lower() for tag in ticket.tags} & settings.skip_tags:
        return "tagged_no_survey"
    # Only the source's own word counts: many tickets carry no agent id for other reasons.
    if ticket.agent_involved is False:
        return "no_agent"
    if not sampled(sid, settings.sample_percent):
        return "not_sampled"
    return None


def zone_for(settings: Settings, tz_name: str | None) -> ZoneInfo:
    """Return the customer's time zone, or the default one when it is unknown or invalid."""
    if tz_name:
        try:
            return ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return ZoneInfo(settings.default_timezone)


def next_send_time(settings: Settings, now_ms: int, tz_name: str | None) -> int:
    """Return now_ms inside the send window (or with none), else when the window next opens there."""
    window = settings.send_window
    if window is None or not window.days:
        return now_ms
    zone = zone_for(settings, tz_name)
    local = datetime.fromtimestamp(now_ms / 1000, tz=zone)
    minute = local.hour * 60 + local.minute
    if local.weekday() in window.days and window.start_minute <= minute < window.end_minute:
        return now_ms
    opening = time(window.start_minute // 60, window.start_minute % 60)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        # A wall-clock time built per day (not now + hours) keeps the opening right across DST changes;
        # an opening inside a spring-forward gap moves on by the hour the clocks skip.
        start_ms = int(datetime.combine(day, opening, tzinfo=zone).timestamp() * 1000)
        if start_ms > now_ms:
            return start_ms
    return now_ms  # unreachable with at least one day in the window


TOO_OLD = "too_old"


def stale_before(settings: Settings, now_ms: int) -> int:
    """Return the due time before which a survey would already have expired: such a survey is never mailed."""
    return now_ms - settings.survey_expiry_days * DAY_MS


def due_too_long_ago(settings: Settings, kind: str, solved_at_ms: int, now_ms: int) -> bool:
    """Say whether a survey that fell due after this solve (or fulfilment) would already have expired."""
    delay_s = settings.survey_delay if kind == "ticket" else (settings.order_survey_delay or 0)
    return solved_at_ms + delay_s * 1000 < stale_before(settings, now_ms)
