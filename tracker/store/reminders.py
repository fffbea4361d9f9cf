"""The one reminder a sent survey may get: its due entry and its claim."""

from __future__ import annotations

from tracker.store import keys
from tracker.store.base import RedisBase

REMINDER_DUE = keys.REMINDER_DUE  # due members for reminders: "r|<survey id>", in the survey bucket's due set


def reminder_member(sid: str) -> str:
    """Name the due entry of a survey's reminder."""
    return f"{REMINDER_DUE}{sid}"


class Reminders(RedisBase):
    """Schedule, claim and give back survey reminders."""

    def begin_reminder(self, sid: str, now_ms: int) -> int:
        """Record the reminder as sent at now_ms and return its attempt number; 0 when it must not go."""
        return int(self.script("begin_reminder")(keys=[keys.survey(sid)], args=[now_ms]))

    def undo_reminder(self, sid: str, claimed_ms: int) -> None:
        """Take back a reminder claim whose mail did not go out, so a retry may send it."""
        self.script("undo_reminder")(keys=[keys.survey(sid)], args=[claimed_ms])

    def reminder_due_at(self, sid: str) -> int | None:
        """Return when the survey's reminder is due (a lease's end while a sweep holds it), None when none is due."""
        score = self.redis.zscore(keys.survey_due(keys.bucket_of(sid)), reminder_member(sid))
        return None if score is None else int(score)

    def note_reminder_error(self, sid: str, error: str) -> None:
        self.redis.hset(keys.survey(sid), "reminder_error", error[:200])
