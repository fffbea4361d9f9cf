"""`tracker check` and `tracker --version`: validate the settings and reach what they name."""

from __future__ import annotations

import glob
import ipaddress
import smtplib
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from tracker.broker_url import broker_connection, broker_tls, with_sentinel_sockets
from tracker.cli.base import OutputFailed, broker_refusal, layout_problem, refuse_unusable_broker
from tracker.config import ConfigError, EventUrl, Settings, hide_secrets, load_settings, redact_url
from tracker.sentinels import sentinel_findings

if TYPE_CHECKING:
    from celery import Celery

    from tracker.store.base import MemoryLimit

# Each probe gives up after this many seconds, so a check never hangs on a silent firewall (or a server that accepts
# and never answers): every socket it opens times out so, and the probe as a whole is given no longer (within).
TIMEOUT = 5.0
# `tracker check` notes a Redis using this share of its maxmemory.
NEAR_FULL = 0.9
# Beat ticks at least every 5 s (the drain schedule); a heartbeat older than this means beat is stuck.
BEAT_STALE_AFTER = 120.0


T = TypeVar("T")


def within(seconds: float, probe: Callable[[], T]) -> T:
    """Return what probe returns, or raise what it raises; past the deadline raise TimeoutError, leaving the probe
    to its own socket timeouts in a daemon thread (which holds up no exit)."""
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, probe()))
        except BaseException as exc:  # handed to the caller as it was raised
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="tracker-check-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise TimeoutError(f"no answer within {seconds:g} s")
    done, value = outcome[0]
    if not done:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]  # what probe returned


def tracker_version() -> str:
    """Return the installed package's version."""
    try:
        return metadata.version("satisfaction-tracker")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def probe_redis(settings: Settings) -> str:
    """Ping the store and return what answered, or raise with the reason."""
    from tracker.store import Store

    store = Store.from_url(settings.redis_url)
    cluster = store.cluster_state()
    if cluster is not None and not cluster.ok:
        raise RuntimeError(f"a Redis Cluster that cannot serve every slot: {cluster.reason()}")
    if problem := layout_problem(store.noted_layout or store.note_layout()):
        raise RuntimeError(problem)
    version = store.server_version()
    if cluster is None and (behind := store.sentinel_master()) is not None:
        return f"{redact_url(settings.redis_url)} answers (Redis {version}): the master {behind[0]!r} at {behind[1]}"
    if cluster is None:
        return f"{redact_url(settings.redis_url)} answers (Redis {version})"
    return f"{redact_url(settings.redis_url)} answers (Redis {version}, a Redis Cluster: {cluster.summary()})"


def memory_limits(settings: Settings) -> list[MemoryLimit] | None:
    """Read each master's memory once, for eviction_problem and memory_note; None when the ACL user may not run INFO."""
    import redis

    from tracker.store import Store

    try:
        return Store.from_url(settings.redis_url).memory_limits(refused=True)
    except redis.exceptions.NoPermissionError:
        return None


def permission_note(settings: Settings) -> str | None:
    """Say what `tracker check` and /metrics cannot tell when the ACL user of TRACKER_REDIS_URL may not run INFO or
    CONFIG GET (Redis 7's @dangerous commands, which a cautious operator leaves out): the tracker itself needs
    neither. None when it may run both."""
    from tracker.store import Store

    refused = Store.from_url(settings.redis_url).refused_reads()
    if not refused:
        return None
    cannot = ["whether Redis deletes keys once full (maxmemory-policy)", "whether it keeps its data on disk"]
    if "CONFIG GET" in refused:
        cannot.append("whether hashes and sorted sets stay compact")
    gauges = ", and /metrics leaves out the Redis memory gauges" if "INFO" in refused else ""
    grant = " ".join(f"+{command.lower().replace(' ', '|')}" for command in refused)
    return (f"the Redis user of TRACKER_REDIS_URL may not run {' or '.join(refused)} (the tracker itself needs "
            f"neither): `tracker check` cannot tell {', '.join(cannot[:-1])} or {cannot[-1]}{gauges}; check these "
            f"yourself, or allow them to the user (ACL SETUSER <user> {grant})")


def eviction_problem(limits: list[MemoryLimit]) -> str | None:
    """Say when the store's Redis deletes keys once it is full (a maxmemory and a policy other than noeviction):
    the store's keys are its data, so customers, answers or dedupe marks would vanish. None when it does not."""
    evicting = [limit for limit in limits if limit.evicts]
    if not evicting:
        return None
    where = ", ".join(f"{limit.node or 'Redis'}: maxmemory {limit.maximum} bytes, maxmemory-policy {limit.policy}"
                      for limit in evicting)
    return (f"TRACKER_REDIS_URL: Redis deletes keys once it is full ({where}); the tracker's keys are its data "
            f"(customers, answers, the marks that keep a webhook from counting twice). Set maxmemory-policy "
            f"noeviction: a full Redis then refuses writes, webhooks are answered 503 and retried, nothing is lost")


def memory_note(limits: list[MemoryLimit]) -> str | None:
    """Say when the store's Redis is near its maxmemory (90%): once there, it refuses writes (webhooks answered 503
    until it has room). None when it is not, or has no maxmemory."""
    near = [limit for limit in limits if limit.maximum > 0 and limit.used >= NEAR_FULL * limit.maximum]
    if not near:
        return None
    return "Redis is near its maxmemory (" + ", ".join(
        f"{limit.node or 'Redis'}: {limit.used} of {limit.maximum} bytes" for limit in near) + \
        "): once full it refuses writes, and webhooks are answered 503 until it has room; raise maxmemory"


def persistence_note(settings: Settings) -> str | None:
    """Say when the store's Redis keeps nothing on disk: a restart of it loses every customer, answer and event the
    tracker acknowledged (/readyz then says data_lost). None when it persists, or does not tell (CONFIG refused)."""
    from tracker.store import Store

    volatile = Store.from_url(settings.redis_url).volatile_nodes()
    if not volatile:
        return None
    where = ", ".join(node for node in volatile if node)
    return (f"Redis{' ' + where if where else ''} keeps nothing on disk (appendonly no, no save rule): a restart of "
            f"it loses everything the tracker acknowledged; set appendonly yes (README: Running it for real)")


def compact_hash_note(settings: Settings) -> str | None:
    """Say what to set when the store's Redis turns hashes with a value longer than COMPACT_HASH_VALUE bytes into
    hash tables (Redis's default is 64): surveys with a longer comment or subject then take about three times the
    memory. None when it is set so, or the Redis does not tell (CONFIG refused)."""
    from tracker.store import Store
    from tracker.store.base import COMPACT_HASH_VALUE

    limit = Store.from_url(settings.redis_url).compact_hash_value()
    if limit is None or limit >= COMPACT_HASH_VALUE:
        return None
    return (f"Redis keeps a hash compact only while every value is at most {limit} bytes (hash-max-listpack-value): "
            f"a survey answered with a longer comment, or about a longer subject, takes about three times the "
            f"memory, and closed surveys are not settled; set hash-max-listpack-value to {COMPACT_HASH_VALUE} "
            f"(README: Running it for real)")


def compact_zset_note(settings: Settings) -> str | None:
    """Say what to set when the store's Redis keeps fewer entries in a compact sorted set than a chunk of the time
    indexes holds (Redis's default is 128): every chunk then takes about three times the memory. None when it is
    set so, or the Redis does not tell (CONFIG refused)."""
    from tracker.store import Store
    from tracker.store.time_index import CHUNK

    limit = Store.from_url(settings.redis_url).compact_zset_entries()
    if limit is None or limit >= CHUNK:
        return None
    return (f"Redis keeps a sorted set compact only while it holds at most {limit} entries "
            f"(zset-max-listpack-entries): the chunks of the indexes of answers and sent surveys by time hold up to "
            f"{CHUNK} and take about three times the memory; set zset-max-listpack-entries to 128 (Redis's default) "
            f"or more")


def filing_note(settings: Settings) -> str | None:
    """Say what to set when the filing hashes of settled surveys hold more surveys than Redis keeps in a compact hash
    (hash-max-listpack-entries, 512 by default; at about six million customers): each is then a hash table,
    and a settled survey takes about as much memory as a key of its own. None when they fit, or the Redis does not
    tell (CONFIG refused)."""
    from tracker.store import Store

    store = Store.from_url(settings.redis_url)
    limit = store.compact_hash_entries()
    fill = store.filing_fill()
    if limit is None or fill <= limit:
        return None
    return (f"the filing hashes of settled surveys hold up to {fill} surveys, more than the {limit} fields Redis "
            f"keeps in a compact hash (hash-max-listpack-entries): a settled survey then takes about as much memory "
            f"as a key of its own; set hash-max-listpack-entries to {max(512, 2 * fill)} (README: Running it for "
            f"real)")


def risk_ranking_note(settings: Settings) -> str | None:
    """Say when the at-risk ranking is not filled for TRACKER_AT_RISK_SCORE (an empty Redis beat has not reached
    yet, or a new threshold): until beat fills it the at-risk lists walk the value ranking, slower. None when it is."""
    from tracker.store import Store

    if Store.from_url(settings.redis_url).risk_ranking_ready(settings.at_risk_score):
        return None
    return (f"the at-risk ranking is not filled for TRACKER_AT_RISK_SCORE={settings.at_risk_score:g} yet: beat fills "
            f"it within 30 s of starting; until then the at-risk lists read the value ranking (the same customers, "
            f"more slowly)")


def comment_index_note(settings: Settings) -> str | None:
    """Say when the commented answers' index is not filled (a Redis with answers from before it that beat has not
    reached yet): until then the dashboard's newest comments look among every answer, slower. None when it is."""
    from tracker.store import Store

    if Store.from_url(settings.redis_url).comment_index_complete():
        return None
    return ("the index of commented answers is not filled yet: beat fills it within 30 s of starting (or `tracker "
            "upgrade-store`); until then the dashboard's newest comments look among every answer (the same comments, "
            "more slowly)")


def public_url_note(settings: Settings) -> str | None:
    """Say when TRACKER_PUBLIC_URL, the base of every link mailed, is one customers cannot open (this machine or a
    private network: the default http://127.0.0.1:8000 left in place) or not https. None when it is a public https
    URL."""
    parts = urlsplit(settings.public_url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or host.endswith(".localhost") or (address is not None and not address.is_global):
        return (f"TRACKER_PUBLIC_URL is {settings.public_url}: every link of a survey mail (rating, page, "
                f"unsubscribe) points there, which customers cannot open from their own machines; set it to the "
                f"https address they reach this tracker at")
    if parts.scheme != "https":
        return (f"TRACKER_PUBLIC_URL is {settings.public_url}: survey links carry their tokens, and the dashboard "
                f"its session, over plain http; serve the tracker over https (README: Behind a reverse proxy)")
    return None


def redis_notes(settings: Settings) -> tuple[list[str], str | None]:
    """The notes on the store's Redis (advice: the exit status stays 0), and the problem of a Redis that deletes
    keys once full (eviction_problem), None when it does not (or cannot be told: permission_note)."""
    limits = memory_limits(settings)
    notes = (permission_note, persistence_note, compact_hash_note, compact_zset_note, filing_note, risk_ranking_note,
             comment_index_note)
    return ([note for note in (memory_note(limits or []), *(advise(settings) for advise in notes)) if note],
            eviction_problem(limits or []))


def probe_broker(settings: Settings) -> str:
    """Open a connection to the Celery broker and return what answered, or raise with the reason."""
    from kombu import Connection

    url, named = broker_connection(settings.broker_url)
    options: dict[str, object] = dict(named)
    if url.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
        # kombu's Redis channel reads without a timeout of its own: a server that accepts and never answers would
        # hold the check for ever.
        options = with_sentinel_sockets({**options, "socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT})
    tls = broker_tls(settings.broker_url)
    with Connection(url, connect_timeout=TIMEOUT, transport_options=options, ssl=tls or False) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT)
        said = (f"{redact_url(settings.broker_url)} accepts connections ({connection.transport.driver_type}"
                f"{_tls_checks(tls)})")
        if url.startswith("sentinel://"):  # which master the Sentinels named: an operator reads it against theirs
            host, port = connection.default_channel.client.connection_pool.get_master_address()
            said += f": the master {named['master_name']!r} at {host}:{port}"
        return said


def _tls_checks(tls: dict[str, object] | None) -> str:
    """Say what an amqps:// or a sentinel:// broker's TLS checks (broker_tls), for the line of a broker that
    answered."""
    if tls is None:
        return ""
    if tls.get("cert_reqs", tls.get("ssl_cert_reqs")) in (ssl.CERT_NONE, "none"):
        return " over TLS, its certificate not checked: ssl_cert_reqs=none"
    if "server_hostname" not in tls and not tls.get("ssl_check_hostname"):
        return " over TLS, its certificate checked but not its host name: ssl_check_hostname=false"
    return " over TLS, its certificate and host name checked"


def probe_smtp(settings: Settings) -> str:
    """Connect to the SMTP server as the sender would (TLS, login), say EHLO and NOOP, and QUIT."""
    from tracker.mail.smtp import parse_smtp_url

    target = parse_smtp_url(settings.smtp_url)
    context = ssl.create_default_context()
    # A fixed EHLO name: without one smtplib asks DNS for this host's FQDN, which stalls in some containers.
    conn = (smtplib.SMTP_SSL(target.host, target.port, "localhost", timeout=TIMEOUT, context=context)
            if target.use_ssl else smtplib.SMTP(target.host, target.port, "localhost", timeout=TIMEOUT))
    with conn:
        conn.ehlo()
        done = ["TLS"] if target.use_ssl else []
        if target.starttls:
            conn.starttls(context=context)
            conn.ehlo()
            done.append("STARTTLS")
        if target.username is not None:
            conn.login(target.username, target.password or "")
            done.append("login")
        code, _ = conn.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, b"NOOP refused")
    return f"{redact_url(settings.smtp_url)} answers EHLO and NOOP" + (f" ({', '.join(done)})" if done else "")


def _refused(error: BaseException) -> bool:
    """Say whether the store's Redis answered with an error that is no outage (a wrong type, a refused command)."""
    import redis

    return isinstance(error, redis.RedisError)


def _reason(error: BaseException, url: str = "") -> str:
    """Say what failed in one line: the error, or under an outage the error that caused it (StorageUnavailable names
    only its type), with a hint where a TLS set-up is the likely cause; no secret of url is shown."""
    from tracker.errors import StorageUnavailable

    shown = error.__cause__ if isinstance(error, StorageUnavailable) and error.__cause__ is not None else error
    text = str(shown).strip().splitlines()[0] if str(shown).strip() else ""
    reason = f"{type(shown).__name__}: {text}" if text else type(shown).__name__
    return hide_secrets(reason + _tls_hint(url, shown), url)


def _tls_hint(url: str, error: BaseException) -> str:
    """A hint for the failures a TLS set-up makes that look like a network's: a Redis that wants a client certificate
    ends the handshake's connection, one that speaks only TLS resets a plain connection."""
    root: BaseException | None = error
    while root is not None and (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    tls = url.startswith(("rediss://", "amqps://"))
    if tls and isinstance(root, (ssl.SSLEOFError, ConnectionResetError)) and "ssl_certfile" not in url:
        wanting = ("a RabbitMQ that requires client certificates, ssl_options.fail_if_no_peer_cert," if
                   url.startswith("amqps://") else "a Redis that requires client certificates, tls-auth-clients yes,")
        return f" ({wanting} ends the connection so: give ssl_certfile and ssl_keyfile in the URL)"
    if url.startswith("redis://") and isinstance(root, ConnectionResetError):
        return " (a Redis that speaks only TLS resets a plain connection so: rediss://)"
    return ""


def _hosts(urls: tuple[str, ...]) -> str:
    # Alert and event URLs often carry their secret in the path (Slack), so only hosts are shown.
    return f"{len(urls)}: " + ", ".join(urlsplit(url).hostname or "?" for url in urls) if urls else "none"


def _event_urls(entries: tuple[EventUrl, ...]) -> str:
    # Scheme, host and port only (a path may hold a token), each with the types it gets.
    from tracker.notify.urls import redacted

    shown = [f"{redacted(entry.url)} ({', '.join(sorted(entry.types)) if entry.types else 'every public type'})"
             for entry in entries]
    return f"{len(shown)}: " + "; ".join(shown) if shown else "none"


def enabled(settings: Settings) -> list[tuple[str, str]]:
    """Describe what the settings turn on, without showing a secret."""
    event_urls = tuple(getattr(settings, "event_urls", ()) or ())
    writeback = getattr(settings, "writeback", ()) or ()
    inbound = [name for name, on in (("mailgun", settings.mailgun_signing_key),
                                     ("postmark, sendgrid", settings.inbound_token)) if on]
    return [
        ("public URL", settings.public_url),
        ("sources", ", ".join(sorted(settings.source_secrets)) or "none (set TRACKER_SOURCE_<NAME>_SECRET)"),
        ("mail transport", settings.mail_transport
         + (f" via {redact_url(settings.smtp_url)}" if settings.mail_transport == "smtp" else "")),
        ("mail from", settings.mail_from),
        ("replies by mail", f"Reply-To reply+<token>@{settings.reply_domain}" if settings.reply_domain else "off"),
        ("inbound mail", ", ".join(inbound) or "off"),
        ("alert URLs", _hosts(settings.alert_urls)),
        ("event URLs", _event_urls(event_urls)),
        ("write-back", ", ".join(sorted(writeback)) or "off"),
        ("zendesk look-ups", settings.zendesk_url or "off"),
        ("survey", f"{settings.survey_scale}, {settings.survey_delay} s after solved, "
                   f"expires after {settings.survey_expiry_days} days"),
        ("custom surveys", _surveys(settings)),
        ("sign-in limit", f"{settings.sign_in_failures} failed a client address in 15 minutes"
                          if settings.sign_in_failures else "off"),
        ("trusted proxies", _proxies(settings.forwarded_allow_ips)),
        *([("earlier keys", f"{len(previous)} still accepted (TRACKER_SECRET_KEY_PREVIOUS)")]
          if (previous := getattr(settings, "previous_secret_keys", ())) else []),
    ]


def _proxies(allowed: tuple[str, ...]) -> str:
    """Say whose X-Forwarded-For names the client (FORWARDED_ALLOW_IPS)."""
    if "*" in allowed:
        return "any peer (FORWARDED_ALLOW_IPS=*): its X-Forwarded-For names the client"
    return ", ".join(allowed) if allowed else "none: every client is its connection's peer"


def _surveys(settings: Settings) -> str:
    surveys = settings.surveys
    if surveys is None:
        return "off (set TRACKER_SURVEYS_FILE)"
    brands = ", ".join(surveys.brands) or "none by name"
    return f"{len(surveys.entries)} entries in {surveys.path} (brands: {brands})"


def _problem(line: str) -> None:
    print(flush=True, end="")  # keep the report and the problems in the order they were found
    print(f"tracker check: {line}", file=sys.stderr, flush=True)


def _reachable_part(environ: Mapping[str, str]) -> Settings | None:
    # When the settings as a whole are refused, still probe what the services' own variables name.
    for names in (("TRACKER_REDIS_URL", "TRACKER_BROKER_URL", "TRACKER_SMTP_URL"),
                  ("TRACKER_REDIS_URL", "TRACKER_BROKER_URL")):
        try:
            return load_settings({name: environ[name] for name in names if name in environ}, needs="store")
        except ConfigError:
            continue
    return None


def run_check(environ: Mapping[str, str]) -> int:
    """Check every setting and service, print what is enabled, and return 1 when anything is wrong."""
    from tracker.store.base import refusal
    from tracker.surveys.template_check import check_mail_templates
    from tracker.web.pages.check import check_page_templates

    print(f"tracker {tracker_version()}")
    problems = 0
    try:
        loaded = load_settings(environ)
        settings: Settings | None = loaded
        complete = True
        print("  ok  settings")
        if loaded.surveys is not None:
            print(f"  ok  surveys file: {loaded.surveys.path} is valid ({len(loaded.surveys.entries)} entries)")
        if loaded.template_dir:
            check_mail_templates(loaded)
            check_page_templates(loaded)
            print(f"  ok  templates: {loaded.template_dir} compiles, and its mail and pages render for every "
                  "language, scale and kind")
    except ConfigError as exc:  # one line per problem: each variable is checked on its own (SettingsProblems)
        found: tuple[str, ...] = getattr(exc, "problems", (str(exc),))
        problems += len(found)
        for line in found:
            _problem(line)
        settings, complete = _reachable_part(environ), False
    if settings is None:
        return 1
    probes = [("Redis", "TRACKER_REDIS_URL", probe_redis), ("broker", "TRACKER_BROKER_URL", probe_broker)]
    if settings.mail_transport == "smtp" and settings.smtp_url:
        probes.append(("SMTP server", "TRACKER_SMTP_URL", probe_smtp))
    reached = set()
    for name, variable, probe in probes:
        if probe is probe_broker and settings.broker_url == settings.redis_url and "TRACKER_REDIS_URL" not in reached:
            # The broker is the store's Redis (TRACKER_BROKER_URL unset, or naming it), which did not answer above:
            # said once, there, not again as the broker's after another TIMEOUT of waiting.
            print("  --  broker: the store's Redis (TRACKER_REDIS_URL), which the line above says cannot serve")
            continue
        try:
            print(f"  ok  {name}: {within(TIMEOUT, partial(probe, settings))}")
            reached.add(variable)
            if probe is not probe_redis:
                continue
            notes, problem = within(TIMEOUT, partial(redis_notes, settings))
            for advice in notes:
                print(f"  note  {advice}")  # advice, not a problem: the exit status stays 0
            if problem:
                problems += 1
                _problem(problem)
        except OutputFailed:
            raise  # the report cannot be written: said once, by the command
        except ConfigError as exc:  # the server answers, and says why it cannot serve (tracker.store.base.refusal)
            problems += 1
            _problem(str(exc))
        except Exception as exc:  # every failure of a probe is a finding, whatever raised it
            problems += 1
            url = {"TRACKER_REDIS_URL": settings.redis_url, "TRACKER_BROKER_URL": settings.broker_url}.get(
                variable, settings.smtp_url)
            if probe is probe_redis and _refused(exc):
                _problem(refusal(settings.redis_url, exc))
            elif probe is probe_redis and settings.redis_url.startswith("sentinel://"):
                # What did not answer, Sentinel by Sentinel: redis-py's error sums it up with its clients' settings.
                refused, unanswered = sentinel_findings(settings.redis_url, "TRACKER_REDIS_URL")
                said = refused or unanswered or _reason(exc, settings.redis_url)
                _problem(f"TRACKER_REDIS_URL: cannot reach the Redis: {said.removeprefix('TRACKER_REDIS_URL: ')}")
            elif probe is probe_broker and settings.broker_url.startswith("sentinel://"):
                # What refused the tracker, or did not answer: kombu's error sums up every Sentinel's answer with the
                # whole of its client's settings. The processes stop with the same words (refuse_unusable_broker).
                refused, unanswered = sentinel_findings(settings.broker_url)
                said = refused or unanswered or _reason(exc, settings.broker_url)
                _problem(f"TRACKER_BROKER_URL: cannot reach the broker: {said.removeprefix('TRACKER_BROKER_URL: ')}")
            elif probe is probe_broker and (refused := broker_refusal(settings.broker_url, exc)) is not None:
                # The broker answered and refused: the processes stop with the same words (refuse_unusable_broker).
                _problem(f"TRACKER_BROKER_URL: cannot reach the broker: {refused.removeprefix('TRACKER_BROKER_URL: ')}")
            else:
                _problem(f"{variable}: cannot reach the {name}: {_reason(exc, url)}")
    # Whether Celery can use the broker (not a Redis Cluster) is asked of a broker that answered, and when it is the
    # store's own Redis, of a store that answered: one that did not is said so above, once.
    same = settings.broker_url == settings.redis_url
    if {"TRACKER_BROKER_URL", *(["TRACKER_REDIS_URL"] if same else [])} <= reached:
        try:
            within(TIMEOUT, partial(refuse_unusable_broker, settings))
        except ConfigError as exc:  # a broker Celery cannot use: a Redis Cluster
            problems += 1
            _problem(str(exc))
        except Exception as exc:  # it answered a moment ago: a finding, not a traceback
            problems += 1
            _problem(f"TRACKER_BROKER_URL: cannot tell whether Celery can use it: {_reason(exc, settings.broker_url)}")
    if complete:
        if note := public_url_note(settings):
            print(f"  note  {note}")  # advice: a test or a laptop runs on 127.0.0.1 on purpose
        problems += _check_apis(settings)
        print("Enabled:")
        for label, value in enabled(settings):
            print(f"  {label:<17}{value}")
    return 1 if problems else 0


def _check_apis(settings: Settings) -> int:
    """Probe the mail API and the helpdesks' APIs (tracker.cli.check_apis); return the problems found."""
    from tracker.cli import check_apis

    problems = 0
    try:
        found = ([check_apis.mail_api(settings)] if settings.mail_transport != "smtp" else []) + \
            check_apis.helpdesks(settings) + check_apis.webhook_hosts(settings)
    except Exception as exc:  # a probe never raises; if one did, it is a finding, not a traceback
        found = [check_apis.Found(False, "APIs", f"cannot check the HTTP APIs: {_reason(exc)}")]
    for result in found:
        if result.ok and not result.confirmed:
            print(f"  note  {result.text}")  # it answered, not as the vendor's API does: worth a look, not a failure
        elif result.ok:
            print(f"  ok  {result.name}: {result.text}")
        else:
            problems += 1
            _problem(result.text)
    for note in check_apis.lookup_notes(settings):
        print(f"  note  {note}")
    return problems


def ping_worker(celery: Celery, host: str, node: str | None) -> list[dict[str, object]]:
    """Ping the node named, or else the workers of this host (each `tracker worker` names its node
    worker-<pid>@<host>); return the replies, done at the first: only the nodes asked answer, so a healthcheck
    every 30 s takes a round trip through the broker, not TIMEOUT seconds of waiting for others."""
    asked: dict[str, object] = ({"destination": [node]} if node else
                                {"pattern": "*@" + glob.escape(host), "matcher": "glob"})
    replies = celery.control.broadcast("ping", reply=True, timeout=TIMEOUT, limit=1, **asked)
    return list(replies or [])


def run_probe(environ: Mapping[str, str], process: str, node: str | None = None) -> int:
    """Say whether the worker or beat on this host is alive (for container healthchecks)."""
    settings = load_settings(environ, needs="store")
    if process == "beat":
        from tracker.cli.beat import heartbeat_path

        path = heartbeat_path(settings.redis_url)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            print(f"tracker check: beat has written no heartbeat at {path}", file=sys.stderr)
            return 1
        if age > BEAT_STALE_AFTER:
            print(f"tracker check: beat's last heartbeat is {age:.0f} s old", file=sys.stderr)
            return 1
        print(f"beat is alive (heartbeat {age:.0f} s ago)")
        return 0
    from workers.celery_app import create_celery

    host = socket.gethostname()
    try:
        replies = ping_worker(create_celery(settings), host, node)
    except Exception as exc:  # a broker that cannot be reached is an unhealthy worker, whatever raised
        print(f"tracker check: cannot ping the worker through the broker: {_reason(exc, settings.broker_url)}",
              file=sys.stderr)
        return 1
    alive = sorted(name for reply in replies for name in reply
                   if name == node or (not node and name.endswith(f"@{host}")))
    if not alive:
        print(f"tracker check: the worker {node} did not answer a ping within {TIMEOUT:g} s" if node else
              f"tracker check: no worker on {host} answered a ping within {TIMEOUT:g} s", file=sys.stderr)
        return 1
    print(f"worker {', '.join(alive)} is alive")
    return 0
