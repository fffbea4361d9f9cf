"""`tracker survey preview`: write the survey mail and every page a customer can see as files."""

from __future__ import annotations

from tracker.cli.base import UsageError


def write_preview(brand: str, source: str, locale: str, scale: str | None, out: str) -> int:
    """Write the mail and the pages for a brand, source and language into the folder out."""
    raise UsageError("tracker survey preview is not built yet")
