"""`tracker dev` with a --dir it cannot use or an IPv6 TRACKER_BIND: one line and nothing started, or it works."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import ROOT, wait_until
from tests.test_dev import running_dev
from tracker.cli.dev import (
    DevError,
    _curl_url,
    _listening,
    free_port,
    port_in_use,
    prepare_dir,
    public_url_of,
    sample_command,
    split_bind,
)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")


def _ready(port: int) -> bool:
    # gunicorn binds the port before its worker has loaded the app; early requests may time out.
    try:
        return requests.get(f"http://[::1]:{port}/readyz", timeout=5).ok
    except requests.RequestException:
        return False


def _dev_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["TRACKER_BIND"] = f"127.0.0.1:{port}"
    return env


def _tracker_dev(directory: Path | str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Each of these must stop before starting anything, so a short timeout is a failure, not a wait.
    return subprocess.run([sys.executable, "-m", "tracker", "dev", "--dir", str(directory)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


# --dir ------------------------------------------------------------------------------------------------------------

def _a_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile", "is not a folder"


def _under_a_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile" / "sub", f"{tmp_path / 'afile'} is not a folder"


def _secret_a_folder(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "dev" / "secret").mkdir(parents=True)
    return tmp_path / "dev", "secret is not a file"


def _secret_a_pipe(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "dev").mkdir()
    os.mkfifo(tmp_path / "dev" / "secret")  # reading it would hang
    return tmp_path / "dev", "secret is not a file"


def _log_a_pipe(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "dev" / "logs").mkdir(parents=True)
    os.mkfifo(tmp_path / "dev" / "logs" / "web.log")  # opening it to append would hang
    return tmp_path / "dev", "logs/web.log is not a file"


def _redis_a_file(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "redis").write_text("x")
    return tmp_path / "dev", "redis is not a folder"


def _a_symlink_loop(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return tmp_path / "loop" / "dev", ""


BAD_DIRS = {"a file": _a_file, "under a file": _under_a_file, "secret a folder": _secret_a_folder,
            "secret a pipe": _secret_a_pipe, "log a pipe": _log_a_pipe, "redis a file": _redis_a_file,
            "a symlink loop": _a_symlink_loop}


@pytest.mark.parametrize("name", list(BAD_DIRS))
def test_prepare_dir_names_what_is_wrong_with_the_dir_in_one_line(tmp_path: Path, name: str):
    directory, fragment = BAD_DIRS[name](tmp_path)
    with pytest.raises(DevError) as raised:
        prepare_dir(str(directory))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"--dir {directory}: "), message
    assert fragment in message, message


def test_prepare_dir_creates_a_new_dir_and_accepts_what_tracker_dev_left_there(tmp_path: Path):
    root = prepare_dir(str(tmp_path / "a" / "b"))
    assert root == (tmp_path / "a" / "b").resolve() and root.is_dir()
    for folder in ("redis", "mail", "logs"):
        (root / folder).mkdir()
    for file in ("secret", "standard-key", "zendesk-key", "sample.sh", "logs/web.log"):
        (root / file).write_text("x")
    assert prepare_dir(str(tmp_path / "a" / "b")) == root


@pytest.mark.parametrize("name", ["a file", "under a file", "secret a folder", "log a pipe"])
def test_tracker_dev_with_a_bad_dir_says_so_in_one_line_and_starts_nothing(tmp_path: Path, name: str):
    directory, fragment = BAD_DIRS[name](tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    dev = _tracker_dev(directory, _dev_env(free_port()))
    assert dev.returncode != 0, dev.stdout + dev.stderr
    assert "Traceback" not in dev.stderr and dev.stdout == "", dev.stdout + dev.stderr
    (line,) = dev.stderr.strip().splitlines()
    assert line.startswith(f"tracker dev: --dir {directory}: ") and fragment in line, line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing is created, so nothing was started"


# TRACKER_BIND -----------------------------------------------------------------------------------------------------

def test_split_bind_reads_ipv4_names_and_bracketed_ipv6():
    assert split_bind("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert split_bind("localhost:8001") == ("localhost", 8001)
    assert split_bind("[::1]:8932") == ("::1", 8932)
    assert split_bind("[::]:80") == ("::", 80)


@pytest.mark.parametrize("bind, fragment", [
    ("::1:8000", "in brackets"), ("[abc]:8000", "not an IPv6 address"), ("abc", "host:port"),
    (":8000", "host:port"), ("[::1]:0", "host:port"), ("127.0.0.1:99999", "host:port"), ("[::1]", "host:port"),
])
def test_a_bind_gunicorn_could_not_listen_on_is_one_line_naming_tracker_bind(bind: str, fragment: str):
    with pytest.raises(DevError) as raised:
        split_bind(bind)
    assert "TRACKER_BIND" in str(raised.value) and fragment in str(raised.value) and bind in str(raised.value)


def test_public_urls_bracket_ipv6_and_send_any_address_binds_to_the_loopback():
    assert public_url_of("127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert public_url_of("0.0.0.0:8000") == "http://127.0.0.1:8000"
    assert public_url_of("localhost:8000") == "http://localhost:8000"
    assert public_url_of("[::1]:8932") == "http://[::1]:8932"
    assert public_url_of("[::]:8932") == "http://[::1]:8932"
    assert public_url_of("[0:0::0]:8932") == "http://[::1]:8932"
    assert public_url_of("[fe80::1]:8932") == "http://[fe80::1]:8932"


def test_the_sample_line_quotes_an_ipv6_url_for_the_shell_and_curl():
    assert _curl_url("http://127.0.0.1:8000/webhooks/standard") == "http://127.0.0.1:8000/webhooks/standard"
    assert _curl_url("http://[::1]:8932/webhooks/standard") == "--globoff 'http://[::1]:8932/webhooks/standard'"
    assert "curl -sS -X POST --globoff 'http://[::1]:8932/webhooks/standard' -H" in \
        sample_command("http://[::1]:8932", "dev-key")
    assert "curl -sS -X POST http://127.0.0.1:8000/webhooks/standard -H" in \
        sample_command("http://127.0.0.1:8000", "dev-key")


def test_an_address_this_machine_does_not_have_is_refused_before_anything_starts(tmp_path: Path):
    with pytest.raises(DevError, match=r"^TRACKER_BIND: cannot listen on 192\.0\.2\.1:8000: "):
        port_in_use("192.0.2.1:8000")  # TEST-NET-1: never a local address
    env = _dev_env(8000)
    env["TRACKER_BIND"] = "::1:8000"
    dev = _tracker_dev(tmp_path / "dev", env)
    assert dev.returncode != 0 and dev.stdout == "", dev.stdout + dev.stderr
    assert dev.stderr.strip() == ("tracker dev: TRACKER_BIND: an IPv6 address goes in brackets, like [::1]:8000, "
                                  "got '::1:8000'")
    assert not (tmp_path / "dev").exists()


@needs_ipv6
def test_an_ipv6_bind_is_probed_over_ipv6():
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_in_use(f"[::1]:{port}")
        assert _listening("::1", port)  # what run_dev waits for before printing the URLs
        assert _listening("::", port)  # an any-address bind is reached on the loopback
    assert not _listening("::1", port)


@pytest.mark.e2e
@needs_ipv6
@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")),
                    reason="the sample line needs openssl and curl")
def test_tracker_dev_on_an_ipv6_bind_prints_bracketed_urls_and_its_sample_posts(tmp_path: Path):
    port = free_port()
    env = _dev_env(port)
    env["TRACKER_BIND"] = f"[::1]:{port}"
    with running_dev(tmp_path, env) as dev:
        banner = dev.banner
        assert re.search(rf"App\s+http://\[::1\]:{port}\s", banner), banner
        assert re.search(rf"Dashboard\s+http://\[::1\]:{port}/dashboard\b", banner), banner
        sample = (tmp_path / "dev" / "sample.sh").read_text()
        assert f"'http://[::1]:{port}/webhooks/standard'" in sample, sample
        wait_until(lambda: _ready(port), timeout=60, what="the web process on [::1]")
        posted = subprocess.run(["bash", "-c", sample], capture_output=True, text=True, timeout=30)
        assert '"status":"accepted"' in posted.stdout.replace(" ", ""), posted.stdout + posted.stderr
