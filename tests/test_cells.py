"""The dashboard's table cells (tracker.web.dashboard.cells) write what the Jinja macros they replace wrote."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import Environment

from tracker.web.dashboard.cells import num, score_cells, spark, trend
from tracker.web.dashboard.chart import SPARK, SparkDot, Sparkline, sparkline
from tracker.web.dashboard.trends import Trend, Week

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


# The table's macros as _macros.html held them until they became Python too (num and trend: the globals above).
TABLE_MACROS = Path(__file__).parent / "cells_before_python.html"  # not under fixtures/, which holds sources


def _table_macros() -> object:
    environment = Environment(autoescape=True)
    environment.globals.update(num=num, trend=trend)
    return environment.from_string(TABLE_MACROS.read_text()).module


@pytest.mark.parametrize("value", [None, 0, 12.345, -0.04, 100])
def test_a_rows_cells_read_as_the_macro_wrote_them(value: float | None) -> None:
    macros = _table_macros()
    for responses, sent in ((0, 0), (None, None), (7, 12)):
        row = SimpleNamespace(score=value, average=value, csat=value, responses=responses, surveys_sent=sent,
                              response_rate=value, trend=value, nps=value)
        assert str(score_cells(row)) == str(macros.score_cells(row))  # type: ignore[attr-defined]


def _weeks(counts: list[tuple[int, int]]) -> Trend:
    start = date(2026, 3, 2)
    return Trend(weeks=[Week(start=start + timedelta(days=7 * n), end=start + timedelta(days=7 * n + 6),
                             responses=responses, satisfied=satisfied)
                        for n, (responses, satisfied) in enumerate(counts)])


SPARKS = [None, _weeks([]), _weeks([(0, 0)] * 4), _weeks([(3, 2)]), _weeks([(5, 5), (0, 0), (4, 1), (2, 1), (0, 0)]),
          _weeks([(1, 0), (9, 7), (3, 3), (8, 5), (6, 6), (2, 1)])]


@pytest.mark.parametrize("weeks", SPARKS)
def test_a_sparkline_reads_as_the_macro_wrote_it(weeks: Trend | None) -> None:
    line = sparkline(weeks) if weeks is not None else None
    assert str(spark(line)) == str(_table_macros().spark(line))  # type: ignore[attr-defined]


def test_a_sparklines_words_are_escaped_as_the_macro_escaped_them() -> None:
    line = Sparkline(frame=SPARK, lines=['1,2 3,"4"'], dots=[SparkDot(x=1.5, y=2.0)], weeks=1, gaps=0,
                     label='<b>"Tom & Jerry\'s"</b>')
    assert str(spark(line)) == str(_table_macros().spark(line))  # type: ignore[attr-defined]
