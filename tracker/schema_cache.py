"""One instance per marshmallow schema class, and a compiled load of valid input in front of marshmallow's own.

Building a schema (and its nested ones) costs more than using it, so each class has one shared instance.
Loading through marshmallow costs ~25 Python calls per field; `load` first tries a loader compiled once from
the same schema (its fields, their validators, its hooks) that only ever accepts: anything it is not sure of
(an error, a field type it does not inline, an option it does not know) hands the input to marshmallow, which
then loads it or raises the ValidationError it always raised. So errors and their messages are marshmallow's,
and valid input loads to the same result either way (tests/test_schema_cache.py compares them field by field).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from functools import cache
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing

Loader = Callable[[Any], Any]  # the raw value (missing when absent) -> what marshmallow loads it to
FieldLoader = Callable[[Any, Any], Any]  # (raw value, the object holding it) -> what marshmallow loads it to


@cache
def schema(schema_class: type[Schema]) -> Schema:
    """Return the shared instance of a schema class that takes no arguments (load and dump keep no state)."""
    return schema_class()


def load(schema_class: type[Schema], data: Any) -> Any:
    """Load data with a schema class as `schema(schema_class).load(data)` does, valid input without its overhead."""
    compiled = _compiled(schema_class)
    if compiled is not None:
        with suppress(Exception):  # whatever the compiled loader declines (or trips on), marshmallow decides
            return compiled(data)
    return schema(schema_class).load(data)


class _Decline(Exception):
    """The compiled loader is not sure of this input."""


_DECLINE = object()  # what a required field's absence loads to: nothing, the input goes to marshmallow


@cache
def _compiled(schema_class: type[Schema]) -> Loader | None:
    return _compile(schema(schema_class))


def _compile(instance: Schema) -> Loader | None:
    """Return a loader for one schema instance, or None when it uses an option the loader does not reproduce."""
    hooks = instance._hooks  # marshmallow's table of decorated methods: tag -> [(name, many, options)]
    if instance.many or instance.partial or instance.unknown not in (RAISE, EXCLUDE) or hooks[VALIDATES]:
        return None
    for tag in (PRE_LOAD, POST_LOAD, VALIDATES_SCHEMA):
        if any(many or options.get("pass_original") for _name, many, options in hooks[tag]):
            return None
    compiled: list[tuple[str, str, FieldLoader, Any, bool, bool]] = []
    for name, field in instance.load_fields.items():
        key = field.data_key or name
        field_loader = _field_loader(field, key)
        if field_loader is None or (field.attribute and "." in field.attribute):
            return None
        # An absent value loads to load_default (called when callable; left out when it is `missing`) unless the
        # field is required; null loads to None where allow_none: Field.deserialize, before _deserialize.
        absent = _DECLINE if field.required else field.load_default
        compiled.append((key, field.attribute or name, field_loader, absent, callable(absent), field.allow_none))
    known = frozenset(key for key, *_rest in compiled)
    strict = instance.unknown == RAISE
    pre = [getattr(instance, name) for name, _many, _options in hooks[PRE_LOAD]]
    checks = [getattr(instance, name) for name, _many, _options in hooks[VALIDATES_SCHEMA]]
    post = [getattr(instance, name) for name, _many, _options in hooks[POST_LOAD]]
    unknown = instance.unknown
    hook_options = {"many": False, "partial": None, "unknown": unknown}
    check_options = {"partial": None, "many": False, "unknown": unknown}

    def loader(data: Any) -> Any:
        for hook in pre:
            data = hook(data, **hook_options)
        if type(data) is not dict or (strict and not known.issuperset(data)):
            raise _Decline
        result = {}
        get = data.get
        for key, attr, load_field, absent, call_absent, nullable in compiled:
            value = get(key, missing)
            if value is missing:
                if absent is _DECLINE:
                    raise _Decline
                value = absent() if call_absent else absent
                if value is missing:
                    continue
            elif value is None:
                if not nullable:
                    raise _Decline
            else:
                value = load_field(value, data)
            result[attr] = value
        for check in checks:
            check(result, **check_options)  # a ValidationError declines
        for hook in post:
            result = hook(result, **hook_options)
        return result

    return loader


def _field_loader(field: fields.Field, key: str) -> FieldLoader | None:
    """Return what field.deserialize(value, key, data) returns for a value neither absent nor null, or raise."""
    if field.pre_load or field.post_load:
        return None
    if isinstance(field, fields.Nested):
        return _nested_loader(field)
    if isinstance(field, fields.String) and type(field)._deserialize is fields.String._deserialize \
            and all(check.equal is None for check in field.validators if type(check) is validate.Length):
        return _string_loader(field)  # String, and Email (a String with a validator)
    deserialize = field.deserialize
    # Any other field loads a value as marshmallow loads it, by its own deserialize: only the schema's overhead
    # is saved.
    return lambda value, data: deserialize(value, key, data)


def _string_loader(field: fields.String) -> FieldLoader:
    # String._deserialize takes text as it is; the validators run as Field._validate runs them (a plain function
    # returning False fails too), the Length bounds inline.
    bounds = [(check.min, check.max) for check in field.validators if type(check) is validate.Length]
    low = max((lo for lo, _hi in bounds if lo is not None), default=0)
    high = min((hi for _lo, hi in bounds if hi is not None), default=None)
    others = [check for check in field.validators if type(check) is not validate.Length]

    def load_string(value: Any, data: Any) -> Any:
        if type(value) is not str or len(value) < low or (high is not None and len(value) > high):
            raise _Decline
        for check in others:
            if check(value) is False and not isinstance(check, validate.Validator):
                raise _Decline
        return value

    return load_string


def _nested_loader(field: fields.Nested) -> FieldLoader | None:
    if field.many or field.only is not None or field.exclude or field.unknown is not None:
        return None
    try:
        inner = _compile(field.schema)
    except ValueError:  # a nested schema marshmallow resolves by name later: left to marshmallow
        return None
    if inner is None:
        return None

    return lambda value, data: inner(value)
