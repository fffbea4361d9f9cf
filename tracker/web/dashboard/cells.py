"""The dashboard's table cells, as the templates' globals `num`, `trend`, `score_cells` and `spark`: Python, not
Jinja macros, since a page shows hundreds of them (a sparkline and eight numbers a row of the agents' and teams'
tables) and a macro call costs several times the cell."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from tracker.web.dashboard.chart import Sparkline

NO_DATA = Markup('<span class="none" title="No data">–</span>')
NO_TREND = Markup('<span class="none" title="Needs answers in both of the last two 30-day windows">–</span>')


def num(value: float | None, suffix: str = "") -> Markup:
    """A figure to one decimal with its suffix ("%"), or a dash that says there is no data."""
    if value is None:
        return NO_DATA
    return escape(f"{value:.1f}{suffix}")


def trend(value: float | None) -> Markup:
    """A trend with its arrow: up, down, flat, or a dash when either window has no answers."""
    if value is None:
        return NO_TREND
    if value > 0:
        return Markup('<span class="up">▲ +{}</span>').format(f"{value:.1f}")
    if value < 0:
        return Markup('<span class="down">▼ {}</span>').format(f"{value:.1f}")
    return Markup("<span>0.0</span>")


def score_cells(row: Any) -> Markup:
    """A score card's eight number cells (a ScoreCard: score, average, CSAT, answers, sent, rate, trend, NPS).

    Built by f-strings of escaped parts (Markup.format runs a formatter written in Python, slower than the macro)."""
    cells = (num(row.score), num(row.average), num(row.csat, "%"), escape(row.responses or 0),
             escape(row.surveys_sent or 0), num(row.response_rate, "%"), trend(row.trend), num(row.nps))
    return Markup("\n".join(f'<td class="num">{cell}</td>' for cell in cells))  # noqa: S704 (every part escaped)


NO_SPARK = Markup('<span class="none spark-none" title="No answers in this period">–</span>')


def spark(line: Sparkline | None) -> Markup:
    """An entity's weekly CSAT as a small SVG (tracker.web.dashboard.chart.sparkline), or a dash without answers."""
    if line is None or line.empty:
        return NO_SPARK
    # The label and lines escaped, every number made a number: nothing of the markup comes from outside unescaped.
    f, label = line.frame, escape(line.label)
    width, height, middle = int(f.width), int(f.height), (f.top + f.bottom) / 2
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
             f'data-weeks="{int(line.weeks)}" data-points="{len(line.dots)}" data-gaps="{int(line.gaps)}">'
             f'<title>{label}</title>\n<rect class="track" x="0" y="0" width="{width}" height="{height}" rx="4"></rect>'
             f'<line class="half" x1="{int(f.left)}" x2="{int(f.right)}" y1="{middle}" y2="{middle}"></line>']
    parts += [f'<polyline points="{escape(segment)}"></polyline>' for segment in line.lines]
    parts += [f'<circle cx="{float(dot.x)}" cy="{float(dot.y)}" r="2.2"></circle>' for dot in line.dots]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (escaped or numbers, above)
