"""Log output: one JSON object per line for log collectors, plain text for a person at a terminal.

What is logged is the caller's business (never emails, names, comments or secrets); this module only
shapes it. The `extra` fields our own calls pass (survey, reason, attempt, ...) become top-level keys.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = frozenset({"tracker", "webhooks", "workers"})
# Every attribute a LogRecord has on its own; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, the extra fields, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Only our own extras: other libraries' are unvetted (Celery's `data` holds task arguments).
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        for name, value in vars(record).items() if own else ():
            if name not in _STANDARD and not name.startswith("_") and name not in entry:
                entry[name] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class SecretHiding(logging.Formatter):
    """Format with another formatter, then mask each secret in the line: a last guard for what libraries log (an
    error message that quotes a connection URL, a traceback), as our own lines never hold one."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        # As written, and as a JSON line escapes it (a " or \ in a password).
        self.secrets = sorted({form for secret in secrets for form in (secret, json.dumps(secret)[1:-1])},
                              key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """The passwords the tracker's URL settings hold (TRACKER_REDIS_URL, TRACKER_BROKER_URL, TRACKER_SMTP_URL, ...:
    every TRACKER_*_URL and *_URLS), as tracker.config.url_secrets finds them."""
    from tracker.config import url_secrets

    found: set[str] = set()
    for name, value in environ.items():
        if name.startswith("TRACKER_") and name.endswith(("_URL", "_URLS")):
            for url in value.split(","):
                found.update(url_secrets(url.strip()))
    return sorted(found)


def configure_logging(level: str, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Send logs to stderr: JSON lines when it is not a terminal (a collector reads it), text when it is; every line
    with the passwords of the URL settings masked (environment_secrets of environ, the process's environment by
    default)."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    is_tty = getattr(out, "isatty", lambda: False)()
    formatter: logging.Formatter = logging.Formatter(TEXT_FORMAT) if is_tty else JsonFormatter()
    secrets = environment_secrets(os.environ if environ is None else environ)
    handler.setFormatter(SecretHiding(formatter, secrets) if secrets else formatter)
    logging.basicConfig(level=level, handlers=[handler])
