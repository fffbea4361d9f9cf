"""Headless Chromium draws the received survey mail and the live answer pages; the PNGs are kept to look at."""

from __future__ import annotations

import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import Page, chromium_binary, links, survey_by_mail

CHROMIUM = chromium_binary()
# (scale, customer locale, language, the rating clicked in the mail: an unsatisfied one, to reach the follow-up)
CASES = [("csat5", "en-US", "en", 2), ("nps", "nb-NO", "nb", 6), ("thumbs", "de-DE", "de", 0)]
SIZES = {"desktop": (1200, 1000), "phone": (390, 1000)}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with a profile of its own."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def screenshot(url: str, path: Path, size: tuple[int, int], profile: Path) -> Path:
    """Save a PNG of url as a browser window of that size draws it."""
    path.unlink(missing_ok=True)
    result = chromium(profile, f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url)
    assert path.exists(), f"no screenshot of {url}: {result.stderr[-2000:]}"
    return path


def assert_real_png(path: Path, size: tuple[int, int]) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    assert (width, height) == size, (path.name, width, height)
    assert len(data) > 8_000, f"{path.name} is only {len(data)} bytes: a blank page?"


@pytest.fixture
def shots(output_dir: Path) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    folder = output_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize(("scale", "locale", "lang", "rating"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_the_mail_and_the_pages_render_in_chromium_at_desktop_and_phone_width(
        post_event: Any, store: Any, env: dict[str, str], smtp: Any, live_server: str, shots: Path, tmp_path: Path,
        scale: str, locale: str, lang: str, rating: int) -> None:
    mail = survey_by_mail(post_event, store, env, smtp, scale, locale, name="Kari Nordmann")
    html = mail.get_body(("html",)).get_content()
    mail_file = tmp_path / f"mail-{scale}-{lang}.html"
    mail_file.write_text(html, encoding="utf-8")
    link = links(html)[rating]
    page_url = f"{live_server}{link}"
    path = link.split("?")[0]

    # The DOM Chromium built from the live page has the clicked rating checked.
    dom = chromium(tmp_path / "profile-dom", "--dump-dom", page_url)
    drawn = Page(dom.stdout)
    assert drawn.lang == lang, dom.stderr[-2000:]
    assert drawn.checked("rating") == [str(rating)]

    # An unsatisfied answer leads to the follow-up step, which can be opened again by its own address.
    answered = requests.post(f"{live_server}{path}", data={"rating": str(rating), "comment": "Took a week"},
                             timeout=10)
    assert answered.status_code == 200 and 'name="reason"' in answered.text

    urls = {"mail": mail_file.as_uri(), "page": page_url, "followup": f"{live_server}{path}/reason"}
    jobs = []
    for label, size in SIZES.items():
        for kind, url in urls.items():
            png = shots / f"{kind}-{scale}-{lang}-{label}.png"
            jobs.append((url, png, size, tmp_path / f"profile-{kind}-{label}"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        made = list(pool.map(lambda job: (screenshot(*job), job[2]), jobs))
    for png, size in made:
        assert_real_png(png, size)
