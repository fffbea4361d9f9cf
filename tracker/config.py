"""Settings: read once from the environment, validated, passed everywhere else."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

SCALES = ("csat5", "csat3", "thumbs", "nps", "ces7")
# Every variable the product reads; docker-compose.yml and .env.example are tested against it.
KNOWN_VARIABLES = (
    "TRACKER_REDIS_URL",
    "TRACKER_BROKER_URL",
    "TRACKER_SECRET_KEY",
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
    "TRACKER_WEB_WORKERS",
    "TRACKER_LOG_LEVEL",
)
SOURCE_SECRET = re.compile(r"^TRACKER_SOURCE_([A-Z0-9_]+)_SECRET$")


class ConfigError(Exception):
    """A required variable is missing or a value is malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the processes need, built once by load_settings."""

    redis_url: str
    broker_url: str
    secret_key: str
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
    web_workers: int = 2
    log_level: str = "INFO"

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some values changed (tests and `tracker dev`)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def redact_url(url: str) -> str:
    """Hide the password of a URL so it can be shown in a message."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)).geturl()


def _url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...], default: str | None) -> str:
    value = environ.get(name, "").strip() or default
    if value is None:
        raise ConfigError(f"{name} is required (e.g. {schemes[0]}://localhost)")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.hostname or (parts.scheme == "unix" and parts.path)):
        raise ConfigError(f"{name} must be a {' or '.join(s + '://' for s in schemes)} URL, "
                          f"got {redact_url(value)!r}")
    try:
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {redact_url(value)!r}") from None
    return value


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float, integer: bool) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"TRACKER_BIND must be host:port, got {value!r}")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from environment variables, or raise ConfigError naming the bad one."""
    redis_url = _url(environ, "TRACKER_REDIS_URL", ("redis", "rediss", "unix"), None)
    broker_url = environ.get("TRACKER_BROKER_URL", "").strip() or redis_url
    if not broker_url.startswith(("redis://", "rediss://", "amqp://", "unix://", "sentinel://")):
        raise ConfigError(f"TRACKER_BROKER_URL must be a redis:// or amqp:// URL, got {redact_url(broker_url)!r}")
    secret = environ.get("TRACKER_SECRET_KEY", "").strip()
    if not secret:
        raise ConfigError("TRACKER_SECRET_KEY is required (a long random string; see .env.example)")
    if len(secret) < 16:
        raise ConfigError("TRACKER_SECRET_KEY must be at least 16 characters long")
    public_url = _url(environ, "TRACKER_PUBLIC_URL", ("http", "https"), "http://127.0.0.1:8000").rstrip("/")
    smtp_url = _url(environ, "TRACKER_SMTP_URL", ("smtp", "smtps"), None)
    scale = environ.get("TRACKER_SURVEY_SCALE", "").strip() or "csat5"
    if scale not in SCALES:
        raise ConfigError(f"TRACKER_SURVEY_SCALE must be one of {', '.join(SCALES)}, got {scale!r}")
    reply_domain = environ.get("TRACKER_REPLY_DOMAIN", "").strip() or None
    if reply_domain and not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}|localhost", reply_domain):
        raise ConfigError(f"TRACKER_REPLY_DOMAIN must be a domain name, got {reply_domain!r}")
    mail_from = environ.get("TRACKER_MAIL_FROM", "").strip() or "Support <support@localhost>"
    if "@" not in mail_from:
        raise ConfigError(f"TRACKER_MAIL_FROM must contain an email address, got {mail_from!r}")
    sources: dict[str, str] = {}
    for name, value in environ.items():
        match = SOURCE_SECRET.match(name)
        if match and value.strip():
            sources[match.group(1).lower()] = value.strip()
    alert_urls = tuple(
        _url({"TRACKER_ALERT_URLS": u.strip()}, "TRACKER_ALERT_URLS", ("http", "https"), None)
        for u in environ.get("TRACKER_ALERT_URLS", "").split(",") if u.strip())
    level = (environ.get("TRACKER_LOG_LEVEL", "").strip() or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"TRACKER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    zendesk_url = environ.get("TRACKER_ZENDESK_URL", "").strip().rstrip("/") or None
    if zendesk_url:
        _url(environ, "TRACKER_ZENDESK_URL", ("https", "http"), None)
    return Settings(
        redis_url=redis_url,
        broker_url=broker_url,
        secret_key=secret,
        public_url=public_url,
        bind=_bind(environ.get("TRACKER_BIND", "").strip() or "127.0.0.1:8000"),
        smtp_url=smtp_url,
        mail_from=mail_from,
        reply_domain=reply_domain,
        survey_delay=int(_number(environ, "TRACKER_SURVEY_DELAY", 86400, 0, True)),
        survey_throttle_days=int(_number(environ, "TRACKER_SURVEY_THROTTLE_DAYS", 7, 0, True)),
        survey_expiry_days=int(_number(environ, "TRACKER_SURVEY_EXPIRY_DAYS", 14, 1, True)),
        survey_scale=scale,
        order_survey_delay=(int(_number(environ, "TRACKER_ORDER_SURVEY_DELAY", 0, 0, True))
                            if environ.get("TRACKER_ORDER_SURVEY_DELAY", "").strip() else None),
        sweep_interval=_number(environ, "TRACKER_SWEEP_INTERVAL", 15, 1, False),
        # The stored weights are 2^((t - 2026)/h) (see tracker/scoring.py); with h under two weeks
        # they would overflow a double within a few decades, and the score would be mostly noise.
        score_half_life_days=_number(environ, "TRACKER_SCORE_HALF_LIFE_DAYS", 90, 14, False),
        at_risk_score=_number(environ, "TRACKER_AT_RISK_SCORE", 50, 0, False),
        source_secrets=sources,
        alert_urls=alert_urls,
        zendesk_url=zendesk_url,
        zendesk_email=environ.get("TRACKER_ZENDESK_EMAIL", "").strip() or None,
        zendesk_token=environ.get("TRACKER_ZENDESK_TOKEN", "").strip() or None,
        web_workers=int(_number(environ, "TRACKER_WEB_WORKERS", 2, 1, True)),
        log_level=level,
    )
