"""The dashboard's sparklines and dimension filters in a real headless Chromium over real HTTP, on a laptop
(1366x900) and a phone (390x844): drawn under the Content-Security-Policy, the form used like a person would, no
sideways scrolling of the page, screenshots in the test output."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.test_dashboard_browser import DevTools, browser, png_size, policy_violations, viewport  # noqa: F401
from tests.test_dashboard_drill_browser import sideways
from tests.test_dashboard_trends import four_weeks, trended  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser
SIZES = {"laptop": (1366, 900, False), "phone": (390, 844, True)}


def sparklines(tools: DevTools, table: str) -> list[dict[str, Any]]:
    """Describe the sparklines a reader sees in a table: drawn size, dots, lines and their label."""
    return tools.evaluate(f"""[...document.querySelectorAll('#{table} svg.spark')].map(svg => {{
        const box = svg.getBoundingClientRect(), line = svg.querySelector('polyline');
        return {{width: box.width, height: box.height, dots: svg.querySelectorAll('circle').length,
                 lines: svg.querySelectorAll('polyline').length, label: svg.getAttribute('aria-label'),
                 stroke: line ? getComputedStyle(line).stroke : null,
                 fill: line ? getComputedStyle(line).fill : null}};
    }})""")


def shot_of(tools: DevTools, selector: str, path: Path) -> bytes:
    """Save a PNG of one element (a closer look than the whole page)."""
    box = tools.evaluate(f"""(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();
        return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()""")
    shot = tools.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**box, "scale": 1})
    data = base64.b64decode(shot["data"])
    path.write_bytes(data)
    return data


def sign_in(tools: DevTools, live_server: str, key: str, query: str) -> None:
    tools.load("navigate", url=f"{live_server}/dashboard?{query}")
    if tools.evaluate("location.pathname") == "/dashboard/login":
        tools.evaluate("document.getElementById('key').focus()")
        tools.send("Input.insertText", text=key)
        tools.load("document.querySelector('#login-form button[type=submit]').click()")
        tools.load("navigate", url=f"{live_server}/dashboard?{query}")
    assert tools.evaluate("location.pathname") == "/dashboard"


def value_of(tools: DevTools, card: str) -> str:
    return tools.evaluate(f"document.querySelector('#card-{card} .value').textContent.trim()")


def test_a_lead_reads_the_weekly_trends_and_filters_by_resolver_and_organisation(browser, live_server, store,  # noqa: F811
                                                                                 trended, output_dir):  # noqa: F811
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    key = store.create_key("lead")
    for size, (width, height, mobile) in SIZES.items():
        viewport(browser, width, height, mobile=mobile)
        sign_in(browser, live_server, key, urlencode(four_weeks()))
        assert value_of(browser, "responses") == "5"
        agents = sparklines(browser, "agents")
        assert len(agents) == 3 and all(s["width"] > 80 and s["height"] > 20 for s in agents), agents
        ola = next(s for s in agents if "0% of 1 answer" in s["label"] and "no answers" in s["label"])
        assert ola["dots"] == 3 and ola["lines"] == 1
        assert ola["fill"] == "none" and ola["stroke"] not in ("none", ""), "the stylesheet did not style the line"
        assert len(sparklines(browser, "teams")) == 2
        layout = sideways(browser)
        assert layout["page"] <= width, f"the page scrolls sideways: {layout}"
        filters = browser.evaluate("(() => { const r = document.getElementById('filters').getBoundingClientRect();"
                                   " return {left: r.left, right: r.right}; })()")
        assert filters["left"] >= 0 and filters["right"] <= width, filters
        assert policy_violations(browser) == []
        page = browser.screenshot(shots / f"trends-index-{size}.png")
        assert png_size(page)[0] == width
        shot_of(browser, "#agents", shots / f"trends-agents-{size}.png")
        shot_of(browser, "#filters", shots / f"trends-filters-{size}.png")

        # The form as a person uses it: a bot resolved it; then also an organisation typed in.
        browser.evaluate("document.querySelector('select[name=resolved_by]').value = 'bot'")
        browser.load("document.querySelector('#filters button[type=submit]').click()")
        assert "resolved_by=bot" in browser.evaluate("location.search")
        assert (value_of(browser, "responses"), value_of(browser, "csat")) == ("1", "0.0%")
        assert "Robo" in browser.evaluate("document.getElementById('agents').innerText")
        assert "Ola" not in browser.evaluate("document.getElementById('agents').innerText")
        assert "resolved_by=bot" in browser.evaluate("document.getElementById('export-csv').href")
        browser.evaluate("document.querySelector('select[name=resolved_by]').value = ''")
        browser.evaluate("document.querySelector('input[name=organisation]').focus()")
        browser.send("Input.insertText", text="acme.no")
        browser.load("document.querySelector('#filters button[type=submit]').click()")
        assert value_of(browser, "responses") == "3"
        assert browser.evaluate("document.querySelector('input[name=organisation]').value") == "acme.no"
        assert sideways(browser)["page"] <= width
        browser.screenshot(shots / f"trends-filtered-{size}.png")

        # A value nobody answered under: the message, and still no sideways scrolling.
        browser.load("navigate", url=f"{live_server}/dashboard?organisation=nowhere.example&resolved_by=robot")
        errors = browser.evaluate("document.getElementById('filter-errors').innerText")
        assert "organisation: No organisation by that name has any answers." in errors
        assert "resolved_by: Choose human or bot (or any)." in errors
        assert sideways(browser)["page"] <= width
        browser.screenshot(shots / f"trends-bad-filter-{size}.png")
        assert policy_violations(browser) == []
