"""`tracker dev` as a newcomer meets it: start, post the printed sample, read the mail, answer, score."""

from __future__ import annotations

import email
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.policy import default as default_policy
from pathlib import Path

import pytest
import redis
import requests

from tests.support import ROOT, wait_until
from tracker.cli.dev import free_port


def _ready(port: int) -> bool:
    # gunicorn binds the port before its worker has loaded the app; early requests may time out.
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok
    except requests.RequestException:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class DevRun:
    """A running `tracker dev`: its process, the lines of its banner, and what it printed after it stopped."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    rest: str = ""

    @property
    def banner(self) -> str:
        return "".join(self.lines)


@contextmanager
def running_dev(tmp_path: Path, env: dict[str, str]) -> Iterator[DevRun]:
    """Start `tracker dev --dir tmp_path/dev`, yield once its banner is printed (its last line, or a traceback),
    and stop it with Ctrl-C as a person would, failing if it does not stop within 30 s or exits non-zero."""
    dev = DevRun(subprocess.Popen([sys.executable, "-m", "tracker", "dev", "--dir", str(tmp_path / "dev")], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True))
    banner_read = threading.Event()

    def read_banner() -> None:
        assert dev.process.stdout is not None
        for line in dev.process.stdout:
            dev.lines.append(line)
            if line.strip() == "tracker score kari@example.no" or "Traceback" in line:  # the banner's last line
                break
        banner_read.set()

    threading.Thread(target=read_banner, daemon=True).start()
    try:
        assert banner_read.wait(90), "no complete banner within 90 s:\n" + dev.banner
        assert "Traceback" not in dev.banner, dev.banner
        yield dev
    finally:
        if dev.process.poll() is None:
            os.killpg(dev.process.pid, signal.SIGINT)
        try:
            dev.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.process.pid, signal.SIGKILL)
            dev.process.wait()
            raise AssertionError("tracker dev did not stop within 30 s of Ctrl-C:\n" + "".join(dev.lines[-30:])
                                 ) from None
        finally:
            if dev.process.stdout is not None:
                dev.rest = dev.process.stdout.read()
                dev.process.stdout.close()
    assert dev.process.returncode == 0, "".join(dev.lines[-30:]) + dev.rest


@pytest.mark.e2e
@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")),
                    reason="the sample line needs openssl and curl")
def test_tracker_dev_runs_the_whole_loop_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    # No TRACKER_PUBLIC_URL: the survey mail's links must follow TRACKER_BIND (README: "choose another port").
    env.update(TRACKER_BIND=f"127.0.0.1:{port}", TRACKER_SURVEY_DELAY="1")
    with running_dev(tmp_path, env) as dev:
        banner = dev.banner
        api_key = re.search(r"API key\s+(trk_\S+)", banner).group(1)
        mail_url = re.search(r"Mail\s+(http://\S+)", banner).group(1)
        assert re.search(rf"Dashboard\s+http://127\.0\.0\.1:{port}/dashboard\b", banner), banner
        redis_url = re.search(r"^\s*export TRACKER_REDIS_URL=(redis://\S+)$", banner, re.M).group(1)
        limits = redis.Redis.from_url(redis_url, decode_responses=True).config_get("hash-max-*-value")
        assert min(int(value) for value in limits.values()) == 512, limits  # long comments stay compact
        wait_until(lambda: _ready(port), timeout=60, what="the web process")
        sample = (tmp_path / "dev" / "sample.sh").read_text()
        posted = subprocess.run(["bash", "-c", sample], capture_output=True, text=True, timeout=30)
        assert '"status":"accepted"' in posted.stdout.replace(" ", ""), posted.stdout + posted.stderr
        mails = wait_until(lambda: sorted((tmp_path / "dev" / "mail").glob("*.eml")), timeout=60,
                           what="the survey mail in the catcher")
        listing = requests.get(mail_url, timeout=5)
        assert listing.ok and "Card declined" in listing.text
        message = email.message_from_bytes(mails[0].read_bytes(), policy=default_policy)
        text = message.get_body(("plain",)).get_content()
        link = re.search(r"(http://\S+/s/[a-z2-7-]+)\?rating=5", text).group(1)
        assert link.startswith(f"http://127.0.0.1:{port}/s/"), link
        assert requests.post(link, data={"rating": "5"}, timeout=5).ok
        card = requests.get(f"http://127.0.0.1:{port}/api/v1/customers/kari@example.no",
                            headers={"Authorization": f"Bearer {api_key}"}, timeout=5).json()
        assert card["score"] == 100.0 and card["responses"] == 1
        # Another terminal with only the exported line from the banner reads the same card.
        score = subprocess.run([sys.executable, "-m", "tracker", "score", "kari@example.no"], cwd=ROOT,
                               env={**env, "TRACKER_REDIS_URL": redis_url}, capture_output=True, text=True,
                               timeout=60)
        assert score.returncode == 0 and "kari@example.no" in score.stdout, score.stdout + score.stderr
    assert "celery" not in dev.rest.lower(), "the processes' logs belong in their log files, not the terminal"
    web_log = (tmp_path / "dev" / "logs" / "web.log").read_text()
    access = [line for line in web_log.splitlines() if '"GET /api/v1/customers/' in line]
    assert access and all("kari@example.no" not in line and "<email>" in line for line in access), access
    wait_until(lambda: not _port_open(port), timeout=5, what="the web process to go with tracker dev")


def test_a_busy_port_gives_one_line_naming_tracker_bind_and_no_banner(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    with socket.socket() as holder:  # another process already serves on the port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env["TRACKER_BIND"] = f"127.0.0.1:{port}"
        dev = subprocess.run([sys.executable, "-m", "tracker", "dev", "--dir", str(tmp_path / "dev")], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert dev.returncode != 0, dev.stdout + dev.stderr
    assert "is running" not in dev.stdout and "API key" not in dev.stdout, dev.stdout
    (line,) = dev.stderr.strip().splitlines()
    assert "TRACKER_BIND" in line and f"127.0.0.1:{port}" in line, line
    assert not (tmp_path / "dev" / "logs" / "web.log").exists(), "nothing is started on a busy port"
