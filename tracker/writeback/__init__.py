"""Helpdesk write-back (SPEC.md §11): a note and tags on the ticket each answer is about, one target per helpdesk.

The interface every client builds on is described in tracker.writeback.base; CLIENTS names each source's client.
"""

from __future__ import annotations

from tracker.config import Settings
from tracker.writeback.base import Helpdesk, Note, WritebackTarget, note_for

CLIENTS: dict[str, type[Helpdesk]] = {}


def writeback_targets(settings: Settings) -> list[WritebackTarget]:
    """Return one write-back target per TRACKER_WRITEBACK source, in that order."""
    return [WritebackTarget(source, api) for source, api in settings.writeback.items()]


__all__ = ["CLIENTS", "Helpdesk", "Note", "WritebackTarget", "note_for", "writeback_targets"]
