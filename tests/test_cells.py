"""The dashboard's number cells (tracker.web.dashboard.cells) write what the Jinja macros they replace wrote."""

from __future__ import annotations

import math

import pytest
from jinja2 import Environment

from tracker.web.dashboard.cells import num, trend

# The macros as _macros.html held them until the cells became Python.
MACROS = """{% macro num(value, suffix="") -%}
{% if value is none %}<span class="none" title="No data">–</span>
{%- else %}{{ "%.1f"|format(value) }}{{ suffix }}{% endif %}
{%- endmacro %}
{% macro trend(value) -%}
{% if value is none %}<span class="none" title="Needs answers in both of the last two 30-day windows">–</span>
{%- elif value > 0 %}<span class="up">▲ +{{ "%.1f"|format(value) }}</span>
{%- elif value < 0 %}<span class="down">▼ {{ "%.1f"|format(value) }}</span>
{%- else %}<span>0.0</span>{% endif %}
{%- endmacro %}"""
VALUES = [None, 0, 0.0, -0.0, 0.04, -0.04, 0.05, -0.05, 12.345, -7.25, 99.95, 100, -100, 1e6, 3, math.inf, math.nan]


@pytest.mark.parametrize("value", VALUES)
def test_a_cell_reads_as_the_macro_wrote_it(value: float | None) -> None:
    macros = Environment(autoescape=True).from_string(MACROS).module
    for suffix in ("", "%", "<&>"):
        assert str(num(value, suffix)) == str(macros.num(value, suffix)), (value, suffix)  # type: ignore[attr-defined]
    assert str(trend(value)) == str(macros.trend(value)), value  # type: ignore[attr-defined]
