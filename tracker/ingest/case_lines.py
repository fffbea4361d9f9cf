"""Recovery cases as replay lines: export-log writes every case kept, and what the case counters hold beyond them;
replay writes each case back under its own id, as it was stored.

A `case.recorded` line holds one case whole: what the API shows of it (times in ISO 8601), and what the store keeps
beside (its rev, the rev whose notice was emitted, the mark of the new survey its closing scheduled). Replay writes
it with its counters and index entries, and announces nothing: no case.opened or case.updated notice, no note on the
ticket, no alert, no new survey (the install it came from told it). A case of that id already there stays as it is,
so replaying twice changes nothing. A `cases.retired` line carries what the counters of every bucket hold beyond the
cases kept (closed cases retention deleted keep counting in the summary), so the summary's case numbers come out the
same after the move. Both lines are replay-only: a webhook carrying them is ignored, as it ignores survey.sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from tracker.cases.schemas import NOTE_MAX, OUTCOME_MAX
from tracker.cases.work import NOTES_KEPT
from tracker.events import IDENT, TEXT, AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.ingest.optout_lines import Address
from tracker.model import CASE_STATUSES, Case, CaseNote
from tracker.scales import SCALES
from tracker.store import Store, keys
from tracker.store.cases import CARRIED, COUNTERS, counted_fields, is_counter_field

# A label as tracker.store.cases.labels_of names it: a filter's name and its value, escaped (no '|', no space).
# Escaped, a value of 500 characters takes up to 12 characters each (a 4-byte UTF-8 one, each byte as %XX).
LABEL = r"^(source|brand|team|agent|scale|channel|tag|organisation|resolved_by)=[^|\s]{1,6000}$"
COUNTER_FIELD = "^(" + LABEL[1:-1] + r"\|)?(" + "|".join(COUNTERS) + ")$"
MAX_LABELS = 210  # eight filters and a ticket's tags (at most 200, tracker.events)
BUCKET_READS = 5  # a bucket whose counters move while its cases are read is read again, at most this often
CASE = "case.recorded"
RETIRED = "cases.retired"
TYPES = (CASE, RETIRED)


class CaseNoteLineSchema(StrictSchema):
    at = AwareDateTime(required=True)
    by = fields.String(required=True, validate=validate.Length(max=1000))
    text = fields.String(required=True, validate=validate.Length(max=NOTE_MAX))


class CaseAgentLineSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENT)
    name = fields.String(load_default=None, allow_none=True, validate=TEXT)


def _text(max_length: int) -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length))


def _time(required: bool = False) -> AwareDateTime:
    return AwareDateTime(required=True) if required else AwareDateTime(load_default=None, allow_none=True)


class CaseLineSchema(StrictSchema):
    """The `case` object of a case.recorded line."""

    id = fields.String(required=True, validate=validate.Regexp(keys.CASE_ID_PATTERN, error="Must be a case id."))
    customer = Address(required=True)
    name = _text(500)
    ticket = _text(450)
    owner = _text(1000)  # TRACKER_CASE_OWNERS names them too, unbounded
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    opened_at = _time(required=True)
    due_at = _time(required=True)
    first_contact_at = _time()
    closed_at = _time()
    outcome = _text(OUTCOME_MAX)
    survey = fields.String(required=True, validate=validate.Regexp(r"^[a-z2-7]{20}$", error="Must be a survey id."))
    rating = fields.Integer(load_default=None, allow_none=True, strict=True)
    scale = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(tuple(SCALES)))
    comment = _text(2000)
    source = _text(40)
    team = _text(500)
    agent = fields.Nested(CaseAgentLineSchema, load_default=None, allow_none=True)
    notes = fields.List(fields.Nested(CaseNoteLineSchema), load_default=list, validate=validate.Length(max=NOTES_KEPT))
    resurvey = _text(100)
    rev = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    notified = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    # What it counts under (tracker.cases.labels); absent from an export made before labels: beat labels it here.
    labels = fields.List(fields.String(validate=validate.Regexp(LABEL, error="Must be a filter's label.")),
                         load_default=None, allow_none=True, validate=validate.Length(max=MAX_LABELS))

    @validates_schema
    def names_its_survey_and_customer(self, data: dict[str, Any], **kwargs: Any) -> None:
        # A case's id names its survey and its customer's bucket: its indexes and counters live in that bucket.
        if data.get("id") and data.get("survey") and data.get("customer") \
                and data["id"] != keys.case_id(data["survey"], data["customer"]):
            raise ValidationError("Must be the id of the customer's case about its survey "
                                  f"({keys.case_id(data['survey'], data['customer'])}).", "id")
        if data.get("notified", 0) > data.get("rev", 0):
            raise ValidationError("Must not be after rev.", "notified")


class CasesRetiredLineSchema(StrictSchema):
    """The `counts` of a cases.retired line: what the counters hold beyond the cases the export carries, by counter
    field (one of COUNTERS, or a label's: "team=billing|recovered")."""

    counts = fields.Dict(keys=fields.String(validate=validate.Regexp(
                             COUNTER_FIELD, error="Must be a case counter, alone or after a label and '|'.")),
                         values=fields.Integer(strict=True, validate=validate.Range(min=0)), required=True)


class CaseLine(StrictSchema):
    type = fields.String(required=True, validate=validate.Equal(CASE))
    case = fields.Nested(CaseLineSchema, required=True)


class RetiredLine(CasesRetiredLineSchema):
    type = fields.String(required=True, validate=validate.Equal(RETIRED))


_CASE, _RETIRED = CaseLine(), RetiredLine()


def _ms(moment: Any) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def case_from_line(data: dict[str, Any]) -> Case:
    """Read a case.recorded line into the case it carries, or raise ValidationError."""
    loaded = _CASE.load(data)["case"]
    agent = loaded["agent"] or {}
    return Case(id=loaded["id"], customer=loaded["customer"], name=loaded["name"], ticket=loaded["ticket"],
                owner=loaded["owner"], status=loaded["status"], opened_at_ms=to_epoch_ms(loaded["opened_at"]),
                due_at_ms=to_epoch_ms(loaded["due_at"]),
                notes=tuple(CaseNote(to_epoch_ms(n["at"]), n["by"], n["text"]) for n in loaded["notes"]),
                outcome=loaded["outcome"], survey=loaded["survey"], rating=loaded["rating"], scale=loaded["scale"],
                comment=loaded["comment"], source=loaded["source"], team=loaded["team"], agent_id=agent.get("id"),
                agent_name=agent.get("name"), first_contact_at_ms=_ms(loaded["first_contact_at"]),
                closed_at_ms=_ms(loaded["closed_at"]), resurvey=loaded["resurvey"], rev=loaded["rev"],
                notified=loaded["notified"],
                labels=None if loaded["labels"] is None else tuple(sorted(set(loaded["labels"]))))


def retired_from_line(data: dict[str, Any]) -> dict[str, int]:
    """Read a cases.retired line into the counts it carries, or raise ValidationError."""
    return dict(_RETIRED.load(data)["counts"])


def case_line(case: Case) -> dict[str, Any]:
    """Return the case.recorded line that case_from_line reads back to case."""
    def iso(ms: int | None) -> str | None:
        return None if ms is None else iso_from_ms(ms)

    return {"type": CASE, "case": {
        "id": case.id, "customer": case.customer, "name": case.name, "ticket": case.ticket, "owner": case.owner,
        "status": case.status, "opened_at": iso_from_ms(case.opened_at_ms), "due_at": iso_from_ms(case.due_at_ms),
        "first_contact_at": iso(case.first_contact_at_ms), "closed_at": iso(case.closed_at_ms),
        "outcome": case.outcome, "survey": case.survey, "rating": case.rating, "scale": case.scale,
        "comment": case.comment, "source": case.source, "team": case.team,
        "agent": {"id": case.agent_id, "name": case.agent_name} if case.agent_id else None,
        "notes": [{"at": iso_from_ms(n.at_ms), "by": n.by, "text": n.text} for n in case.notes],
        "resurvey": case.resurvey, "rev": case.rev, "notified": case.notified,
        **({} if case.labels is None else {"labels": list(case.labels)})}}


def case_lines(store: Store, now_ms: int) -> Iterator[dict[str, Any]]:
    """Yield a case.recorded line per case kept, then a cases.retired line when the counters hold more than those
    cases (closed cases retention deleted, or counts carried from an earlier install), by counter field: each
    label's too, so the numbers under one filter come out the same after the move.

    A bucket's counters are read before and after its cases: when a lead's change (or a case opened) moved them
    meanwhile, the bucket is read again, so what the cases carried and what their counters held are of one moment."""
    beyond: dict[str, int] = {}
    for bucket in range(keys.BUCKETS):
        for _ in range(BUCKET_READS):
            before = store.case_counters(bucket)
            cases = [case for batch in store.iter_cases(buckets=[bucket]) for case in batch]
            if store.case_counters(bucket) == before:
                break
        # else the bucket kept moving: carry the last read, the cases of one moment and the counters of the next
        kept: dict[str, int] = {}
        for case in cases:
            for name, count in counted_fields(case).items():
                kept[name] = kept.get(name, 0) + count
            yield case_line(case)
        for name, count in before.items():
            field = name.removeprefix(CARRIED)
            if is_counter_field(field):
                beyond[field] = beyond.get(field, 0) + count
        for name, count in kept.items():
            beyond[name] = beyond.get(name, 0) - count
    counts = {name: count for name, count in sorted(beyond.items()) if count > 0}
    if counts:
        yield {"type": RETIRED, "counts": counts}
