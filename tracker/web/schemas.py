"""Marshmallow schemas of the web boundary: the answer form and the API's responses."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate


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


class OrdersSchema(Schema):
    count = fields.Integer()
    total = fields.String()
    currency = fields.String(allow_none=True)
    totals = fields.Dict(keys=fields.String(), values=fields.String())


class LastResponseSchema(Schema):
    rating = fields.Integer()
    scale = fields.String()
    at = fields.String()
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

    customer = fields.String()
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
    ticket = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    agent = fields.Nested(AgentSchema, allow_none=True)
    team = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    rating = fields.Integer()
    scale = fields.String()
    value = fields.Float()
    satisfied = fields.Boolean()
    comment = fields.String(allow_none=True)
    at = fields.String()


class ResponsePageSchema(Schema):
    customer = fields.String()
    responses = fields.List(fields.Nested(ResponseSchema))
    next_cursor = fields.String(allow_none=True)


class TimelineQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))
    order = fields.String(load_default="asc", validate=validate.OneOf(("asc", "desc")))


class TimelineEventSchema(Schema):
    """One entry of a customer's timeline; fields beyond at and kind depend on the kind."""

    at = fields.String()
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


class TimelineSchema(Schema):
    customer = fields.String()
    events = fields.List(fields.Nested(TimelineEventSchema))
