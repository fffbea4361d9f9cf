"""What every `tracker` subcommand shares: the usage error, the settings it needs, the store."""

from __future__ import annotations

import os
from typing import Any

from tracker.config import Settings, load_settings


class UsageError(Exception):
    """A command line that names something wrong; the message says what."""


def settings_for(needs: str = "all") -> Settings:
    """Read the settings from the environment: "all" for the processes, "store" for store-only commands."""
    return load_settings(os.environ, needs=needs)


def open_store(settings: Settings) -> Any:
    """Open the Redis store the settings name."""
    from tracker.store import Store

    return Store.from_url(settings.redis_url)
