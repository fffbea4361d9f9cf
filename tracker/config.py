"""Settings: read once from the environment, validated, passed everywhere else."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from tracker.errors import ConfigError, SettingsProblems
from tracker.notice_types import PUBLIC_TYPES
from tracker.signing import secret_problem

if TYPE_CHECKING:
    from tracker.surveys.custom import SurveysFile

# The largest request body any webhook may send (SPEC §4: 413 above it).
MAX_BODY = 1024 * 1024
SCALES = ("csat5", "csat3", "thumbs", "nps", "ces7")
# Every variable the product reads; docker-compose.yml and .env.example are tested against it.
KNOWN_VARIABLES = (
    "TRACKER_REDIS_URL",
    "TRACKER_BROKER_URL",
    "TRACKER_SECRET_KEY",
    "TRACKER_SECRET_KEY_PREVIOUS",
    "TRACKER_PUBLIC_URL",
    "TRACKER_BIND",
    "TRACKER_SMTP_URL",
    "TRACKER_MAIL_FROM",
    "TRACKER_REPLY_DOMAIN",
    "TRACKER_SURVEY_DELAY",
    "TRACKER_SURVEY_THROTTLE_DAYS",
    "TRACKER_SURVEY_EXPIRY_DAYS",
    "TRACKER_SURVEY_SCALE",
    "TRACKER_ORDER_SURVEY_DELAY",
    "TRACKER_SWEEP_INTERVAL",
    "TRACKER_SCORE_HALF_LIFE_DAYS",
    "TRACKER_AT_RISK_SCORE",
    "TRACKER_ALERT_URLS",
    "TRACKER_ZENDESK_URL",
    "TRACKER_ZENDESK_EMAIL",
    "TRACKER_ZENDESK_TOKEN",
    "TRACKER_JIRA_API_URL",
    "TRACKER_JIRA_API_USER",
    "TRACKER_JIRA_API_TOKEN",
    "TRACKER_SURVEY_SCALE_BY_SOURCE",
    "TRACKER_SURVEY_SCALE_BY_BRAND",
    "TRACKER_SURVEY_DISABLED_SOURCES",
    "TRACKER_SURVEY_DISABLED_BRANDS",
    "TRACKER_SURVEY_SKIP_TAGS",
    "TRACKER_SURVEY_SAMPLE_PERCENT",
    "TRACKER_SEND_WINDOW",
    "TRACKER_DEFAULT_TIMEZONE",
    "TRACKER_REMINDER_DAYS",
    "TRACKER_FOLLOWUP_REASONS",
    "TRACKER_TEMPLATE_DIR",
    "TRACKER_SURVEYS_FILE",
    "TRACKER_MAIL_TRANSPORT",
    "TRACKER_MAIL_API_KEY",
    "TRACKER_MAIL_API_URL",
    "TRACKER_MAILGUN_DOMAIN",
    "TRACKER_MAILGUN_SIGNING_KEY",
    "TRACKER_INBOUND_TOKEN",
    "TRACKER_ALERT_ALLOW_PRIVATE",
    "TRACKER_API_RATE_LIMIT",
    "TRACKER_SIGN_IN_FAILURES",
    "FORWARDED_ALLOW_IPS",  # gunicorn's own: the proxies whose X-Forwarded-* it and the app trust
    "TRACKER_WEB_WORKERS",
    "TRACKER_LOG_LEVEL",
    "TRACKER_RETENTION_DAYS",
    "TRACKER_LOG_RETENTION_DAYS",
    "TRACKER_EVENT_URLS",
    "TRACKER_WRITEBACK",
    *(f"TRACKER_{source.upper()}_API_{part}" for source in ("zendesk", "freshdesk", "helpscout", "intercom",
                                                            "chatwoot", "gorgias")
      for part in ("URL", "USER", "TOKEN")),
    "TRACKER_CASE_OWNERS",
    "TRACKER_CASE_DUE_HOURS",
    "TRACKER_CASE_RESURVEY",
)
SOURCE_SECRET = re.compile(r"^TRACKER_SOURCE_([A-Z0-9_]+)_SECRET$")


T = TypeVar("T")


class _Problems:
    """The problems found so far: each variable is checked on its own, so one bad value hides no other."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def read(self, read: Callable[[], T], fallback: T) -> T:
        """Return what read() returns, or note its ConfigError and return fallback."""
        try:
            return read()
        except ConfigError as exc:
            self.found.extend(exc.problems if isinstance(exc, SettingsProblems) else (str(exc),))
            return fallback

    def raise_any(self) -> None:
        if self.found:
            raise SettingsProblems(self.found)


# What a process needs beyond the store: "all" (web, worker, beat, check) or "store" (commands that
# only read and manage what Redis holds: score, top, api-key, erase, suppress, rebuild-scores).
NEEDS = ("all", "store")
SECRET_MIN_LENGTH = 32
# Fill-me-in words of published examples (the old compose fallback was change-me-in-production-please),
# compared in lower case with letters and digits only. Each has seven letters or more, so a random
# key of 43 characters holds one by chance far less than once in a million.
PLACEHOLDER_MARKERS = (
    "changeme", "changethis", "pleasechange", "replaceme", "replacethis", "placeholder", "yoursecret",
    "insertsecret", "notasecret", "notsecret", "insecure", "example", "fillmein", "generateone",
    "secrethere", "keyhere",
)


def check_secret(value: str, name: str = "TRACKER_SECRET_KEY") -> str:
    """Return the secret key if it is long and not a placeholder, else raise ConfigError saying why."""
    hint = "generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not value:
        raise ConfigError(f"{name} is required; {hint}")
    if len(value) < SECRET_MIN_LENGTH:
        raise ConfigError(f"{name} must be at least {SECRET_MIN_LENGTH} characters long, got {len(value)}; {hint}")
    letters = re.sub(r"[^a-z0-9]", "", value.lower())
    if any(marker in letters for marker in PLACEHOLDER_MARKERS) or len(set(value)) < 8:
        raise ConfigError(f"{name} looks like a placeholder, not a random key; {hint}")
    return value


def previous_secrets(environ: Mapping[str, str], secret: str) -> tuple[str, ...]:
    """Return the earlier secret keys (TRACKER_SECRET_KEY_PREVIOUS, comma-separated, newest first) still accepted
    after a rotation, each checked like the key itself; the key itself and repeats are left out."""
    name = "TRACKER_SECRET_KEY_PREVIOUS"
    given = [part.strip() for part in environ.get(name, "").split(",") if part.strip()]
    if given and not secret:
        raise ConfigError(f"{name} is set without TRACKER_SECRET_KEY: set the new key, and the old one here")
    for position, value in enumerate(given, 1):
        check_secret(value, name if len(given) == 1 else f"{name} (key {position})")
    return tuple(value for value in dict.fromkeys(given) if value != secret)


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TRANSPORTS = ("smtp", "postmark", "sendgrid", "mailgun")


@dataclass(frozen=True)
class SendWindow:
    """When surveys may go out, in the customer's local time: weekdays (0 = Monday) and minutes of day."""

    days: frozenset[int]
    start_minute: int
    end_minute: int


def parse_send_window(raw: str) -> SendWindow:
    """Read `Mon-Fri 09:00-17:00` (days optional, `Mon,Wed` lists allowed), or raise ValueError."""
    match = re.fullmatch(r"\s*(?:([A-Za-z,\- ]+?)\s+)?(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", raw)
    if not match:
        raise ValueError("expected e.g. 'Mon-Fri 09:00-17:00'")
    day_text, h1, m1, h2, m2 = match.groups()
    start, end = int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)
    if not (0 <= start < 24 * 60 and 0 < end <= 24 * 60 and int(m1) < 60 and int(m2) < 60 and start < end):
        raise ValueError("the start must come before the end, within one day")
    days: set[int] = set()
    for part in (day_text or "mon-sun").lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise ValueError(f"unknown day {part!r}")
        a, b = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return SendWindow(frozenset(days), start, end)


# Helpdesks the answers are written back to (SPEC.md §11), and which of URL, USER, TOKEN each needs; a URL with a
# default is the vendor's one API host. Jira keeps its TRACKER_JIRA_API_* (shared with the reporter look-up),
# Zendesk may also use TRACKER_ZENDESK_URL|EMAIL|TOKEN.
WRITEBACK_SOURCES = ("zendesk", "freshdesk", "helpscout", "intercom", "chatwoot", "jira", "gorgias")
WRITEBACK_NEEDS: dict[str, tuple[str, ...]] = {
    "zendesk": ("URL", "USER", "TOKEN"),  # https://<subdomain>.zendesk.com, agent email, API token
    "freshdesk": ("URL", "TOKEN"),  # https://<domain>.freshdesk.com, API key
    "helpscout": ("USER", "TOKEN"),  # OAuth2 app id and app secret (client credentials)
    "intercom": ("USER", "TOKEN"),  # the admin id notes are written as, access token
    "chatwoot": ("URL", "USER", "TOKEN"),  # installation URL, account id, agent's api_access_token
    "jira": ("URL", "USER", "TOKEN"),  # https://<site>.atlassian.net, account email, API token
    "gorgias": ("URL", "USER", "TOKEN"),  # https://<domain>.gorgias.com, account email, API key
}
WRITEBACK_DEFAULT_URLS = {"helpscout": "https://api.helpscout.net", "intercom": "https://api.intercom.io"}


@dataclass(frozen=True)
class EventUrl:
    """One TRACKER_EVENT_URLS entry: where notices go, and which types (None: every public type)."""

    url: str
    types: frozenset[str] | None = None


@dataclass(frozen=True)
class HelpdeskApi:
    """One helpdesk's API credentials for write-back: base URL (no trailing slash), user (or ''), token."""

    url: str
    user: str
    token: str


@dataclass(frozen=True)
class Settings:
    """Everything the processes need, built once by load_settings."""

    redis_url: str
    broker_url: str
    secret_key: str
    previous_secret_keys: tuple[str, ...] = ()  # TRACKER_SECRET_KEY_PREVIOUS: what is signed or kept with them holds
    public_url: str = "http://127.0.0.1:8000"
    bind: str = "127.0.0.1:8000"
    smtp_url: str = ""
    mail_from: str = "Support <support@localhost>"
    reply_domain: str | None = None
    survey_delay: int = 86400
    survey_throttle_days: int = 7
    survey_expiry_days: int = 14
    survey_scale: str = "csat5"
    order_survey_delay: int | None = None
    sweep_interval: float = 15.0
    score_half_life_days: float = 90.0
    at_risk_score: float = 50.0
    source_secrets: Mapping[str, str] = field(default_factory=dict)
    alert_urls: tuple[str, ...] = ()
    zendesk_url: str | None = None
    zendesk_email: str | None = None
    zendesk_token: str | None = None
    # Jira Cloud's REST API, for reporters whose email the webhook hides: site URL, account email, API token.
    jira_api_url: str | None = None
    jira_api_user: str | None = None
    jira_api_token: str | None = None
    # Survey rules (issue 4): per-source/brand scale and enablement, tags, sampling, window, reminder.
    scale_by_source: Mapping[str, str] = field(default_factory=dict)
    scale_by_brand: Mapping[str, str] = field(default_factory=dict)
    disabled_sources: frozenset[str] = frozenset()
    disabled_brands: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset({"no-survey"})
    sample_percent: float = 100.0
    send_window: SendWindow | None = None
    default_timezone: str = "UTC"
    reminder_days: int = 0
    followup_reasons: tuple[str, ...] = ()
    template_dir: str | None = None
    # Mail delivery: smtp, or an HTTP API (postmark, sendgrid, mailgun) with its key.
    mail_transport: str = "smtp"
    mail_api_key: str | None = None
    mail_api_url: str | None = None
    mailgun_domain: str | None = None
    # Replies by email: Mailgun's webhook signing key, and the shared token for Postmark and SendGrid.
    mailgun_signing_key: str | None = None
    inbound_token: str | None = None
    alert_allow_private: bool = False
    api_rate_limit: int = 600
    sign_in_failures: int = 10  # failed dashboard sign-ins a client address may make in SIGN_IN_WINDOW_S (0: off)
    # The peers whose X-Forwarded-For names the client (tracker.web.clients): addresses and networks, or "*".
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    web_workers: int = 2
    log_level: str = "INFO"
    retention_days: int | None = None  # None: keep answers, surveys and tickets forever
    log_retention_days: int = 30  # applied event log entries (and dead letters) older than this leave Redis
    # Closing the loop (SPEC.md §11).
    event_urls: tuple[EventUrl, ...] = ()
    writeback: Mapping[str, HelpdeskApi] = field(default_factory=dict)  # source -> credentials, as TRACKER_WRITEBACK
    case_owners: Mapping[str, str] = field(default_factory=dict)  # "team:<name>" / "agent:<id>" -> owner
    case_due_hours: int = 48
    case_resurvey: bool = False
    # Custom surveys (SPEC.md §12): the TRACKER_SURVEYS_FILE path and what it holds, checked at start-up.
    surveys_file: str | None = None
    surveys: SurveysFile | None = None

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The secret key and the earlier ones still accepted, newest first: what a signature may be checked with."""
        return (self.secret_key, *self.previous_secret_keys)


# Query options whose value is a secret: redis-py's ?password= and ?ssl_password=, a token or secret by any name.
SECRET_OPTION = re.compile(r"([?&;][^=&;#]*(?:pass|secret|token)[^=&;#]*=)[^&;#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Hide what is secret in a URL so it can be shown in a message: the password of its user part (all of a user
    part without a colon: `redis://PASSWORD@host` is a common way to give a password alone) and the values of query
    options named for a password, secret or token (redis-py takes `?password=` and `?ssl_password=`).

    A password holding a / ? or # that is not percent-encoded ends the URL's host part early, so a parser sees no
    user part at all: then everything up to the last @ is hidden. Sentinel lists (`;`-separated URLs) are hidden
    URL by URL."""
    pieces = url.split(";")
    if len(pieces) > 1 and all("://" in piece for piece in pieces):
        return ";".join(redact_url(piece) for piece in pieces)
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    try:
        netloc = urlsplit(url).netloc if sep else ""
    except ValueError:
        netloc = ""
    if "@" in netloc:  # a user part the parser reads as such
        userinfo = netloc.rpartition("@")[0]
        user, colon, _password = userinfo.partition(":")
        shown = f"{user}:***" if colon else "***"
        rest = shown + rest[len(userinfo):]
    elif "@" in rest:  # cut short by a character that is not percent-encoded, or no URL: hide up to the last @
        rest = "***" + rest[rest.rindex("@"):]
    rest = SECRET_OPTION.sub(r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def url_secrets(url: str) -> list[str]:
    """Return the secrets a URL holds, longest first: its password and the values of query options named for a
    password, secret or token (redis-py's ?password= and ?ssl_password=, a Sentinel broker's ?sentinel_password=),
    each as written and as decoded. A user part the parser cannot find (a / ? or # not percent-encoded in the
    password) counts whole, up to the last @."""
    found: set[str] = set()
    for piece in url.split(";"):
        try:
            parts = urlsplit(piece)
            netloc, query = parts.netloc, parts.query
        except ValueError:
            netloc, query = "", ""
        userinfo = (netloc.rpartition("@")[0] if "@" in netloc
                    else (piece.partition("://")[2] or piece).rpartition("@")[0] if "@" in piece else "")
        if userinfo:
            found.add(userinfo.partition(":")[2] if ":" in userinfo else userinfo)
        found.update(value for name, value in parse_qsl(query, keep_blank_values=True)
                     if re.search(r"pass|secret|token", name, re.IGNORECASE))
        # ... and as written: parse_qsl decodes them (a Sentinel's sentinel_password=s%2Bpw%26x is s+pw&x).
        found.update(value for name, _, value in (option.partition("=") for option in query.split("&"))
                     if re.search(r"pass|secret|token", name, re.IGNORECASE))
    found |= {unquote(secret) for secret in found}
    return sorted((secret for secret in found if len(secret) >= MIN_HIDDEN), key=len, reverse=True)


MIN_HIDDEN = 4  # shorter "secrets" are not hidden in free text: replacing every "ab" would garble it, and hide nothing


def hide_secrets(text: str, *urls: str) -> str:
    """Return text (an error message, a reason a server gave) with every secret the URLs hold (url_secrets) masked."""
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, "***")
    return text


# What the query of a sentinel:// broker URL may say: the master's name, and the Sentinels' own credentials (their
# requirepass, or an ACL user of theirs), which redis-py takes apart from the master's, as sentinel_kwargs.
SENTINEL_OPTIONS = ("master_name", "sentinel_username", "sentinel_password")
# ... and redis-py's TLS options, any of which puts the Sentinels and the master behind TLS (kombu reads a ssl_* option
# of a sentinel:// URL as TLS to the master; the Sentinels are given the same as sentinel_kwargs).
SENTINEL_TLS_OPTIONS = ("ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_cert_reqs",
                        "ssl_check_hostname")
SENTINEL_EXAMPLE = ("sentinel://:PASSWORD@s1:26379;sentinel://s2:26379/0?master_name=mymaster"
                    "&sentinel_password=SENTINEL_PASSWORD")


@dataclass(frozen=True)
class SentinelUrl:
    """A sentinel:// broker URL as read: each Sentinel's host and port as written, the master's name, database and
    credentials (its URLs' user part), the Sentinels' own credentials (None: not given), and the TLS options."""

    hosts: tuple[str, ...]
    master_name: str
    database: str = ""  # "": none given, kombu's 0
    user_part: str = ""  # the master's `USER:PASSWORD` or `:PASSWORD` as written, percent-encoded; "": none given
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: tuple[tuple[str, str], ...] = ()  # the TLS options given (SENTINEL_TLS_OPTIONS); none: no TLS

    @property
    def tls_options(self) -> dict[str, object] | None:
        """The TLS options as redis-py takes them (the master's connections, and the Sentinels'), None without TLS:
        the certificate is checked unless ssl_cert_reqs says none, its host name unless ssl_check_hostname says so."""
        if not self.tls:
            return None
        given = dict(self.tls)
        options: dict[str, object] = {name: value for name, value in given.items() if value}
        options["ssl_cert_reqs"] = given.get("ssl_cert_reqs") or "required"
        options["ssl_check_hostname"] = FLAG_VALUES[(given.get("ssl_check_hostname") or "true").lower()]
        return options

    @property
    def sentinel_kwargs(self) -> dict[str, object]:
        """The Sentinels' own connection options as redis-py takes them (sentinel_kwargs): their credentials, and the
        TLS options, which put the Sentinels behind TLS as well as the master."""
        given = (("username", self.sentinel_username), ("password", self.sentinel_password))
        own: dict[str, object] = {key: value for key, value in given if value is not None}
        if (tls := self.tls_options) is not None:
            own = {**own, "ssl": True, **tls}
        return own

    @property
    def sentinels(self) -> tuple[tuple[str, int], ...]:
        """Each Sentinel's host and port (26379 unless the URL says), as kombu hands them to redis-py."""
        return tuple((parts.hostname or "localhost", parts.port or 26379)
                     for parts in (urlsplit(f"sentinel://{host}") for host in self.hosts))

    @property
    def master_credentials(self) -> tuple[str | None, str | None]:
        """The master's user and password, decoded as kombu decodes them (None: not given)."""
        user, _, password = self.user_part.partition(":")
        return unquote(user) or None, unquote(password) or None


def read_sentinel_url(url: str, name: str = "TRACKER_BROKER_URL") -> SentinelUrl:
    """Read a sentinel:// URL (the broker's or the store's), or raise ConfigError naming the variable: `;`-separated
    Sentinels, the last followed by the query (master_name, the Sentinels' own sentinel_password and
    sentinel_username, the TLS options), the master's credentials in a user part and its database in a path, each
    given once or alike wherever given.

    kombu reads the credentials and database of one URL at a time, the first's, then the next one's after a failed
    connection: a password written on the first URL alone would be gone after a failover, a database written on the
    last alone used only then. tracker.broker_url.broker_connection gives every URL both."""
    pieces = url.split(";")
    if any("?" in piece for piece in pieces[:-1]):
        raise ConfigError(f"{name}: the query of a sentinel:// URL (master_name=...) follows the last Sentinel, e.g. "
                          f"{SENTINEL_EXAMPLE}; got {redact_url(url)!r}")
    options = dict(parse_qsl(urlsplit(pieces[-1]).query, keep_blank_values=True))
    if unknown := sorted(set(options) - {*SENTINEL_OPTIONS, *SENTINEL_TLS_OPTIONS}):
        raise ConfigError(f"{name}: a sentinel:// URL takes only {', '.join(SENTINEL_OPTIONS)} and the TLS options "
                          f"{', '.join(SENTINEL_TLS_OPTIONS)} in its query (the master's credentials go in the user "
                          f"part: {SENTINEL_EXAMPLE}), got {', '.join(unknown)}")
    if (reqs := options.get("ssl_cert_reqs") or "required") not in CERT_REQS:
        raise ConfigError(f"{name}: ssl_cert_reqs is none, optional or required, got {reqs!r}")
    if (check := options.get("ssl_check_hostname") or "true").lower() not in FLAG_VALUES:
        raise ConfigError(f"{name}: ssl_check_hostname is true or false, got {check!r}")
    hosts: list[str] = []
    credentials: dict[tuple[str, str], str] = {}  # decoded (user, password) -> the user part as written
    databases: set[str] = set()
    for piece in pieces:
        parts = urlsplit(piece)
        user_part, at, host = parts.netloc.rpartition("@")
        hosts.append(host)
        if at:
            user, _, password = user_part.partition(":")
            credentials.setdefault((unquote(user), unquote(password)), user_part)
        if not REDIS_DATABASE.fullmatch(parts.path):
            raise ConfigError(f"{name}: the database after a Sentinel's host must be a number, e.g. sentinel://s1:"
                              f"26379;sentinel://s2:26379/0?master_name=mymaster, got {redact_url(url)!r}")
        if parts.path.strip("/"):
            databases.add(str(int(parts.path.strip("/"))))
    if len(credentials) > 1:
        raise ConfigError(f"{name}: the Sentinels' URLs give the master different credentials: give them once, on the "
                          f"first (e.g. {SENTINEL_EXAMPLE}), or the same on each")
    if len(databases) > 1:
        raise ConfigError(f"{name}: the Sentinels' URLs name different databases ({', '.join(sorted(databases))}): "
                          "name it once, after the last Sentinel")
    return SentinelUrl(tuple(hosts), options.get("master_name", "").strip(), databases.pop() if databases else "",
                       next(iter(credentials.values()), ""), options.get("sentinel_username") or None,
                       options.get("sentinel_password") or None,
                       tuple((option, value) for option, value in options.items() if option in SENTINEL_TLS_OPTIONS))


# What ssl_cert_reqs may say, as redis-py reads it for a rediss:// URL and the tracker for an amqps:// one.
CERT_REQS = ("none", "optional", "required")
# The TLS options of an amqps:// URL: py-amqp has no password for an encrypted key and no CA folder.
AMQPS_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
# What ssl_check_hostname of an amqps:// URL may say, in any case, and what it means.
FLAG_VALUES = {"1": True, "true": True, "yes": True, "y": True, "t": True,
               "0": False, "false": False, "no": False, "n": False, "f": False}


def _url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...], default: str | None) -> str:
    value = environ.get(name, "").strip() or default
    if value is None:
        raise ConfigError(f"{name} is required (e.g. {schemes[0]}://localhost)")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:  # a bracketed host that is no IPv6 address: nothing of it can be shown safely
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    try:
        _ = parts.port  # raises on a port that is not a number in range
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme in schemes and "@" in value and "@" not in parts.netloc and not (host and port_ok):
        # A / ? or # in a password ends the host part before the @: the URL would read as a host named by the password.
        raise ConfigError(f"{name}: the user part of the URL (before the @) holds a / ? or # that is not "
                          f"percent-encoded, as a password may; write them %2F, %3F and %23 (python3 -c 'import sys, "
                          f"urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=\"\"))' PASSWORD), got "
                          f"{redact_url(value)!r}")
    if parts.scheme not in schemes or not (host or (parts.scheme == "unix" and parts.path)):
        raise ConfigError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, "
                          f"got {redact_url(value)!r}")
    if not port_ok:
        raise ConfigError(f"{name} has an invalid port: {redact_url(value)!r}")
    return value


REDIS_DATABASE = re.compile(r"/?\d*")  # what may follow a Redis URL's host: nothing, or /<database number>


def _redis_url(environ: Mapping[str, str], name: str = "TRACKER_REDIS_URL") -> str:
    """Read a Redis URL, refusing up front what redis-py would refuse only once it connects (an option it does not
    know, or one whose value is not of its kind, a protocol other than 2 or 3) or read silently as database 0 (a
    path that is not a number)."""
    import redis

    if (given := environ.get(name, "").strip()).startswith("sentinel://"):
        return _sentinel_url(name, given)
    value = _url(environ, name, ("redis", "rediss", "unix"), None)
    shown = redact_url(value)
    parts = urlsplit(value)
    if parts.scheme != "unix" and not REDIS_DATABASE.fullmatch(parts.path):
        raise ConfigError(f"{name}: the database after the host must be a number, e.g. redis://host:6379/0, "
                          f"got {shown!r}")
    _tls_options(name, parts, shown)
    try:
        pool = redis.ConnectionPool.from_url(value)
        pool.make_connection()  # made as the store makes its own, not connected: refuses what its options hold
    except TypeError as exc:  # an option redis-py does not know, passed on as a keyword
        unknown = re.search(r"argument '(\w+)'", str(exc))
        raise ConfigError(f"{name}: redis-py knows no option {unknown.group(1) if unknown else ''!r} in "
                          f"{shown!r}") from None
    except (ValueError, redis.RedisError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        if "SSL Certificate Requirements" in reason:
            reason += " (ssl_cert_reqs is none, optional or required)"
        raise ConfigError(f"{name}: {reason}: {shown!r}") from None
    return value


# The files a rediss:// or amqps:// URL may name for its TLS handshake (redis-py's options), and what each holds.
TLS_FILES = {"ssl_ca_certs": "the CA certificates", "ssl_certfile": "the client certificate",
             "ssl_keyfile": "the client certificate's key"}


def _tls_options(name: str, parts: SplitResult, shown: str) -> None:
    """Refuse up front the TLS options of a Redis or RabbitMQ URL that every connection would fail on, each as one line
    naming the variable: TLS options on a URL that does not speak TLS (redis-py would say it knows no such option), a
    CA, client certificate or key file that cannot be read or loaded (redis-py and py-amqp would say so only when they
    connect, for each connection: an outage to the processes, which would wait for ever); on an amqps:// URL, which
    the tracker reads itself (tracker.broker_url.broker_tls), an option py-amqp has no use for or a value that is not
    one."""
    import ssl

    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    tls = sorted(option for option in query if option.startswith("ssl_"))
    amqp = parts.scheme.startswith("amqp")
    if tls and parts.scheme not in ("rediss", "amqps", "sentinel"):
        raise ConfigError(f"{name}: {', '.join(tls)} {'is a TLS option' if len(tls) == 1 else 'are TLS options'}, "
                          f"and only {'an amqps' if amqp else 'a rediss'}:// URL speaks TLS; got {shown!r}")
    if parts.scheme == "amqps":
        _amqps_values(name, query, shown)
    for option, what in TLS_FILES.items():
        if path := query.get(option):
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"{name}: {option} names {path} ({what}), which cannot be read: "
                                  f"{exc.strerror or exc}") from None
    if (folder := query.get("ssl_ca_path")) and not os.path.isdir(folder):
        raise ConfigError(f"{name}: ssl_ca_path names {folder}, which is no folder")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loading = "ssl_ca_certs"
    try:
        if query.get("ssl_ca_certs"):
            context.load_verify_locations(cafile=query["ssl_ca_certs"])
        if query.get("ssl_certfile"):
            loading = "ssl_certfile"
            # Never OpenSSL's prompt on the terminal for an encrypted key's password: it would hold the start-up.
            context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile") or None,
                                    password=query.get("ssl_password") or (lambda: ""))
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if loading == "ssl_ca_certs":
            hint = " (PEM certificates expected)"
        elif "MISMATCH" in reason:
            hint = ": the key (ssl_keyfile, or in the certificate's file) is not the certificate's"
        elif ("DECRYPT" in reason or "PASS" in reason) and amqp:
            hint = ": an amqps:// URL takes no key password (py-amqp asks for none): give the key unencrypted"
        elif "DECRYPT" in reason or "PASS" in reason:
            hint = ": an encrypted key needs its password as ssl_password"
        else:
            hint = (" (a PEM certificate expected, its key in ssl_keyfile or the same file; an encrypted key needs its "
                    "password as ssl_password)")
        raise ConfigError(f"{name}: {loading} {query[loading]} cannot be loaded: {reason}{hint}") from None


def _amqps_values(name: str, query: Mapping[str, str], shown: str) -> None:
    """Refuse a TLS option of an amqps:// URL that py-amqp has no use for, and a value tracker.broker_url.broker_tls
    cannot read."""
    unknown = sorted(option for option in query if option.startswith("ssl_") and option not in AMQPS_TLS_OPTIONS)
    if unknown:
        raise ConfigError(f"{name}: an amqps:// URL takes the TLS options {', '.join(AMQPS_TLS_OPTIONS)}, not "
                          f"{', '.join(unknown)}" + (" (py-amqp reads no encrypted key: give the key unencrypted)"
                                                     if "ssl_password" in unknown else "") + f"; got {shown!r}")
    if (reqs := query.get("ssl_cert_reqs") or "required") not in CERT_REQS:
        raise ConfigError(f"{name}: ssl_cert_reqs is none, optional or required, got {reqs!r}")
    if (check := query.get("ssl_check_hostname") or "true").lower() not in FLAG_VALUES:
        raise ConfigError(f"{name}: ssl_check_hostname is true or false, got {check!r}")


def _broker_url(environ: Mapping[str, str], redis_url: str) -> str:
    """Read TRACKER_BROKER_URL (the store's Redis when unset, checked as TRACKER_REDIS_URL): its scheme, its port,
    a Redis database that is a number, a Sentinel's master, and a RabbitMQ's TLS options."""
    name = "TRACKER_BROKER_URL"
    given = environ.get(name, "").strip()
    if not given:
        return redis_url
    if not given.startswith(("redis://", "rediss://", "amqp://", "amqps://", "unix://", "sentinel://")):
        raise ConfigError(f"{name} must be a redis://, amqp:// or amqps:// URL, got {redact_url(given)!r}")
    if given.startswith("sentinel://"):
        return _sentinel_url(name, given)
    scheme = given.partition("://")[0]
    if scheme in ("amqp", "amqps"):
        value = _url({name: given}, name, (scheme,), None)
        _tls_options(name, urlsplit(value), redact_url(value))
        return value
    # A Redis broker's URL is read as redis-py reads it (kombu hands it to redis-py; tracker.broker_url says how).
    return _redis_url({name: given}, name)


def _sentinel_url(name: str, given: str) -> str:
    """Read a sentinel:// URL of the store or the broker: each Sentinel's host and port, the master's name, one set of
    the master's credentials and one database, and the TLS options (read_sentinel_url)."""
    for sentinel in given.split(";"):
        _url({name: sentinel}, name, ("sentinel",), None)
    if not read_sentinel_url(given, name).master_name:
        raise ConfigError(f"{name}: a sentinel:// URL names the master its Sentinels watch, e.g. "
                          "sentinel://s1:26379;sentinel://s2:26379/0?master_name=mymaster")
    _tls_options(name, urlsplit(given.split(";")[-1]), redact_url(given))
    return given


def default_web_workers() -> int:
    """Two gunicorn workers per CPU this process may use, 2 to 8: measured best on 2 cores (README "Benchmarks")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return min(8, max(2, 2 * cpus))


DAY = 86400
# The largest value of each number setting, named in the message that refuses more. Past these nothing an operator
# means is left, and the times reckoned from them (a link's expiry, a sweep's schedule, a retention cut-off) would
# leave what Python's dates, Celery's timers and Redis's stream ids can hold.
MAXIMA: dict[str, tuple[float, str]] = {
    "TRACKER_SURVEY_DELAY": (365 * DAY, "seconds, a year"),
    "TRACKER_ORDER_SURVEY_DELAY": (365 * DAY, "seconds, a year"),
    "TRACKER_SURVEY_THROTTLE_DAYS": (3650, "days"),
    "TRACKER_SURVEY_EXPIRY_DAYS": (3650, "days"),
    "TRACKER_REMINDER_DAYS": (3650, "days"),
    "TRACKER_SWEEP_INTERVAL": (DAY, "seconds, a day"),
    "TRACKER_SCORE_HALF_LIFE_DAYS": (36500, "days"),
    "TRACKER_AT_RISK_SCORE": (100, "the highest score"),
    "TRACKER_SURVEY_SAMPLE_PERCENT": (100, "percent"),
    "TRACKER_API_RATE_LIMIT": (1_000_000, "requests a minute"),
    "TRACKER_SIGN_IN_FAILURES": (1_000_000, "failed sign-ins a client address may make in 15 minutes"),
    "TRACKER_WEB_WORKERS": (64, "the threads they share"),
    "TRACKER_RETENTION_DAYS": (3650, "days; unset keeps everything"),
    "TRACKER_LOG_RETENTION_DAYS": (3650, "days"),
    "TRACKER_CASE_DUE_HOURS": (365 * 24, "hours, a year"),
}


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float, integer: bool) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    kind = "a whole number" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(value):  # nan, inf, 1e999999
        raise ConfigError(f"{name} must be {kind}, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    maximum, unit = MAXIMA[name]
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:.0f} ({unit}), got {raw!r}")
    return value


def _forwarded_allow_ips(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Read FORWARDED_ALLOW_IPS as gunicorn does (a comma-separated list of addresses and networks, or "*"; unset:
    127.0.0.1 and ::1), refusing what gunicorn would not read either."""
    raw = environ.get("FORWARDED_ALLOW_IPS")
    if raw is None:
        return ("127.0.0.1", "::1")
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"FORWARDED_ALLOW_IPS must list addresses or networks (or be *), got "
                              f"{entry[:80]!r}") from None
    return entries


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"TRACKER_BIND must be host:port, got {value!r}")
    return value


def _names(environ: Mapping[str, str], name: str, default: str = "") -> frozenset[str]:
    return frozenset(v.strip().lower() for v in (environ.get(name) or default).split(",") if v.strip())


def _scale_map(environ: Mapping[str, str], name: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in environ.get(name, "").split(","):
        if not pair.strip():
            continue
        key, sep, scale = pair.partition("=")
        if not sep or not key.strip() or scale.strip() not in SCALES:
            raise ConfigError(f"{name} must be like 'zendesk=nps,shopify=csat3' with scales from "
                              f"{', '.join(SCALES)}, got {pair.strip()!r}")
        mapping[key.strip().lower()] = scale.strip()
    return mapping


def _rules(environ: Mapping[str, str], everything: bool = True, problems: _Problems | None = None) -> dict[str, object]:
    """Read the survey rules and delivery settings of SPEC.md §5 beyond the basic ones.

    Each variable is checked on its own: its problem goes to problems (raised together at the end when none is
    given), and a value that depends on it is not checked.
    """
    found = problems if problems is not None else _Problems()
    check = found.read
    window = check(lambda: _send_window(environ), None)
    zone = check(lambda: _time_zone(environ), "UTC")
    template_dir = check(lambda: _template_dir(environ), None)
    transport = check(lambda: _transport(environ), "")  # "": wrong, so nothing that depends on it is checked
    api_key = environ.get("TRACKER_MAIL_API_KEY", "").strip() or None
    if everything and transport not in ("", "smtp") and not api_key:
        found.found.append(f"TRACKER_MAIL_API_KEY is required with TRACKER_MAIL_TRANSPORT={transport}")
    mailgun_domain = environ.get("TRACKER_MAILGUN_DOMAIN", "").strip() or None
    if everything and transport == "mailgun" and not mailgun_domain:
        found.found.append("TRACKER_MAILGUN_DOMAIN is required with TRACKER_MAIL_TRANSPORT=mailgun")
    api_url = environ.get("TRACKER_MAIL_API_URL", "").strip().rstrip("/") or None
    if api_url:
        check(lambda: _url(environ, "TRACKER_MAIL_API_URL", ("https", "http"), None), "")
    sample = check(lambda: _number(environ, "TRACKER_SURVEY_SAMPLE_PERCENT", 100, 0, False), 100.0)
    allow = environ.get("TRACKER_ALERT_ALLOW_PRIVATE", "").strip().lower()
    if allow not in ("", "0", "1", "true", "false", "yes", "no"):
        found.found.append(f"TRACKER_ALERT_ALLOW_PRIVATE must be 1 or 0, got {allow!r}")
    rules: dict[str, object] = {
        # None when refused: the surveys file, which names scales by source and brand, is then not checked.
        "scale_by_source": check(lambda: _scale_map(environ, "TRACKER_SURVEY_SCALE_BY_SOURCE"), None),
        "scale_by_brand": check(lambda: _scale_map(environ, "TRACKER_SURVEY_SCALE_BY_BRAND"), None),
        "disabled_sources": _names(environ, "TRACKER_SURVEY_DISABLED_SOURCES"),
        "disabled_brands": _names(environ, "TRACKER_SURVEY_DISABLED_BRANDS"),
        "skip_tags": _names(environ, "TRACKER_SURVEY_SKIP_TAGS", "no-survey"),
        "sample_percent": sample,
        "send_window": window,
        "default_timezone": zone,
        "reminder_days": int(check(lambda: _number(environ, "TRACKER_REMINDER_DAYS", 0, 0, True), 0.0)),
        "followup_reasons": tuple(r.strip() for r in environ.get("TRACKER_FOLLOWUP_REASONS", "").split(",")
                                  if r.strip()),
        "template_dir": template_dir,
        "mail_transport": transport,
        "mail_api_key": api_key,
        "mail_api_url": api_url,
        "mailgun_domain": mailgun_domain,
        "mailgun_signing_key": environ.get("TRACKER_MAILGUN_SIGNING_KEY", "").strip() or None,
        "inbound_token": environ.get("TRACKER_INBOUND_TOKEN", "").strip() or None,
        "alert_allow_private": allow in ("1", "true", "yes"),
        "api_rate_limit": int(check(lambda: _number(environ, "TRACKER_API_RATE_LIMIT", 600, 0, True), 600.0)),
    }
    if problems is None:
        found.raise_any()
    return rules


def _send_window(environ: Mapping[str, str]) -> SendWindow | None:
    if not environ.get("TRACKER_SEND_WINDOW", "").strip():
        return None
    try:
        return parse_send_window(environ["TRACKER_SEND_WINDOW"])
    except ValueError as exc:
        raise ConfigError(f"TRACKER_SEND_WINDOW: {exc}, got {environ['TRACKER_SEND_WINDOW']!r}") from None


def _time_zone(environ: Mapping[str, str]) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = environ.get("TRACKER_DEFAULT_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TRACKER_DEFAULT_TIMEZONE must be an IANA time zone like Europe/Oslo, "
                          f"got {zone!r}") from None
    return zone


def _template_dir(environ: Mapping[str, str]) -> str | None:
    template_dir = environ.get("TRACKER_TEMPLATE_DIR", "").strip() or None
    if template_dir and not os.path.isdir(template_dir):
        raise ConfigError(f"TRACKER_TEMPLATE_DIR must be an existing folder, got {template_dir!r}")
    if template_dir:
        from tracker.operator_templates import check_template_dir

        check_template_dir(template_dir)
    return template_dir


def _transport(environ: Mapping[str, str]) -> str:
    transport = (environ.get("TRACKER_MAIL_TRANSPORT", "").strip() or "smtp").lower()
    if transport not in TRANSPORTS:
        raise ConfigError(f"TRACKER_MAIL_TRANSPORT must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    return transport


def _event_urls(environ: Mapping[str, str]) -> tuple[EventUrl, ...]:
    """Read TRACKER_EVENT_URLS: `url,url|type,type,url`: a piece after a `url|…` that is no URL is one more type."""
    entries: list[tuple[str, list[str] | None]] = []
    for piece in (p.strip() for p in environ.get("TRACKER_EVENT_URLS", "").split(",")):
        if not piece:
            continue
        if "://" in piece:
            url, sep, first = piece.partition("|")
            _url({"TRACKER_EVENT_URLS": url.strip()}, "TRACKER_EVENT_URLS", ("http", "https"), None)
            entries.append((url.strip(), [t.strip() for t in first.split(";")] if sep else None))
        elif entries and entries[-1][1] is not None:
            entries[-1][1].extend(t.strip() for t in piece.split(";"))
        else:
            raise ConfigError(f"TRACKER_EVENT_URLS holds http(s) URLs, each maybe followed by '|' and event types, "
                              f"got {piece!r}")
    found: list[EventUrl] = []
    for url, types in entries:
        if types is not None:
            wrong = [t for t in types if t not in PUBLIC_TYPES]
            if wrong or not any(types):
                raise ConfigError(f"TRACKER_EVENT_URLS: {url} names event types from {', '.join(PUBLIC_TYPES)}, "
                                  f"got {', '.join(wrong) or 'none'}")
        found.append(EventUrl(url, frozenset(types) if types is not None else None))
    return tuple(found)


def _writeback(environ: Mapping[str, str], everything: bool) -> dict[str, HelpdeskApi]:
    chosen = [s.strip().lower() for s in environ.get("TRACKER_WRITEBACK", "").split(",") if s.strip()]
    unknown = [s for s in chosen if s not in WRITEBACK_SOURCES]
    if unknown:
        raise ConfigError(f"TRACKER_WRITEBACK names sources from {', '.join(WRITEBACK_SOURCES)}, "
                          f"got {', '.join(unknown)}")
    apis: dict[str, HelpdeskApi] = {}
    for source in dict.fromkeys(chosen):
        prefix = "TRACKER_JIRA_API_" if source == "jira" else f"TRACKER_{source.upper()}_API_"
        fallback = {"URL": "TRACKER_ZENDESK_URL", "USER": "TRACKER_ZENDESK_EMAIL",
                    "TOKEN": "TRACKER_ZENDESK_TOKEN"} if source == "zendesk" else {}
        values = {part: (environ.get(prefix + part, "").strip()
                         or environ.get(fallback.get(part, ""), "").strip()) for part in ("URL", "USER", "TOKEN")}
        values["URL"] = (values["URL"] or WRITEBACK_DEFAULT_URLS.get(source, "")).rstrip("/")
        missing = [prefix + part for part in WRITEBACK_NEEDS[source] if not values[part]]
        if missing and everything:
            raise ConfigError(f"TRACKER_WRITEBACK names {source}, which needs {' and '.join(missing)}")
        if values["URL"]:
            _url({prefix + "URL": values["URL"]}, prefix + "URL", ("https", "http"), None)
        apis[source] = HelpdeskApi(values["URL"], values["USER"], values["TOKEN"])
    return apis


def _case_owners(environ: Mapping[str, str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for pair in environ.get("TRACKER_CASE_OWNERS", "").split(","):
        if not pair.strip():
            continue
        who, sep, owner = pair.partition("=")
        kind, colon, name = who.strip().partition(":")
        if not colon:
            kind, name = "team", who.strip()
        if not sep or kind not in ("team", "agent") or not name.strip() or not owner.strip():
            raise ConfigError("TRACKER_CASE_OWNERS must be like 'vip=ola@example.com,agent:a-7=kim@example.com' "
                              f"(a team, or agent:<id>, = an owner), got {pair.strip()!r}")
        owners[f"{kind}:{name.strip().lower() if kind == 'team' else name.strip()}"] = owner.strip()
    return owners


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes")


def _surveys(environ: Mapping[str, str], scale: str, rules: Mapping[str, object]) -> SurveysFile | None:
    """Read TRACKER_SURVEYS_FILE; its errors name the file, line and key (tracker.surveys.custom)."""
    from tracker.surveys.custom import load_surveys_file

    path = environ.get("TRACKER_SURVEYS_FILE", "").strip()
    if not path:
        return None
    if not os.path.isfile(path):
        raise ConfigError(f"TRACKER_SURVEYS_FILE must name an existing file, got {path!r}")
    by_source, by_brand = rules["scale_by_source"], rules["scale_by_brand"]
    if not (scale and isinstance(by_source, dict) and isinstance(by_brand, dict)):
        return None  # a scale it names is refused already: the file is read once that is right
    return load_surveys_file(path, scale, by_source, by_brand)


def _all_text(environ: Mapping[str, str]) -> None:
    """Refuse settings holding bytes that are not UTF-8 (Python holds them as lone surrogates, which pass every
    check of their shape and then fail wherever the value is compared, sent, shown or stored): one line each."""
    found = []
    for name, value in environ.items():
        if not name.startswith("TRACKER_"):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            found.append(f"{name} is not valid UTF-8 text; set it again in UTF-8")
    if found:
        raise SettingsProblems(found)


def _scale(environ: Mapping[str, str]) -> str:
    scale = environ.get("TRACKER_SURVEY_SCALE", "").strip() or "csat5"
    if scale not in SCALES:
        raise ConfigError(f"TRACKER_SURVEY_SCALE must be one of {', '.join(SCALES)}, got {scale!r}")
    return scale


def _reply_domain(environ: Mapping[str, str]) -> str | None:
    reply_domain = environ.get("TRACKER_REPLY_DOMAIN", "").strip() or None
    if reply_domain and not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}|localhost", reply_domain):
        raise ConfigError(f"TRACKER_REPLY_DOMAIN must be a domain name, got {reply_domain!r}")
    return reply_domain


def _mail_from(environ: Mapping[str, str]) -> str:
    mail_from = environ.get("TRACKER_MAIL_FROM", "").strip() or "Support <support@localhost>"
    if "@" not in mail_from:
        raise ConfigError(f"TRACKER_MAIL_FROM must contain an email address, got {mail_from!r}")
    return mail_from


def _source_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    sources: dict[str, str] = {}
    for name, value in environ.items():
        match = SOURCE_SECRET.match(name)
        if match and value.strip():
            sources[match.group(1).lower()] = value.strip()
    if "standard" in sources and (problem := secret_problem(sources["standard"])):
        raise ConfigError(f"TRACKER_SOURCE_STANDARD_SECRET {problem}")
    return sources


def _log_level(environ: Mapping[str, str]) -> str:
    level = (environ.get("TRACKER_LOG_LEVEL", "").strip() or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"TRACKER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


def _optional_url(environ: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL without its trailing slash, None when unset."""
    if not environ.get(name, "").strip():
        return None
    return _url(environ, name, ("https", "http"), None).rstrip("/")


def load_settings(environ: Mapping[str, str], needs: str = "all") -> Settings:
    """Build Settings from environment variables, or raise ConfigError naming the bad one.

    Every variable is checked on its own: the error raised is a SettingsProblems holding a line for each problem
    found (`tracker check` prints them all), read as a ConfigError it is the first of them.
    With needs="store" only TRACKER_REDIS_URL is required; whatever else is set is still checked.
    """
    if needs not in NEEDS:
        raise ValueError(f"needs must be one of {NEEDS}, got {needs!r}")
    _all_text(environ)
    everything = needs == "all"
    found = _Problems()
    check = found.read
    redis_url = check(lambda: _redis_url(environ), "")
    broker_url = check(lambda: _broker_url(environ, redis_url), "")
    secret = environ.get("TRACKER_SECRET_KEY", "").strip()
    if secret or everything:
        check(lambda: check_secret(secret), "")
    previous: tuple[str, ...] = check(lambda: previous_secrets(environ, secret), ())
    public_url = check(lambda: _url(environ, "TRACKER_PUBLIC_URL", ("http", "https"), "http://127.0.0.1:8000"),
                       "").rstrip("/")
    rules = _rules(environ, everything, found)
    smtp_url = environ.get("TRACKER_SMTP_URL", "").strip()
    if rules["mail_transport"] == "smtp" and (smtp_url or everything):
        smtp_url = check(lambda: _url(environ, "TRACKER_SMTP_URL", ("smtp", "smtps"), None), "")
    scale = check(lambda: _scale(environ), "")
    reply_domain = check(lambda: _reply_domain(environ), None)
    mail_from = check(lambda: _mail_from(environ), "")
    sources: dict[str, str] = check(lambda: _source_secrets(environ), {})
    alert_urls: tuple[str, ...] = check(lambda: tuple(
        _url({"TRACKER_ALERT_URLS": u.strip()}, "TRACKER_ALERT_URLS", ("http", "https"), None)
        for u in environ.get("TRACKER_ALERT_URLS", "").split(",") if u.strip()), ())
    level = check(lambda: _log_level(environ), "INFO")
    zendesk_url = check(lambda: _optional_url(environ, "TRACKER_ZENDESK_URL"), None)
    bind = check(lambda: _bind(environ.get("TRACKER_BIND", "").strip() or "127.0.0.1:8000"), "")

    def number(name: str, default: float, minimum: float, integer: bool) -> float:
        return check(lambda: _number(environ, name, default, minimum, integer), default)

    def optional(name: str, minimum: float) -> int | None:
        return int(number(name, 0, minimum, True)) if environ.get(name, "").strip() else None

    survey_delay = int(number("TRACKER_SURVEY_DELAY", 86400, 0, True))
    survey_throttle_days = int(number("TRACKER_SURVEY_THROTTLE_DAYS", 7, 0, True))
    survey_expiry_days = int(number("TRACKER_SURVEY_EXPIRY_DAYS", 14, 1, True))
    order_survey_delay = optional("TRACKER_ORDER_SURVEY_DELAY", 0)
    sweep_interval = number("TRACKER_SWEEP_INTERVAL", 15, 1, False)
    # The stored weights are 2^((t - 2026)/h) (see tracker/scoring.py); with h under two weeks
    # they would overflow a double within a few decades, and the score would be mostly noise.
    score_half_life_days = number("TRACKER_SCORE_HALF_LIFE_DAYS", 90, 14, False)
    at_risk_score = number("TRACKER_AT_RISK_SCORE", 50, 0, False)
    jira_api_url = check(lambda: _optional_url(environ, "TRACKER_JIRA_API_URL"), None)
    web_workers = int(number("TRACKER_WEB_WORKERS", default_web_workers(), 1, True))
    sign_in_failures = int(number("TRACKER_SIGN_IN_FAILURES", 10, 0, True))
    forwarded_allow_ips: tuple[str, ...] = check(lambda: _forwarded_allow_ips(environ), ("127.0.0.1", "::1"))
    retention_days = optional("TRACKER_RETENTION_DAYS", 1)
    log_retention_days = int(number("TRACKER_LOG_RETENTION_DAYS", 30, 1, True))
    event_urls: tuple[EventUrl, ...] = check(lambda: _event_urls(environ), ())
    writeback: dict[str, HelpdeskApi] = check(lambda: _writeback(environ, everything), {})
    case_owners: dict[str, str] = check(lambda: _case_owners(environ), {})
    case_due_hours = int(number("TRACKER_CASE_DUE_HOURS", 48, 1, True))
    case_resurvey = check(lambda: _flag(environ, "TRACKER_CASE_RESURVEY"), False)
    surveys = check(lambda: _surveys(environ, scale, rules), None)
    found.raise_any()
    return Settings(
        redis_url=redis_url,
        broker_url=broker_url,
        secret_key=secret,
        previous_secret_keys=previous,
        public_url=public_url,
        bind=bind,
        smtp_url=smtp_url,
        mail_from=mail_from,
        reply_domain=reply_domain,
        survey_delay=survey_delay,
        survey_throttle_days=survey_throttle_days,
        survey_expiry_days=survey_expiry_days,
        survey_scale=scale,
        order_survey_delay=order_survey_delay,
        sweep_interval=sweep_interval,
        score_half_life_days=score_half_life_days,
        at_risk_score=at_risk_score,
        source_secrets=sources,
        alert_urls=alert_urls,
        zendesk_url=zendesk_url,
        zendesk_email=environ.get("TRACKER_ZENDESK_EMAIL", "").strip() or None,
        zendesk_token=environ.get("TRACKER_ZENDESK_TOKEN", "").strip() or None,
        jira_api_url=jira_api_url,
        jira_api_user=environ.get("TRACKER_JIRA_API_USER", "").strip() or None,
        jira_api_token=environ.get("TRACKER_JIRA_API_TOKEN", "").strip() or None,
        **rules,  # type: ignore[arg-type]
        web_workers=web_workers,
        sign_in_failures=sign_in_failures,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=level,
        retention_days=retention_days,
        log_retention_days=log_retention_days,
        event_urls=event_urls,
        writeback=writeback,
        case_owners=case_owners,
        case_due_hours=case_due_hours,
        case_resurvey=case_resurvey,
        surveys_file=environ.get("TRACKER_SURVEYS_FILE", "").strip() or None,
        surveys=surveys,
    )
