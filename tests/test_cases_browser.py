"""The recovery cases' dashboard pages in a real headless Chromium over real HTTP: list, open a case, add a note."""

from __future__ import annotations

import pytest

from tests.test_cases import SID, answer_data, deliver, now_ms
from tests.test_dashboard_browser import browser, policy_violations, viewport  # noqa: F401 - browser is a fixture
from tracker.store import keys

pytestmark = pytest.mark.browser
HOUR_MS = 3_600_000


def test_a_lead_opens_an_overdue_case_from_the_list_and_adds_a_note(browser, live_server, store, settings,  # noqa: F811
                                                                     output_dir):
    deliver(store, settings, answer_data(SID, "kari@example.no", 1, False, at_ms=now_ms() - 60 * HOUR_MS,
                                         comment="Nobody called back"))
    case_id = keys.case_id(SID, "kari@example.no")
    key = store.create_key("lead")
    viewport(browser, 1280, 900, mobile=False)
    browser.load("navigate", url=f"{live_server}/dashboard/login")
    browser.evaluate("document.getElementById('key').focus()")
    browser.send("Input.insertText", text=key)
    browser.load("document.querySelector('#login-form button[type=submit]').click()")
    browser.load("document.getElementById('nav-cases').click()")
    assert browser.evaluate("location.pathname") == "/dashboard/cases"
    row = browser.evaluate(f"document.getElementById('case-{case_id}').innerText")
    assert "overdue" in row and "Kari" in row, row
    browser.load(f"document.querySelector('#case-{case_id} a').click()")
    assert browser.evaluate("location.pathname") == f"/dashboard/cases/{case_id}"
    assert "Nobody called back" in browser.evaluate("document.getElementById('case-comment').innerText")
    browser.evaluate("document.getElementById('note').focus()")
    browser.send("Input.insertText", text="Called her, refund on its way")
    browser.evaluate("document.getElementById('status').value = 'contacted'")
    browser.load("document.querySelector('#case-form button[type=submit]').click()")
    assert browser.evaluate("location.pathname") == f"/dashboard/cases/{case_id}"
    assert "Called her, refund on its way" in browser.evaluate("document.getElementById('notes').innerText")
    assert "contacted" in browser.evaluate("document.getElementById('case-status').innerText")
    assert store.case(case_id).status == "contacted"
    assert policy_violations(browser) == []
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser.screenshot(shots / "dashboard-case.png")
