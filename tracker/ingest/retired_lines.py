"""What retention retired, as replay lines: export-log writes every entity's retired sums and the first activity
retention kept; replay carries them into the new install, so its numbers keep what the old one's kept.

TRACKER_RETENTION_DAYS deletes old answers and surveys and keeps what they counted: the live aggregates keep their
numbers, and each entity's retired sums (its retired hash and day buckets, which `tracker rebuild-scores` adds back)
hold them beside. The exported answers are only those still stored, so a `scores.retired` line per entity carries
its retired sums as stored: `sums` (model.COUNTS and SUMS), `rollup` (the rollup fields an entity other than a
customer keeps beside them) and `daily`, and for a customer whose newest answer retention deleted, `last_response`
(the survey and the time their profile still names: the recent ranking orders them by it). Replay adds them, once
(store.carry_retired), to the entity's retired sums and to its live sums, day buckets and rollup, and places it in
its ranked sets. A `scores.first_activity` line carries the time of the oldest answer or sent survey retention found
before deleting it, where open ranges still start. Both lines are replay-only: a webhook carrying them is ignored,
as it ignores survey.sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from tracker.events import AGGREGATE_ID_MAX, AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.ingest.optout_lines import ADDRESS_MAX
from tracker.ingest.restore import SID
from tracker.model import COUNTS
from tracker.store import Store, keys
from tracker.store.rollups import is_float_field
from tracker.store.sums import SUM_FIELDS

RETIRED = "scores.retired"
FIRST = "scores.first_activity"
TYPES = (RETIRED, FIRST)
DAY_FIELD = re.compile(r"^\d{4}-\d{2}-\d{2}:[nv]$")  # a day bucket's field: "<day>:n" answers, "<day>:v" value6


@dataclass(frozen=True)
class RetiredSums:
    """One entity's retired sums, as its retired hash and day buckets hold them."""

    kind: str
    ident: str
    sums: dict[str, float] = field(default_factory=dict)
    rollup: dict[str, float] = field(default_factory=dict)
    daily: dict[str, int] = field(default_factory=dict)
    last_response: tuple[str, int] | None = None  # a customer's newest answer, deleted: (sid, ms)


@dataclass(frozen=True)
class FirstActivity:
    """The time of the oldest answer or sent survey retention found before deleting it."""

    at_ms: int


def _is_count(name: str) -> bool:
    return name in COUNTS if "|" not in name else not is_float_field(name)


def _number_problem(name: str, value: Any) -> str | None:
    """Say what is wrong with a value of a field (a count is a whole number, a sum any finite number), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "Must be a number."
    if _is_count(name) and not isinstance(value, int):
        return "Must be a whole number."
    if isinstance(value, float) and not math.isfinite(value):
        return "Must be a finite number."
    return None


class LastResponseSchema(StrictSchema):
    survey = fields.String(required=True, validate=SID)
    at = AwareDateTime(required=True)


class RetiredSumsLine(StrictSchema):
    """A scores.retired line."""

    type = fields.String(required=True, validate=validate.Equal(RETIRED))
    kind = fields.String(required=True, validate=validate.OneOf(keys.AGGREGATE_KINDS))
    id = fields.String(required=True, validate=validate.Length(min=1, max=max(AGGREGATE_ID_MAX, ADDRESS_MAX)))
    sums = fields.Dict(keys=fields.String(validate=validate.OneOf(SUM_FIELDS)), values=fields.Raw(), required=True)
    rollup = fields.Dict(keys=fields.String(validate=[validate.Length(max=2000), validate.Regexp(
        r"^[^|]+\|", error="Must be a rollup field (<day>|<name>).")]), values=fields.Raw(), load_default=dict)
    daily = fields.Dict(keys=fields.String(validate=validate.Regexp(DAY_FIELD, error="Must be <YYYY-MM-DD>:n or :v.")),
                        values=fields.Integer(strict=True), load_default=dict)
    last_response = fields.Nested(LastResponseSchema, load_default=None)

    @validates_schema
    def counts_what_the_entity_keeps(self, data: dict[str, Any], **kwargs: Any) -> None:
        for part in ("sums", "rollup"):
            problems = {name: [problem] for name, value in (data.get(part) or {}).items()
                        if (problem := _number_problem(name, value))}
            if problems:
                raise ValidationError(problems, part)
        if data.get("kind") == "customer":
            ident = data.get("id") or ""
            if "@" not in ident or ident != ident.strip().lower() or len(ident) > ADDRESS_MAX:
                raise ValidationError("Must be an email address as the store keeps it (lower case).", "id")
            if data.get("rollup"):
                raise ValidationError("Must be empty for a customer (a customer has no rollup).", "rollup")
        elif data.get("last_response") is not None:
            raise ValidationError("Only a customer has a last response.", "last_response")


class FirstActivityLine(StrictSchema):
    """A scores.first_activity line."""

    type = fields.String(required=True, validate=validate.Equal(FIRST))
    at = AwareDateTime(required=True)


_RETIRED, _FIRST = RetiredSumsLine(), FirstActivityLine()


def sums_from_line(data: dict[str, Any]) -> RetiredSums:
    """Read a scores.retired line into the sums it carries, or raise ValidationError."""
    loaded = _RETIRED.load(data)
    last = loaded["last_response"]
    return RetiredSums(kind=loaded["kind"], ident=loaded["id"], sums=dict(loaded["sums"]),
                       rollup=dict(loaded["rollup"]), daily=dict(loaded["daily"]),
                       last_response=None if last is None else (last["survey"], to_epoch_ms(last["at"])))


def first_from_line(data: dict[str, Any]) -> FirstActivity:
    """Read a scores.first_activity line into the time it carries, or raise ValidationError."""
    return FirstActivity(to_epoch_ms(_FIRST.load(data)["at"]))


def _numbers(stored: dict[str, str]) -> dict[str, float]:
    """Read a retired hash's sums and rollup fields as numbers: a count whole, a sum a float; zeros left out."""
    read = {name: int(value) if _is_count(name) else float(value) for name, value in stored.items()
            if name in SUM_FIELDS or "|" in name}
    return {name: value for name, value in sorted(read.items()) if value}


def retired_line(sums: RetiredSums) -> dict[str, Any]:
    """Return the scores.retired line that sums_from_line reads back to sums."""
    line: dict[str, Any] = {"type": RETIRED, "kind": sums.kind, "id": sums.ident, "sums": sums.sums}
    line |= {name: part for name, part in (("rollup", sums.rollup), ("daily", sums.daily)) if part}
    if sums.last_response is not None:
        line["last_response"] = {"survey": sums.last_response[0], "at": iso_from_ms(sums.last_response[1])}
    return line


def retired_lines(store: Store) -> Iterator[dict[str, Any]]:
    """Yield a scores.retired line per entity whose retired sums hold something, then a scores.first_activity line
    when retention kept a first activity."""
    for kind, ident, stored, daily, newest in store.iter_retired():
        numbers = _numbers(stored)
        yield retired_line(RetiredSums(
            kind, ident, sums={name: value for name, value in numbers.items() if name in SUM_FIELDS},
            rollup={name: value for name, value in numbers.items() if "|" in name},
            daily={name: int(value) for name, value in sorted(daily.items()) if int(value)}, last_response=newest))
    if (first := store.first_activity_kept()) is not None:
        yield {"type": FIRST, "at": iso_from_ms(first)}
