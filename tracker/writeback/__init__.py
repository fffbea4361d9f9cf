"""Helpdesk write-back (SPEC.md §11): a note and tags on the ticket each answer is about, one target per helpdesk.

The interface every client builds on is described in tracker.writeback.base; CLIENTS names each source's client.
"""

from __future__ import annotations

from tracker.config import HelpdeskApi, Settings
from tracker.writeback.base import Helpdesk, Note, WritebackTarget, note_for
from tracker.writeback.chatwoot import Chatwoot
from tracker.writeback.freshdesk import Freshdesk
from tracker.writeback.gorgias import Gorgias
from tracker.writeback.helpscout import HelpScout
from tracker.writeback.intercom import Intercom
from tracker.writeback.jira import Jira
from tracker.writeback.zendesk import Zendesk

# One entry per source; each client module documents the vendor calls it makes.
CLIENTS: dict[str, type[Helpdesk]] = {
    "zendesk": Zendesk,
    "freshdesk": Freshdesk,
    "helpscout": HelpScout,
    "gorgias": Gorgias,
    "intercom": Intercom,
    "chatwoot": Chatwoot,
    "jira": Jira,
}


def writeback_target(source: str, api: HelpdeskApi) -> WritebackTarget:
    """Return the write-back target of one source, with its client for the API's credentials."""
    return WritebackTarget(source, CLIENTS[source](api) if source in CLIENTS else None)


def writeback_targets(settings: Settings) -> list[WritebackTarget]:
    """Return one write-back target per TRACKER_WRITEBACK source, in that order."""
    return [writeback_target(source, api) for source, api in settings.writeback.items()]


__all__ = ["CLIENTS", "Helpdesk", "Note", "WritebackTarget", "note_for", "writeback_target", "writeback_targets"]
