"""The dashboard in a real headless Chromium over real HTTP: sign in, read the chart, save screenshots."""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import chromium_binary, wait_until

pytestmark = pytest.mark.browser
CHROMIUM = chromium_binary()
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, websocket_url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, name: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    return self.events.pop(i)
            self.events.append(json.loads(self.socket.recv()))
        raise AssertionError(f"no {name} within {timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, action: str, **params: Any) -> None:
        """Run a navigation (Page.navigate or a script that submits a form) and wait for the new page."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        if action == "navigate":
            self.send("Page.navigate", **params)
        else:
            self.evaluate(action)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, path: Path) -> bytes:
        """Save a full-page PNG of what the viewport shows at its width."""
        metrics = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"], "scale": 1})
        import base64

        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium) to drive the dashboard")
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30,
                   what="Chromium to open its DevTools port")
        port = int(port_file.read_text().split()[0])
        pages = wait_until(lambda: [t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                                    if t["type"] == "page"], what="a page target")
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        tools.send("Page.enable")
        tools.send("Runtime.enable")
        tools.send("Log.enable")
        yield tools
        tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def viewport(tools: DevTools, width: int, height: int, mobile: bool) -> None:
    tools.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    tools.send("Emulation.setScrollbarsHidden", hidden=True)  # the screenshot is then as wide as the screen


def visible_chart(tools: DevTools) -> dict[str, Any]:
    """Describe the per-day chart the reader sees (one drawing per screen size; CSS shows one)."""
    return tools.evaluate("""(() => {
        const shown = [...document.querySelectorAll('svg.daily')].filter(svg => svg.getBoundingClientRect().width > 0);
        if (shown.length !== 1) return {shown: shown.length};
        const svg = shown[0], box = svg.getBoundingClientRect();
        return {variant: svg.classList.contains('wide') ? 'wide' : 'narrow', width: box.width, height: box.height,
                points: svg.querySelectorAll('circle.point').length, bars: svg.querySelectorAll('.bars rect').length,
                scripted: svg.getAttribute('data-ready')};
    })()""")


def policy_violations(tools: DevTools) -> list[str]:
    texts = [json.dumps(e.get("params", {})) for e in tools.events
             if e.get("method") in ("Log.entryAdded", "Runtime.consoleAPICalled", "Runtime.exceptionThrown")]
    return [t for t in texts if "Content Security Policy" in t or "Refused to" in t or "Uncaught" in t]


def test_a_lead_signs_in_and_sees_the_chart_on_a_laptop_and_a_phone(browser, live_server, store, scored,
                                                                      output_dir):
    key = store.create_key("lead")
    viewport(browser, 1280, 900, mobile=False)
    browser.load("navigate", url=f"{live_server}/dashboard")
    assert browser.evaluate("location.pathname") == "/dashboard/login"
    browser.evaluate("document.getElementById('key').focus()")
    browser.send("Input.insertText", text=key)
    browser.load("document.querySelector('#login-form button[type=submit]').click()")
    assert browser.evaluate("location.pathname") == "/dashboard", browser.evaluate("document.body.innerText")
    assert browser.evaluate("document.cookie") == "", "the session cookie must be HttpOnly"

    chart = visible_chart(browser)
    assert chart["variant"] == "wide" and chart["points"] >= 2 and chart["bars"] >= 1, chart
    assert chart["width"] > 1000 and 250 < chart["height"] < 450, chart
    assert chart["scripted"] == "1", "dashboard.js did not run (blocked by the policy?)"
    assert browser.evaluate("document.querySelector('#card-responses .value').textContent.trim()") == "2"
    assert "bjorn@example.no" in browser.evaluate("document.getElementById('at-risk').innerText")
    assert "<script>alert(1)</script>" in browser.evaluate("document.getElementById('comments').innerText")
    assert policy_violations(browser) == []

    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    laptop = browser.screenshot(shots / "dashboard-laptop.png")
    assert png_size(laptop)[0] == 1280 and len(laptop) > 20_000

    viewport(browser, 390, 844, mobile=True)
    browser.load("navigate", url=f"{live_server}/dashboard")
    layout = browser.evaluate("""(() => ({
        page: document.documentElement.scrollWidth,
        tables: [...document.querySelectorAll('.table-wrap')].map(w => w.clientWidth),
        cards: [...document.querySelectorAll('.card')].map(c => c.getBoundingClientRect().width)}))()""")
    assert layout["page"] <= 390, f"the page scrolls sideways on a phone: {layout}"
    assert all(width <= 390 for width in layout["tables"]), layout
    assert all(width < 390 / 2 for width in layout["cards"]), f"headline cards should sit two abreast: {layout}"
    chart = visible_chart(browser)
    assert chart["variant"] == "narrow" and chart["points"] >= 2, chart
    assert 300 < chart["width"] <= 390 and chart["height"] > 180, chart
    phone = browser.screenshot(shots / "dashboard-phone.png")
    assert png_size(phone)[0] == 390 and len(phone) > 10_000
    assert policy_violations(browser) == []

    browser.load("document.querySelector('form.logout button').click()")
    assert browser.evaluate("location.pathname") == "/dashboard/login"
    browser.load("navigate", url=f"{live_server}/dashboard")
    assert browser.evaluate("location.pathname") == "/dashboard/login"
