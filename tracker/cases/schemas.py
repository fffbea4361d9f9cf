"""Marshmallow schemas of recovery cases: a case as the API, the CLI and notices show it, and what changes one."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from tracker.events import iso_from_ms
from tracker.model import CASE_STATUSES, Case
from tracker.store import keys

NOTE_MAX = 2000
OWNER_MAX = 200
OUTCOME_MAX = 2000
UNASSIGNED = "unassigned"  # the owner filter that lists cases without an owner
CURSOR_PATTERN = r"^[01]\|[0-9]{15}\|c[0-9]{1,2}-[a-z2-7]{20}$"  # a listing's next_cursor (an index member)


class CaseNoteSchema(Schema):
    at = fields.String(required=True, metadata={"description": "ISO 8601 UTC"})
    by = fields.String(required=True, metadata={"description": "the API key (or CLI user) that wrote it"})
    text = fields.String(required=True)


class CaseAgentSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)


class CaseSchema(Schema):
    """A recovery case (SPEC.md §11)."""

    id = fields.String(required=True)
    customer = fields.String(required=True, metadata={"description": "the customer's email"})
    name = fields.String(allow_none=True, required=True, metadata={"description": "the customer's name"})
    ticket = fields.String(allow_none=True, required=True, metadata={"description": "<source>:<ticket id>"})
    owner = fields.String(allow_none=True, required=True, metadata={"description": "null: unassigned"})
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    due_at = fields.String(required=True)
    overdue = fields.Boolean(required=True)
    notes = fields.List(fields.Nested(CaseNoteSchema), required=True)
    outcome = fields.String(allow_none=True, required=True)
    survey = fields.String(required=True, metadata={"description": "the survey whose answer opened it"})
    rating = fields.Integer(allow_none=True, required=True)
    scale = fields.String(allow_none=True, required=True)
    comment = fields.String(allow_none=True, required=True)
    opened_at = fields.String(required=True)
    first_contact_at = fields.String(allow_none=True, required=True)
    closed_at = fields.String(allow_none=True, required=True)
    source = fields.String(allow_none=True, required=True)
    team = fields.String(allow_none=True, required=True)
    agent = fields.Nested(CaseAgentSchema, allow_none=True, required=True)


class CasePageSchema(Schema):
    cases = fields.List(fields.Nested(CaseSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_from_ms(ms)


def case_json(case: Case, now_ms: int) -> dict[str, Any]:
    """Return a case as GET /api/v1/cases/<id> shows it."""
    return {
        "id": case.id, "customer": case.customer, "name": case.name, "ticket": case.ticket, "owner": case.owner,
        "status": case.status, "due_at": iso_from_ms(case.due_at_ms), "overdue": case.overdue(now_ms),
        "notes": [{"at": iso_from_ms(n.at_ms), "by": n.by, "text": n.text} for n in case.notes],
        "outcome": case.outcome, "survey": case.survey, "rating": case.rating, "scale": case.scale,
        "comment": case.comment, "opened_at": iso_from_ms(case.opened_at_ms),
        "first_contact_at": _iso(case.first_contact_at_ms), "closed_at": _iso(case.closed_at_ms),
        "source": case.source, "team": case.team,
        "agent": {"id": case.agent_id, "name": case.agent_name} if case.agent_id else None,
    }


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


class CaseListQuerySchema(Schema):
    """`GET /api/v1/cases`: filters and a page."""

    class Meta:
        unknown = RAISE

    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    owner = fields.String(load_default=None, validate=validate.Length(min=1, max=OWNER_MAX),
                          metadata={"description": f"an owner, or `{UNASSIGNED}` for cases without one"})
    overdue = fields.Boolean(load_default=False, metadata={"description": "only open and contacted cases past due"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Regexp(CURSOR_PATTERN, error="Not a valid cursor."))


class NoteTexts(fields.Field):
    """`notes` in a change: the text of a note to add, or a list of them (the field's name as a case shows it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not 1 <= len(texts) <= NOTES_AT_ONCE or not all(
                isinstance(text, str) and 1 <= len(text.strip()) <= NOTE_MAX for text in texts):
            raise ValidationError(f"Give the text of a note to add, or a list of at most {NOTES_AT_ONCE} of them, "
                                  f"each 1 to {NOTE_MAX} characters (the case's notes stay; these are added).")
        return [text.strip() for text in texts]


NOTES_AT_ONCE = 20


class CasePatchSchema(Schema):
    """`PATCH /api/v1/cases/<id>` (and `tracker case ID --…`): what a lead changes; at least one field.

    `note` adds one note; `notes`, the name a case shows its notes under, adds one (a text) or each of a list."""

    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    note = fields.String(validate=validate.Length(min=1, max=NOTE_MAX))
    notes = NoteTexts(metadata={"description": "a note's text, or a list of texts: each is added to the case"})
    owner = _text(OWNER_MAX, allow_none=True, metadata={"description": "null or \"\": unassign"})
    outcome = _text(OUTCOME_MAX, allow_none=True)

    @pre_load
    def strip_texts(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data

    @validates_schema
    def something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of status, note (or notes), owner, outcome.", "_schema")


def valid_case_id(case_id: str) -> bool:
    return keys.case_bucket(case_id) is not None
