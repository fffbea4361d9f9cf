"""What export-log keeps of a survey beyond its standard event, so that replay restores the survey as it was.

A standard survey event says what happened to a ticket's survey; the stored survey says more: its own id (a
case's second survey has one no solve gives), a failure (not a skip) and its error, when it was sent and until
when it takes answers, when its reminder is due (a survey unanswered and not yet reminded), the follow-up reason,
the extra answers and how the answer arrived, and the dimensions it counted for. export-log writes these as the
line's `restore` object; replay reads it, keeps it in the event's log record beside the event, and the drain hands
it to apply_survey_event. Only replay files carry it: a webhook's event is built from the event alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from marshmallow import ValidationError, fields, validate

from tracker.events import RESOLVERS, TEXT, AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.model import Survey

FIELD = "restore"  # the name of the object in a replay line and in the log record
TIMES = ("sent_at", "expires_at", "reminder_at")  # kept as ISO 8601 in a line, as epoch milliseconds in a record
SID = validate.Regexp(r"^[a-z2-7]{1,64}$", error="Must be a survey id.")
EXTRA_MAX = 20  # more extra answers than a custom survey asks (at most 3)


@dataclass(frozen=True)
class Restore:
    """A survey's stored details that its standard event cannot carry; None (empty) leaves each as replay makes it."""

    survey: str | None = None  # its id
    status: str | None = None  # "failed" for a survey.skipped line about a survey that failed
    error: str | None = None
    sent_at_ms: int | None = None
    expires_at_ms: int | None = None
    reminder_at_ms: int | None = None  # a survey.sent line's: when its one reminder is due (none sent yet)
    reason: str | None = None  # the follow-up reason the customer picked
    extra: Mapping[str, str] | None = None
    answered_via: str | None = None
    tags: tuple[str, ...] = ()
    organisation: str | None = None
    resolved_by: str | None = None
    dimensioned: bool = False  # tags, organisation and resolved_by say what the survey counted for

    def dimensions(self, survey: Survey) -> Survey:
        """Return the survey counted for what the stored one counted for."""
        if not self.dimensioned:
            return survey
        return replace(survey, tags=self.tags, organisation=self.organisation, resolved_by=self.resolved_by)


class RestoreSchema(StrictSchema):
    """The `restore` object of a replay line (written by export-log)."""

    survey = fields.String(load_default=None, validate=SID)
    status = fields.String(load_default=None, validate=validate.OneOf(("failed",)))
    error = fields.String(load_default=None, validate=validate.Length(max=200))
    sent_at = AwareDateTime(load_default=None)
    expires_at = AwareDateTime(load_default=None)
    reminder_at = AwareDateTime(load_default=None)
    reason = fields.String(load_default=None, validate=validate.Length(max=200))
    extra = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                        values=fields.String(validate=validate.Length(max=500)), load_default=None,
                        validate=validate.Length(max=EXTRA_MAX))
    answered_via = fields.String(load_default=None, validate=validate.Length(max=20))
    tags = fields.List(fields.String(validate=validate.Length(max=200)), load_default=None,
                       validate=validate.Length(max=200))
    organisation = fields.String(load_default=None, allow_none=True, validate=TEXT)
    resolved_by = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(RESOLVERS))


_SCHEMA = RestoreSchema()


def restore_from_line(part: Any) -> Restore:
    """Read a replay line's `restore` object, or raise ValidationError."""
    if not isinstance(part, dict):
        raise ValidationError("Must be an object.")
    loaded = _SCHEMA.load(part)
    times = {name: to_epoch_ms(loaded[name]) for name in TIMES if loaded.get(name)}
    return Restore(survey=loaded["survey"], status=loaded["status"], error=loaded["error"],
                   sent_at_ms=times.get("sent_at"), expires_at_ms=times.get("expires_at"),
                   reminder_at_ms=times.get("reminder_at"),
                   reason=loaded["reason"], extra=loaded["extra"], answered_via=loaded["answered_via"],
                   tags=tuple(loaded["tags"] or ()), organisation=loaded.get("organisation"),
                   resolved_by=loaded.get("resolved_by"), dimensioned=loaded["tags"] is not None)


def restore_line(restore: Restore) -> dict[str, Any]:
    """Return the `restore` object of a replay line that restore_from_line reads back to restore."""
    line: dict[str, Any] = _present({
        "survey": restore.survey, "status": restore.status, "error": restore.error,
        **{name: None if ms is None else iso_from_ms(ms) for name, ms in zip(TIMES, _times(restore), strict=True)},
        "reason": restore.reason, "extra": dict(restore.extra) if restore.extra else None,
        "answered_via": restore.answered_via})
    if restore.dimensioned:
        line |= {"tags": list(restore.tags), "organisation": restore.organisation,
                 "resolved_by": restore.resolved_by}
    return line


def restore_record(restore: Restore) -> dict[str, Any]:
    """Return the restore as the log record keeps it (times in epoch milliseconds)."""
    record = restore_line(restore)
    for name, ms in zip(TIMES, _times(restore), strict=True):
        if ms is not None:
            record[name] = ms
    return record


def restore_from_record(part: Any) -> Restore | None:
    """Read the restore a log record keeps, None when it keeps none; raise ValueError when it cannot be read."""
    if part is None:
        return None
    if not isinstance(part, dict):
        raise ValueError("restore must be an object")
    times = {name: part.get(name) for name in TIMES}
    if any(value is not None and (not isinstance(value, int) or isinstance(value, bool)) for value in times.values()):
        raise ValueError("restore times must be epoch milliseconds")
    line = {name: value for name, value in part.items() if name not in times}
    try:
        restore = restore_from_line(line)
    except ValidationError as exc:
        raise ValueError(f"restore is not valid: {exc.messages}") from None
    return replace(restore, sent_at_ms=times["sent_at"], expires_at_ms=times["expires_at"],
                   reminder_at_ms=times["reminder_at"])


def _times(restore: Restore) -> tuple[int | None, ...]:
    """Return the restore's times in the order of TIMES."""
    return restore.sent_at_ms, restore.expires_at_ms, restore.reminder_at_ms


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
