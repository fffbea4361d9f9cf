"""Ingest: drain the event log, enrich events through per-source hooks, and apply them."""

# Importing a source's look-up module registers its enrichment hook.
from tracker.ingest import jira, zendesk

__all__ = ["jira", "zendesk"]
