"""The files a setting names (TRACKER_SURVEYS_FILE, the templates of TRACKER_TEMPLATE_DIR): read whole, or one line
naming the variable."""

from __future__ import annotations

from pathlib import Path

from tracker.errors import ConfigError


def read_setting_file(variable: str, path: Path) -> str:
    """The UTF-8 text of a file a setting names, or ConfigError: `<variable>: cannot read <path>: <why>`."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{variable}: cannot read {path}: {problem}") from None
