"""One instance per marshmallow schema class: building a schema (and its nested ones) costs more than using it."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema


@cache
def schema(schema_class: type[Schema]) -> Schema:
    """Return the shared instance of a schema class that takes no arguments (load and dump keep no state)."""
    return schema_class()
