"""The dashboard's drill-down in a real headless Chromium over real HTTP: from the at-risk table to the customer
page, the header's search, on a laptop (1366x900) and a phone (390x844), with screenshots in the test output."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_dashboard_browser import browser, png_size, policy_violations, viewport  # noqa: F401 - fixture
from tests.test_dashboard_drill import drilled  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser
SIZES = {"laptop": (1366, 900, False), "phone": (390, 844, True)}


def sideways(tools: Any) -> dict[str, Any]:
    """How wide the page and its tables are laid out (a phone must not scroll the page sideways)."""
    return tools.evaluate("""(() => ({
        page: document.documentElement.scrollWidth,
        tables: [...document.querySelectorAll('.table-wrap')].map(w => w.clientWidth)}))()""")


def test_a_lead_drills_down_from_at_risk_to_a_customer_and_searches(browser, live_server, store,  # noqa: F811
                                                                     drilled, output_dir):  # noqa: F811
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    key = store.create_key("lead")
    for size, (width, height, mobile) in SIZES.items():
        viewport(browser, width, height, mobile=mobile)
        browser.load("navigate", url=f"{live_server}/dashboard")
        if browser.evaluate("location.pathname") == "/dashboard/login":
            browser.evaluate("document.getElementById('key').focus()")
            browser.send("Input.insertText", text=key)
            browser.load("document.querySelector('#login-form button[type=submit]').click()")
        assert browser.evaluate("location.pathname") == "/dashboard"
        assert sideways(browser)["page"] <= width, sideways(browser)
        assert "It took too long" in browser.evaluate("document.getElementById('reasons').innerText")
        assert "2599.50" in browser.evaluate("document.getElementById('card-revenue').innerText")
        png = browser.screenshot(shots / f"drill-index-{size}.png")
        assert png_size(png)[0] == width

        # The most valuable customer at risk is Bjørn: his row opens his page.
        browser.load("document.querySelector('#at-risk a.name').click()")
        assert browser.evaluate("location.pathname") == "/dashboard/customers/bjorn@example.no"
        answers = browser.evaluate("document.getElementById('customer-answers').innerText")
        assert "Waited a week" in answers and "It took too long" in answers
        assert "2499.00" in browser.evaluate("document.getElementById('customer-orders').innerText")
        assert sideways(browser)["page"] <= width, sideways(browser)
        browser.screenshot(shots / f"drill-customer-{size}.png")

        # The header's search: a name's start lists the customer, whose link opens their page.
        browser.evaluate("document.getElementById('search-q').focus()")
        browser.send("Input.insertText", text="Berit")
        browser.load("document.querySelector('form.search button').click()")
        assert browser.evaluate("location.pathname") == "/dashboard/search"
        assert "berit@example.no" in browser.evaluate("document.getElementById('search-results').innerText")
        assert sideways(browser)["page"] <= width, sideways(browser)
        browser.screenshot(shots / f"drill-search-{size}.png")
        browser.load("document.querySelector('#search-results a.name').click()")
        assert browser.evaluate("location.pathname") == "/dashboard/customers/berit@example.no"
        assert policy_violations(browser) == []
