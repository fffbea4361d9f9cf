"""Receive helpdesk and shop webhooks: verify, parse with a source adapter, append to the event log."""
