"""A branded custom survey in a real headless Chromium over real HTTP: from the mail's rating link through the
question and the extra questions to the thanks, on a phone (390x844, Norwegian) and a laptop (1366x900, English),
with screenshots in test-output/screenshots."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import session_env
from tests.support import drain, iso, send_all, solved_event, survey_link
from tests.test_dashboard_browser import browser, policy_violations, viewport  # noqa: F401 - browser is a fixture
from tracker.store import Store

pytestmark = pytest.mark.browser
SUBMIT = "document.querySelector('form.extra-questions button[type=submit]:not([name=skip])').click()"
SURVEYS = """
[[surveys]]
brand = "acme"
colour = "#0b6e4f"
logo = "acme-wide.png"

[[surveys.extra_questions]]
id = "first_contact"
type = "choice"
question = "Was this your first contact with us about this?"
choices = ["Yes, the first time", "No, I had been in touch before"]

[[surveys.extra_questions]]
id = "improve"
type = "text"
question = "What could we do better?"

[[surveys]]
brand = "acme"
locale = "nb"
question = "Hvordan var praten med Acme?"
labels = ["Elendig", "Dårlig", "Greit", "Bra", "Supert"]
thanks = "Tusen takk fra oss i Acme!"

[[surveys.extra_questions]]
id = "first_contact"
type = "choice"
question = "Var dette første gang du kontaktet oss om dette?"
choices = ["Ja, første gang", "Nei, jeg hadde vært i kontakt før"]

[[surveys.extra_questions]]
id = "improve"
type = "text"
question = "Hva kunne vi gjort bedre?"
"""
# Who answers on which screen: (address, locale, name, width, height, mobile, the extra answer chosen).
VISITS = {
    "phone": ("kari@example.no", "nb", "Kari", 390, 844, True, "Nei, jeg hadde vært i kontakt før"),
    "laptop": ("mary@example.com", "en", "Mary", 1366, 900, False, "Yes, the first time"),
}


def wide_png(width: int, height: int) -> bytes:
    """Draw a logo far wider than the page leaves room for: a green band with a light stripe."""
    rows = b"".join(b"\x00" + (b"\x0b\x6e\x4f" * width if y % 40 < 30 else b"\xee\xf6\xf2" * width)
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any, tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "acme-wide.png").write_bytes(wide_png(1200, 240))
    (folder / "surveys.toml").write_text(SURVEYS)
    return session_env(redis_url, broker_url, smtp, TRACKER_SURVEYS_FILE=str(folder / "surveys.toml"))


def layout(tools: Any) -> dict[str, Any]:
    """What a reader's screen holds: the page's width, the logo's box and the main colour of the submit button."""
    return tools.evaluate("""(() => {
        const logo = document.querySelector('.brand-logo'), button = document.querySelector('button[type=submit]');
        const box = logo ? logo.getBoundingClientRect() : null;
        return {page: document.documentElement.scrollWidth, main: document.querySelector('main').clientWidth,
                logo: box && {width: box.width, height: box.height, loaded: logo.complete && logo.naturalWidth > 0},
                button: button && getComputedStyle(button).backgroundColor,
                buttonText: button && getComputedStyle(button).color};
    })()""")


def test_a_customer_answers_a_branded_survey_with_an_extra_question_on_a_phone_and_a_laptop(
        browser, live_server, post_event, store: Store, settings, smtp, output_dir):  # noqa: F811
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for n, (email, locale, name, *_rest) in enumerate(VISITS.values()):
        event = solved_event(ticket=f"T-{n}", email_address=email, at=iso(60 - n), subject="Card declined")
        event["customer"].update(locale=locale, name=name, email=email, id=f"c-{n}")
        assert post_event("standard", event).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent", "sent"]
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.wait_for(2)}
    key = store.create_key("lead")

    for size, (email, locale, _name, width, height, mobile, choice) in VISITS.items():
        viewport(browser, width, height, mobile=mobile)
        link = survey_link(mails[email], 4)
        html_links = [href for href in mails[email].get_body(("html",)).get_content().split('"')
                      if "/s/" in href and "rating=4" in href]
        assert html_links and urlsplit(html_links[0].replace("&amp;", "&")).path == link

        # The mail's rating link: the branded question with that rating chosen.
        browser.load("navigate", url=f"{live_server}{link}?rating=4")
        assert browser.evaluate("document.documentElement.lang") == locale
        if locale == "nb":
            assert "Hvordan var praten med Acme?" in browser.evaluate("document.querySelector('h1').innerText")
        assert browser.evaluate("document.querySelector('input[name=rating]:checked').value") == "4"
        shown = layout(browser)
        assert shown["page"] <= width and shown["logo"]["loaded"], shown
        assert shown["logo"]["width"] <= shown["main"] and shown["logo"]["height"] <= 64, shown
        assert shown["button"] == "rgb(11, 110, 79)", shown  # the brand's colour
        browser.screenshot(shots / f"custom-question-{size}.png")

        # Submit: the extra question, its choices as radio buttons.
        browser.load("document.querySelector('form button[type=submit]').click()")
        assert browser.evaluate("location.pathname") == link
        radios = browser.evaluate(
            "[...document.querySelectorAll('input[name=\"extra-first_contact\"]')].map(i => i.value)")
        assert choice in radios and len(radios) == 2
        assert layout(browser)["page"] <= width, layout(browser)
        browser.screenshot(shots / f"custom-extra-{size}.png")

        # A choice the page did not offer (a tampered form) gets the page again with the error, the text kept.
        browser.evaluate("document.getElementById('extra-improve').focus()")
        browser.send("Input.insertText", text="Svar raskere på chat" if locale == "nb" else "Answer chats faster")
        browser.evaluate("(() => { const radio = document.querySelector('input[name=\"extra-first_contact\"]');"
                         " radio.value = 'maybe'; radio.click(); })()")
        browser.load(SUBMIT)
        assert "extra-first_contact-error" in browser.evaluate("document.querySelector('main').innerHTML")
        assert browser.evaluate("document.getElementById('extra-improve').value").startswith(("Svar", "Answer"))
        assert layout(browser)["page"] <= width, layout(browser)
        browser.screenshot(shots / f"custom-extra-error-{size}.png")

        browser.evaluate(f"[...document.querySelectorAll('input[name=\"extra-first_contact\"]')]"
                         f".find(i => i.value === {choice!r}).click()")
        browser.load(SUBMIT)
        assert browser.evaluate("location.pathname") == f"{link}/extra"
        thanks = browser.evaluate("document.querySelector('main').innerText")
        assert ("Tusen takk fra oss i Acme!" if locale == "nb" else "Thank") in thanks, thanks
        assert layout(browser)["page"] <= width, layout(browser)
        browser.screenshot(shots / f"custom-thanks-{size}.png")
        assert policy_violations(browser) == []

        # Stored with the answer, and the API returns it.
        sid = link.split("/")[2].split("-")[0]
        answer = store.response(sid)
        assert answer.rating == 4 and answer.extra["first_contact"] == choice and answer.extra["improve"]
        body = requests.get(f"{live_server}/api/v1/customers/{email}/responses",
                            headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
        assert body["responses"][0]["extra"] == answer.extra

    # The lead sees the extra answers on the customer's dashboard page, under their questions.
    viewport(browser, 1366, 900, mobile=False)
    browser.load("navigate", url=f"{live_server}/dashboard/login")
    browser.evaluate("document.getElementById('key').focus()")
    browser.send("Input.insertText", text=key)
    browser.load("document.querySelector('#login-form button[type=submit]').click()")
    for size, (email, _locale, _name, width, height, mobile, choice) in VISITS.items():
        viewport(browser, width, height, mobile=mobile)
        browser.load("navigate", url=f"{live_server}/dashboard/customers/{email}")
        answers = browser.evaluate("document.getElementById('customer-answers').innerText")
        assert f"Was this your first contact with us about this?\n{choice}" in answers, answers
        assert browser.evaluate("document.documentElement.scrollWidth") <= width
        browser.screenshot(shots / f"custom-dashboard-customer-{size}.png")
        if mobile:  # the answers table scrolls sideways on a phone: the extra answers, scrolled to
            browser.evaluate("document.querySelector('#customer-answers .table-wrap').scrollLeft = 10000")
            browser.screenshot(shots / f"custom-dashboard-customer-{size}-scrolled.png")
    assert policy_violations(browser) == []
