"""The dashboard's number cells, as the templates' globals `num` and `trend`: Python, not Jinja macros, since a
page shows hundreds of them (eight a row of the agents' and teams' tables) and a macro call costs several times
the cell."""

from __future__ import annotations

from markupsafe import Markup, escape

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
