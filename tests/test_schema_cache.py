"""The compiled loads of tracker.schema_cache: what they accept loads exactly as marshmallow loads it.

Every schema the receiver loads (the standard event and every vendor payload) is fed valid input and input
broken in each field in each way (absent, null, empty, the wrong type, too long, unknown keys, odd spellings):
the compiled loader either declines it or returns what marshmallow returns, and `load` always ends where
marshmallow ends (the same result, or a ValidationError with the same messages).
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields, validate

import webhooks.adapters
from tests.support import zendesk_body
from tracker.events import EventSchema
from tracker.schema_cache import _compiled, load, schema
from webhooks.adapters.base import IdField, VendorPayload

for module in pkgutil.iter_modules(webhooks.adapters.__path__):
    importlib.import_module(f"webhooks.adapters.{module.name}")


def subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


VENDOR_SCHEMAS = sorted(subclasses(VendorPayload), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")

TICKET = {"type": "ticket.solved", "id": "evt_01", "occurred_at": "2026-11-22T10:00:00Z",
          "ticket": {"id": "T-1001", "subject": "Card declined", "status": "solved", "channel": "email",
                     "brand": "acme", "team": "billing", "tags": ["vip", "card"], "agent_involved": True,
                     "agent": {"id": "a-7", "name": "Ola", "email": "ola@acme.test"}},
          "customer": {"id": "c-42", "email": "Kari@Example.NO", "name": "Kari", "locale": "nb",
                       "timezone": "Europe/Oslo"}}
ORDER = {"type": "order.created", "id": "evt_02", "occurred_at": "2026-11-22T10:00:00+02:00",
         "order": {"id": "O-9", "total": "149.5", "currency": "nok", "status": "paid"},
         "customer": {"email": "kari@example.no"}}
ANSWERED = {"type": "survey.answered", "id": "evt_03", "occurred_at": "2026-11-22T10:00:00.123z",
            "ticket": {"id": "T-1001"}, "customer": {"id": "c-42"},
            "answer": {"scale": "csat5", "rating": 4, "comment": "Fine", "about": "ticket",
                       "solved_at": "2026-11-21T10:00:00Z"}}
SENT = {"type": "survey.sent", "id": "evt_04", "occurred_at": "2026-11-22T10:00:00",
        "ticket": {"id": "T-1001"}, "customer": {"email": "kari@example.no"}, "survey": {"scale": "nps"}}
EVENTS = [TICKET, ORDER, ANSWERED, SENT]

ODD_VALUES: list[Any] = [None, "", " ", "x" * 201, "x" * 501, "x" * 1001, 0, 7, -1, 1.5, True, False, [], ["a"],
                         {}, {"x": 1}, "true", "yes", "1", "1e3", "NaN", "Infinity", "-0.001", "149.999",
                         "2026-11-22", "2026-02-30T10:00:00Z", "1969-12-31T23:59:59Z", "NOK\n", "nok", "A@B.NO",
                         "not an email", "Europe/Nowhere", "csat5", "ticket", "order", Decimal("1.005")]


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Yield the path of every value inside a JSON-like value (dict keys and list indexes)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def dicts(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Yield the path of every object inside a JSON-like value, the value itself first."""
    if isinstance(data, dict):
        yield prefix
        for key, value in data.items():
            yield from dicts(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from dicts(value, (*prefix, index))


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


def variants(base: dict[str, Any]) -> Iterator[Any]:
    """Yield the valid input, then the input broken once in every field in every way."""
    yield base
    for path in list(paths(base)):
        parent, last = path[:-1], path[-1]
        removed = copy.deepcopy(base)
        del at(removed, parent)[last]
        yield removed
        for value in ODD_VALUES:
            changed = copy.deepcopy(base)
            at(changed, parent)[last] = value
            yield changed
    for path in list(dicts(base)):
        extra = copy.deepcopy(base)
        at(extra, path)["unexpected"] = "x"
        yield extra
    yield []
    yield "text"
    yield None


def sample(field: fields.Field) -> Any:
    """A value a field accepts, from its type and validators."""
    for check in field.validators:
        if isinstance(check, validate.OneOf):
            return next(iter(check.choices))
    if isinstance(field, fields.Nested):
        return example(field.schema)
    if isinstance(field, fields.List):
        return [sample(field.inner)]
    if isinstance(field, fields.Email):
        return "kari@example.no"
    if isinstance(field, fields.DateTime):
        return "2026-11-22T10:00:00Z"
    if isinstance(field, (fields.Decimal, fields.Float)):
        return "12.50"
    if isinstance(field, fields.Integer):
        return 3
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Dict):
        return {"channel": "email"}
    if isinstance(field, IdField):
        return 12345
    return "text"


def example(instance: Schema) -> dict[str, Any]:
    return {field.data_key or name: sample(field) for name, field in instance.load_fields.items()}


def same_outcome(schema_class: type[Schema], data: Any) -> bool:
    """Check one input both ways; return whether the compiled loader accepted it."""
    try:
        expected: Any = schema(schema_class).load(copy.deepcopy(data))
    except ValidationError as exc:
        expected = exc
    compiled = _compiled(schema_class)
    assert compiled is not None, f"{schema_class.__name__} is not compiled"
    try:
        fast = compiled(copy.deepcopy(data))
    except Exception:  # declined: marshmallow decides
        fast = None
    else:
        assert not isinstance(expected, ValidationError), f"accepted what marshmallow refuses: {data!r}"
        assert fast == expected and repr(fast) == repr(expected), data
    try:
        loaded: Any = load(schema_class, copy.deepcopy(data))
    except ValidationError as exc:
        loaded = exc
    if isinstance(expected, ValidationError):
        assert isinstance(loaded, ValidationError) and loaded.messages == expected.messages, data
    else:
        assert loaded == expected, data
    return fast is not None


@pytest.mark.parametrize("base", EVENTS, ids=[event["type"] for event in EVENTS])
def test_the_standard_event_loads_as_marshmallow_loads_it(base):
    accepted = [same_outcome(EventSchema, data) for data in variants(base)]
    assert accepted[0], "the valid event was declined: the compiled loader would save nothing"
    assert not all(accepted)


@pytest.mark.parametrize("schema_class", VENDOR_SCHEMAS, ids=[cls.__qualname__ for cls in VENDOR_SCHEMAS])
def test_every_vendor_payload_loads_as_marshmallow_loads_it(schema_class):
    base = example(schema(schema_class))
    accepted = [same_outcome(schema_class, data) for data in variants(base)]
    assert accepted[0], f"a valid {schema_class.__qualname__} was declined"


def test_a_zendesk_trigger_body_loads_as_marshmallow_loads_it():
    from webhooks.adapters.zendesk import ZendeskTriggerPayload

    accepted = [same_outcome(ZendeskTriggerPayload, data)
                for data in variants(zendesk_body("T-1", "kari@example.no", at="2026-11-22T10:00:00Z"))]
    assert accepted[0]
