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

Loader = Callable[[Any], Any]  # the input -> what marshmallow loads it to


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


@cache
def _compiled(schema_class: type[Schema]) -> Loader | None:
    return _compile(schema(schema_class))


def _compile(instance: Schema) -> Loader | None:
    """Return a loader for one schema instance, or None when it uses an option the loader does not reproduce.

    The loader is Python source written for the schema, field by field in marshmallow's order: an absent value
    loads to load_default (called when callable, left out when `missing`) unless the field is required, null to
    None where allow_none (Field.deserialize, before _deserialize); text is taken as String._deserialize takes
    it and checked by the field's validators (Length inline); a nested schema loads by its own loader; any other
    field by its own deserialize. The values it refers to are names in its namespace, never text in its source.
    """
    hooks = instance._hooks  # marshmallow's table of decorated methods: tag -> [(name, many, options)]
    if instance.many or instance.partial or instance.unknown not in (RAISE, EXCLUDE) or hooks[VALIDATES]:
        return None
    for tag in (PRE_LOAD, POST_LOAD, VALIDATES_SCHEMA):
        if any(many or options.get("pass_original") for _name, many, options in hooks[tag]):
            return None
    unknown = instance.unknown
    names: dict[str, Any] = {"missing": missing, "_Decline": _Decline, "hook_options": {
        "many": False, "partial": None, "unknown": unknown}, "check_options": {
        "partial": None, "many": False, "unknown": unknown}}
    known: set[str] = set()
    body: list[str] = []
    for number, (name, field) in enumerate(instance.load_fields.items()):
        key = field.data_key or name
        if field.pre_load or field.post_load or (field.attribute and "." in field.attribute):
            return None
        value_lines = _value_lines(field, key, number, names)
        if value_lines is None:
            return None
        known.add(key)
        names[f"key{number}"], names[f"attr{number}"] = key, field.attribute or name
        body += [f"value = get(key{number}, missing)", "if value is missing:"]
        if field.required:
            body.append("    raise _Decline")
        else:
            names[f"default{number}"] = field.load_default
            call = "()" if callable(field.load_default) else ""
            body += [f"    value = default{number}{call}", "    if value is not missing:",
                     f"        result[attr{number}] = value"]
        null = f"    result[attr{number}] = None" if field.allow_none else "    raise _Decline"
        body += ["elif value is None:", null, "else:", *(f"    {line}" for line in value_lines),
                 f"    result[attr{number}] = value"]
    names["known"] = frozenset(known)
    source = ["def loader(data):"]
    for number, (hook, _many, _options) in enumerate(hooks[PRE_LOAD]):
        names[f"pre{number}"] = getattr(instance, hook)
        source.append(f"    data = pre{number}(data, **hook_options)")
    source += ["    if type(data) is not dict:", "        raise _Decline"]
    if unknown == RAISE:
        source += ["    if not known.issuperset(data):", "        raise _Decline"]
    source += ["    get = data.get", "    result = {}", *(f"    {line}" for line in body)]
    for number, (hook, _many, _options) in enumerate(hooks[VALIDATES_SCHEMA]):
        names[f"check{number}"] = getattr(instance, hook)
        source.append(f"    check{number}(result, **check_options)")  # a ValidationError declines
    for number, (hook, _many, _options) in enumerate(hooks[POST_LOAD]):
        names[f"post{number}"] = getattr(instance, hook)
        source.append(f"    result = post{number}(result, **hook_options)")
    source.append("    return result")
    exec(compile("\n".join(source), f"<load {type(instance).__name__}>", "exec"), names)  # noqa: S102
    return names["loader"]  # type: ignore[no-any-return]


def _value_lines(field: fields.Field, key: str, number: int, names: dict[str, Any]) -> list[str] | None:
    """Return the lines that turn `value` (neither absent nor null) into what the field loads it to, or decline."""
    if isinstance(field, fields.Nested):
        inner = _nested_loader(field)
        if inner is None:
            return None
        names[f"nested{number}"] = inner
        return [f"value = nested{number}(value)"]
    if isinstance(field, fields.String) and type(field)._deserialize is fields.String._deserialize:
        lines = ["if type(value) is not str:", "    raise _Decline"]
        for index, check in enumerate(field.validators):
            if type(check) is validate.Length and all(type(bound) in (int, type(None))
                                                      for bound in (check.min, check.max, check.equal)):
                if check.equal is not None:  # Length checks equal alone when it is given
                    lines += [f"if len(value) != {check.equal}:", "    raise _Decline"]
                    continue
                if check.min is not None:
                    lines += [f"if len(value) < {check.min}:", "    raise _Decline"]
                if check.max is not None:
                    lines += [f"if len(value) > {check.max}:", "    raise _Decline"]
                continue
            names[f"validator{number}_{index}"] = check
            if isinstance(check, validate.Validator):
                lines.append(f"validator{number}_{index}(value)")  # raises ValidationError: declined
            else:  # a plain function fails by raising or by returning False (Field._validate_all)
                lines += [f"if validator{number}_{index}(value) is False:", "    raise _Decline"]
        return lines
    names[f"deserialize{number}"], names[f"field_key{number}"] = field.deserialize, key
    return [f"value = deserialize{number}(value, field_key{number}, data)"]


def _nested_loader(field: fields.Nested) -> Loader | None:
    if field.many or field.only is not None or field.exclude or field.unknown is not None:
        return None
    try:
        return _compile(field.schema)
    except ValueError:  # a nested schema marshmallow resolves by name later: left to marshmallow
        return None
