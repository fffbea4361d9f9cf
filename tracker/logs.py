"""Log output: one JSON object per line for log collectors, plain text for a person at a terminal.

What is logged is the caller's business (never emails, names, comments or secrets); this module only
shapes it. The `extra` fields our own calls pass (survey, reason, attempt, ...) become top-level keys.
"""

from __future__ import annotations

import json
import logging
import sys
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


def configure_logging(level: str, stream: IO[str] | None = None) -> None:
    """Send logs to stderr: JSON lines when it is not a terminal (a collector reads it), text when it is."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    is_tty = getattr(out, "isatty", lambda: False)()
    handler.setFormatter(logging.Formatter(TEXT_FORMAT) if is_tty else JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler])
