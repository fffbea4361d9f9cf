"""Marshmallow schemas of the web boundary: the answer form and the API's responses."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    pre_dump,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from tracker.events import AGGREGATE_ID_MAX, IDENT_MAX, iso_from_ms
from tracker.model import Answer, Case, Survey, TimelineEntry
from tracker.organisations import MAX_LENGTH as ORGANISATION_MAX
from tracker.privacy.erase import ErasureReport
from tracker.scales import SCALES
from tracker.scores.cards import public_ref
from tracker.scores.ranking import KINDS, ORDERS, SORTS
from tracker.scores.summary import MAX_SPAN_DAYS, Summary
from tracker.store.keys import RESOLVERS


class RatingField(fields.Integer):
    """A rating as forms and links send it: ASCII digits only (int() also takes other scripts' digits)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str | int) or not str(value).strip().isascii() or not str(value).strip().isdigit():
            raise ValidationError("Not a valid rating.")
        return int(str(value).strip()[:3])


class AnswerFormSchema(Schema):
    """The survey page's form: a rating and an optional comment."""

    class Meta:
        unknown = EXCLUDE  # browsers and extensions add fields of their own

    rating = RatingField(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=2000))

    @pre_load
    def fold_line_breaks(self, data: Any, **kwargs: Any) -> Any:
        # A textarea's maxlength counts a line break as one character; browsers send CRLF.
        if hasattr(data, "get") and isinstance(data.get("comment"), str):
            data = {"rating": data.get("rating"), "comment": data["comment"].replace("\r\n", "\n")}
        return data


class ReasonFormSchema(Schema):
    """The follow-up form after an unsatisfied answer: one of the offered reasons (or none) and a comment."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.String(load_default="")
    comment = fields.String(load_default="", validate=validate.Length(max=2000))

    def __init__(self, offered: Sequence[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.offered = frozenset(offered)

    @validates("reason")
    def one_of_the_offered(self, value: str, **kwargs: Any) -> None:
        if value and value not in self.offered:
            raise ValidationError("Not one of the offered reasons.")

    @pre_load
    def fold_line_breaks(self, data: Any, **kwargs: Any) -> Any:
        if hasattr(data, "get") and isinstance(data.get("comment"), str):
            data = {"reason": data.get("reason") or "", "comment": data["comment"].replace("\r\n", "\n")}
        return data


class PageQuerySchema(Schema):
    """`?rating=` on the survey link and `?limit=&cursor=` on listings."""

    class Meta:
        unknown = EXCLUDE

    rating = RatingField(load_default=None)


class ListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Regexp(r"^\d{1,9}$", error="Not a valid cursor."))


class TimeField(fields.String):
    """A time kept as epoch milliseconds, shown as ISO 8601 UTC."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso_from_ms(int(value))


class OrdersSchema(Schema):
    count = fields.Integer()
    total = fields.String()
    currency = fields.String(allow_none=True)
    totals = fields.Dict(keys=fields.String(), values=fields.String())


class LastResponseSchema(Schema):
    rating = fields.Integer()
    scale = fields.String()
    at = TimeField(attribute="at_ms")
    ticket = fields.String(allow_none=True)


class ScoreFieldsSchema(Schema):
    score = fields.Float(allow_none=True)
    average = fields.Float(allow_none=True)
    csat = fields.Float(allow_none=True)
    responses = fields.Integer()
    surveys_sent = fields.Integer()
    response_rate = fields.Float(allow_none=True)
    trend = fields.Float(allow_none=True)
    nps = fields.Float(allow_none=True)


class ScoreCardSchema(ScoreFieldsSchema):
    """A customer's score card (SPEC.md §7)."""

    customer = fields.String(attribute="id")
    name = fields.String(allow_none=True)
    last_response = fields.Nested(LastResponseSchema, allow_none=True)
    orders = fields.Nested(OrdersSchema)
    at_risk = fields.Boolean()


class AgentSchema(Schema):
    id = fields.String()
    name = fields.String(allow_none=True)


class ResponseSchema(Schema):
    """One answer as the API lists it."""

    survey = fields.String()
    customer = fields.String(allow_none=True)
    ticket = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    agent = fields.Nested(AgentSchema, allow_none=True)
    team = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    organisation = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True, metadata={"description": "human or bot; null when unknown"})
    answered_via = fields.String(allow_none=True, metadata={"description": "email when the answer came by reply"})
    rating = fields.Integer()
    scale = fields.String()
    value = fields.Float()
    satisfied = fields.Boolean()
    comment = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    extra = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True, metadata={
        "description": "the answers to the custom survey's extra questions (TRACKER_SURVEYS_FILE), by question id; "
                       "null when none were answered"})
    at = fields.String()

    @pre_dump
    def from_answer(self, answer: Answer, **kwargs: Any) -> dict[str, Any]:
        return {
            "survey": answer.sid, "customer": answer.customer or None, "ticket": public_ref(answer.tkey),
            "subject": answer.subject, "source": answer.source,
            "agent": {"id": answer.agent_id, "name": answer.agent_name} if answer.agent_id else None,
            "channel": answer.channel, "tags": list(answer.tags), "organisation": answer.organisation,
            "resolved_by": answer.resolved_by, "answered_via": answer.answered_via,
            "team": answer.team, "brand": answer.brand, "rating": answer.rating, "scale": answer.scale,
            "value": answer.value, "satisfied": answer.satisfied, "comment": answer.comment, "reason": answer.reason,
            "extra": answer.extra or None, "at": iso_from_ms(answer.at_ms),
        }


class ResponsePageSchema(Schema):
    customer = fields.String()
    # A customer's own answers do not repeat whose they are.
    responses = fields.List(fields.Nested(ResponseSchema, exclude=("customer",)))
    next_cursor = fields.String(allow_none=True)


class TimelineQuerySchema(Schema):
    """A page of a customer's timeline: `limit`, `order` and the `cursor` the previous page gave."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))
    order = fields.String(load_default="asc", validate=validate.OneOf(("asc", "desc")),
                          metadata={"description": "asc: oldest first (the default); desc: newest first"})
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                           metadata={"description": "next_cursor of the previous page, sent with the same order"})


# An answer always says its ticket, reason and comment (null when it has none), a survey its ticket; every
# other field appears only when the entry has it.
TIMELINE_NULLABLE = {"answer": ("ticket", "reason", "comment"), "survey": ("ticket",)}


class TimelineEventSchema(Schema):
    """One entry of a customer's timeline; fields beyond at and kind depend on the kind."""

    at = TimeField(attribute="at_ms")
    kind = fields.String()
    source = fields.String()
    event = fields.String()
    ticket = fields.String(allow_none=True)
    order = fields.String()
    status = fields.String()
    subject = fields.String()
    total = fields.String()
    currency = fields.String()
    survey = fields.String()
    reason = fields.String()
    rating = fields.Integer()
    scale = fields.String()
    satisfied = fields.Boolean()
    comment = fields.String(allow_none=True)

    @post_dump(pass_original=True)
    def _leave_out_absent(self, data: dict[str, Any], entry: TimelineEntry, **_: Any) -> dict[str, Any]:
        nullable = TIMELINE_NULLABLE.get(entry.kind, TIMELINE_NULLABLE.get(entry.kind.partition(".")[0], ()))
        return {name: value for name, value in data.items() if value is not None or name in nullable}


class TimelineSchema(Schema):
    customer = fields.String()
    events = fields.List(fields.Nested(TimelineEventSchema))
    next_cursor = fields.String(allow_none=True, required=True,
                                metadata={"description": "the cursor of the next page; null on the last page"})


# Queries of the score listings, summary and export ---------------------------------------------

def _name() -> fields.String:
    return fields.String(load_default=None, validate=validate.Length(min=1, max=AGGREGATE_ID_MAX))


class AggregateFilterQuerySchema(Schema):
    """The filters every score read takes: an unknown value gives an empty result, a malformed one a 422."""

    class Meta:
        unknown = EXCLUDE

    source = _name()
    brand = _name()
    team = _name()
    agent = fields.String(load_default=None, validate=validate.Length(min=1, max=AGGREGATE_ID_MAX),
                          metadata={"description": "an agent's id as /api/v1/agents lists it: <source>:<agent id>"})
    channel = _name()
    tag = fields.String(load_default=None, validate=validate.Length(min=1, max=IDENT_MAX),
                        metadata={"description": "answers about tickets with this tag"})
    organisation = fields.String(load_default=None, validate=validate.Length(min=1, max=ORGANISATION_MAX),
                                 metadata={"description": "an organisation's id as /api/v1/organisations lists it"})
    resolved_by = fields.String(load_default=None, validate=validate.OneOf(RESOLVERS),
                                metadata={"description": "human or bot: only tickets a person (a bot) resolved"})


class AggregateListQuerySchema(AggregateFilterQuerySchema):
    """A page of agents, teams, sources, brands, channels, tags or organisations, narrowed by the filters."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Regexp(r"^\d{1,9}$", error="Not a valid cursor."))


class FilterQuerySchema(AggregateFilterQuerySchema):
    """`?from=&to=` (UTC days, both included) and the filters every score read takes."""

    date_from = fields.Date(data_key="from", load_default=None, metadata={"description": "first day, YYYY-MM-DD"})
    date_to = fields.Date(data_key="to", load_default=None, metadata={"description": "last day, YYYY-MM-DD"})
    scale = fields.String(load_default=None, validate=validate.OneOf(sorted(SCALES)))

    @validates_schema
    def check_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and first > last:
            raise ValidationError("Must not be after to.", "from")


class SummaryQuerySchema(FilterQuerySchema):
    """`GET /api/v1/summary`: the range (default: from the first activity to today) and filters."""

    @validates_schema
    def check_span(self, data: dict[str, Any], **kwargs: Any) -> None:
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and (last - first).days >= MAX_SPAN_DAYS:
            raise ValidationError(f"The range may span at most {MAX_SPAN_DAYS} days (one value a day).", "from")


class ExportQuerySchema(FilterQuerySchema):
    """`GET /api/v1/export/responses.csv`: the range (default: all time) and filters."""


class ResponseListQuerySchema(FilterQuerySchema):
    """A customer's answers: a page (`limit`, `cursor`) narrowed by range and filters."""

    limit = ListQuerySchema._declared_fields["limit"]
    cursor = ListQuerySchema._declared_fields["cursor"]


class CardQuerySchema(AggregateFilterQuerySchema):
    """`GET /api/v1/customers/<email>`: the filters (the card of the customer's answers and sent surveys that pass
    them; orders and at_risk stay the whole customer's)."""


class CustomerListQuerySchema(AggregateFilterQuerySchema):
    """`GET /api/v1/customers`: ranking, at-risk filter, the filters and a page (a customer is listed when answers
    of theirs pass the filters, with the card of those)."""

    sort = fields.String(load_default=None, validate=validate.OneOf(SORTS),
                         metadata={"description": "score (default), value, recent or responses; "
                                                  "value is the default with at_risk=true"})
    order = fields.String(load_default=None, validate=validate.OneOf(ORDERS),
                          metadata={"description": "asc is the default for score, desc for the others"})
    at_risk = fields.Boolean(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=1000))


# Responses of the score listings, summary and erasure ------------------------------------------

class ErrorSchema(Schema):
    """The one error envelope of the product."""

    code = fields.Integer(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.Raw())


class CustomerPageSchema(Schema):
    customers = fields.List(fields.Nested(ScoreCardSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AggregateSchema(ScoreFieldsSchema):
    """An agent, team, source, brand, channel, tag or organisation with its scores; agents' ids are
    `<source>:<agent id>`."""

    id = fields.String(required=True)
    name = fields.String(allow_none=True)


def _aggregate_page(plural: str) -> type[Schema]:
    return Schema.from_dict({plural: fields.List(fields.Nested(AggregateSchema), required=True),
                             "next_cursor": fields.String(allow_none=True, required=True)},
                            name=f"{plural.title()}PageSchema")


AGGREGATE_PAGES: dict[str, type[Schema]] = {kind: _aggregate_page(f"{kind}s") for kind in KINDS}


class SeriesDaySchema(Schema):
    date = fields.String(required=True)
    responses = fields.Integer(required=True)
    average = fields.Float(allow_none=True, required=True)
    csat = fields.Float(allow_none=True, required=True)


class SummarySchema(ScoreFieldsSchema):
    """The overall scores of a range, with a per-day series, a per-source split and the ratings given."""

    date_from = fields.String(attribute="from", data_key="from", required=True)
    date_to = fields.String(attribute="to", data_key="to", required=True)
    filters = fields.Dict(keys=fields.String(), values=fields.String())
    series = fields.List(fields.Nested(SeriesDaySchema), required=True)
    by_source = fields.Dict(keys=fields.String(), values=fields.Nested(ScoreFieldsSchema), required=True)
    distribution = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                               required=True)
    cases_open = fields.Integer(required=True, metadata={"description": "recovery cases open or contacted, now"})
    cases_overdue = fields.Integer(required=True, metadata={"description": "of those, past their due time"})
    recovered_rate = fields.Float(allow_none=True, required=True,
                                  metadata={"description": "% of closed cases recovered"})
    first_contact_hours = fields.Float(allow_none=True, required=True,
                                       metadata={"description": "mean hours from a case's opening to first contact"})

    @pre_dump
    def flatten(self, summary: Summary, **kwargs: Any) -> dict[str, Any]:
        # The range's numbers sit beside the range itself, as SPEC §6 shows a summary.
        return {"from": summary.date_from, "to": summary.date_to, "filters": summary.filters, **vars(summary.card),
                "series": summary.series, "by_source": summary.by_source, "distribution": summary.distribution,
                **summary.cases}


class ErasureSchema(Schema):
    """What a GDPR erasure removed."""

    customer = fields.String(required=True)
    erased = fields.Dict(keys=fields.String(), values=fields.Raw())

    @pre_dump
    def from_report(self, report: ErasureReport, **kwargs: Any) -> dict[str, Any]:
        return {"customer": report.customer, "erased": {**asdict(report), "found": report.found}}


# The data-access export (SPEC §10) ---------------------------------------------------------------

def _record_schema(record: type, name: str, renamed: dict[str, str] | None = None,
                   exclude: tuple[str, ...] = ()) -> type[Schema]:
    """Build a schema that dumps every field of a record, so an export leaves none out; times in ms as ISO 8601."""
    declared: dict[str, fields.Field] = {}
    for field in dataclasses.fields(record):
        if field.name in exclude:
            continue
        key = (renamed or {}).get(field.name, field.name.removesuffix("_ms"))
        declared[field.name] = TimeField(data_key=key) if field.name.endswith("_ms") else fields.Raw(data_key=key)
    return Schema.from_dict(declared, name=name)


ExportSurveySchema = _record_schema(Survey, "ExportSurvey", {"sid": "survey", "tkey": "ticket"})
ExportAnswerSchema = _record_schema(Answer, "ExportAnswer", {"sid": "survey", "tkey": "ticket"},
                                    exclude=("counted",))


class ExportAgentSchema(Schema):
    id = fields.String()
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class StatusChangeSchema(Schema):
    status = fields.String()
    at = TimeField(attribute="at_ms")


class ExportTicketSchema(Schema):
    """A ticket as stored: the details the newest event gave, and every status it went through."""

    ticket = fields.String(attribute="key")
    source = fields.String()
    id = fields.String(attribute="ticket.id")
    status = fields.String(attribute="ticket.status", allow_none=True)
    subject = fields.String(attribute="ticket.subject", allow_none=True)
    channel = fields.String(attribute="ticket.channel", allow_none=True)
    brand = fields.String(attribute="ticket.brand", allow_none=True)
    team = fields.String(attribute="ticket.team", allow_none=True)
    tags = fields.List(fields.String(), attribute="ticket.tags")
    agent = fields.Nested(ExportAgentSchema, attribute="ticket.agent", allow_none=True)
    agent_involved = fields.Boolean(attribute="ticket.agent_involved", allow_none=True)
    created_at = TimeField(attribute="created_at_ms")
    status_at = TimeField(attribute="status_at_ms")
    solved_at = TimeField(attribute="solved_at_ms")
    survey = fields.String(allow_none=True)
    history = fields.List(fields.Nested(StatusChangeSchema))


class ExportOrderSchema(Schema):
    order = fields.String(attribute="key")
    source = fields.String()
    id = fields.String(attribute="order.id")
    status = fields.String(attribute="order.status")
    total = fields.String(attribute="order.total")
    currency = fields.String(attribute="order.currency")
    refunded = fields.String()
    created_at = TimeField(attribute="created_at_ms")
    status_at = TimeField(attribute="status_at_ms")


class ExportProfileSchema(Schema):
    email = fields.String()
    name = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    first_seen = TimeField(attribute="first_seen_ms")
    last_seen = TimeField(attribute="last_seen_ms")
    aliases = fields.Function(lambda profile: [{"source": s, "id": i} for s, i in profile.aliases])


class OptOutSchema(Schema):
    unsubscribed = fields.Boolean()
    unsubscribed_at = TimeField(attribute="unsubscribed_at_ms")
    suppressed = fields.Boolean()


def _export_entry(entry: TimelineEntry) -> dict[str, Any]:
    """Show an applied event as the export lists it: at and kind first, then its details in name order."""
    shown = TimelineEventSchema().dump(entry)
    return {"at": shown.pop("at"), "kind": shown.pop("kind"), **dict(sorted(shown.items()))}


def _export_case(case: Case) -> dict[str, Any]:
    from tracker.cases.schemas import case_json

    shown = case_json(case, 0)
    del shown["overdue"]  # a state of the moment, not something held
    return shown


class CustomerExportSchema(Schema):
    """Everything held about a customer, for a data-access request (GDPR art. 15)."""

    customer = fields.String()
    profile = fields.Nested(ExportProfileSchema, allow_none=True)
    tickets = fields.List(fields.Nested(ExportTicketSchema))
    orders = fields.List(fields.Nested(ExportOrderSchema))
    surveys = fields.List(fields.Nested(ExportSurveySchema))
    answers = fields.List(fields.Nested(ExportAnswerSchema))
    # An applied event's details depend on its kind: at and kind, then what the event said, by name.
    timeline = fields.Function(lambda export: [_export_entry(entry) for entry in export.timeline])
    opt_out = fields.Nested(OptOutSchema)
    cases = fields.Function(lambda export: [_export_case(case) for case in export.cases])
