"""A closed case's new survey still to send, as a replay line: export-log writes one per case whose closing scheduled
its new survey (TRACKER_CASE_RESURVEY) and whose due entry is still there (held by the customer's throttle or the
send window, or not yet swept), replay gives it back, so the new install sends it when the old one would have.

`{"type": "case.resurvey", "case": <case id>, "due_at": …}` follows the case's case.recorded line. Replay notes the
due time on the case, once (Store.carry_resurvey), and the due entry is added at that time as soon as the survey the
case is about is recorded too: replay writes the case as it reads the file, the workers record its survey from the
log, in either order (tracker.cases.resurvey.place_carried_resurvey). Its sending is then the sweep's, as for any
closed case: under the throttle and the send window of the new install, once. A survey the new install sent for the
case already is not sent again, and a case whose note is there already is left as it is, so replaying twice changes
nothing. A line whose case is not there (its case.recorded line missing or after it), or whose case scheduled no
new survey, is refused with its number. Replay-only: a webhook carrying it is ignored, as survey.sent is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import fields, validate

from tracker.cases.resurvey import place_carried_resurvey
from tracker.events import AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.store import Store, keys

RESURVEY = "case.resurvey"
TYPES = (RESURVEY,)


class NotCarried(Exception):
    """A case.resurvey line reads, but the case it names is not here, or scheduled no new survey."""


@dataclass(frozen=True)
class HeldResurvey:
    """A closed case's new survey still to send, and when it is due."""

    case: str
    due_at_ms: int


class ResurveyLine(StrictSchema):
    type = fields.String(required=True, validate=validate.Equal(RESURVEY))
    case = fields.String(required=True, validate=validate.Regexp(keys.CASE_ID_PATTERN, error="Must be a case id."))
    due_at = AwareDateTime(required=True)


_SCHEMA = ResurveyLine()


def resurvey_from_line(data: dict[str, Any]) -> HeldResurvey:
    """Read a case.resurvey line, or raise ValidationError."""
    loaded = _SCHEMA.load(data)
    return HeldResurvey(loaded["case"], to_epoch_ms(loaded["due_at"]))


def resurvey_line(held: HeldResurvey) -> dict[str, Any]:
    """Return the line resurvey_from_line reads back to held."""
    return {"type": RESURVEY, "case": held.case, "due_at": iso_from_ms(held.due_at_ms)}


def resurvey_lines(store: Store) -> Iterator[dict[str, Any]]:
    """Yield a case.resurvey line per case whose new survey is still to send (one round trip a batch of cases)."""
    for batch in store.iter_cases():
        due = store.resurveys_due([case.id for case in batch if case.resurvey])
        for case_id, due_ms in due.items():
            yield resurvey_line(HeldResurvey(case_id, due_ms))


def restore_resurvey(store: Store, held: HeldResurvey, dry_run: bool = False) -> bool:
    """Note the new survey on its case and schedule it once its case's survey is recorded, unless it was noted
    before; say whether it was (or, dry, would be) new. Raise NotCarried when its case is not here or scheduled none."""
    noted = store.carry_resurvey(held.case, held.due_at_ms, dry_run)
    if noted == -1:
        raise NotCarried(f"no case {held.case} here: its case.recorded line must come before this line")
    if noted == -2:
        raise NotCarried(f"the case {held.case} here scheduled no new survey when it was closed")
    if noted and not dry_run:
        place_carried_resurvey(store, held.case)
    return noted == 1
