"""The types of the notices the product emits (tracker.notify.events): a name for each, read by the settings too."""

from __future__ import annotations

# Sent to TRACKER_EVENT_URLS (SPEC.md §11); `url|type,type` limits a URL to some of them.
PUBLIC_TYPES = ("survey.sent", "survey.skipped", "survey.answered", "survey.changed", "survey.expired",
                "customer.at_risk", "case.opened", "case.updated")
# Only for the product's own targets (never sent to event URLs): a new ticket of a customer at risk.
TICKET_AT_RISK = "ticket.at_risk"
INTERNAL_TYPES = (TICKET_AT_RISK,)
TYPES = PUBLIC_TYPES + INTERNAL_TYPES
