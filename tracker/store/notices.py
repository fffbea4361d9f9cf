"""Notices: what the product tells the outside (events out, helpdesk notes, recovery cases), appended once each.

A notice goes to the stream of its customer's notice bucket, so one customer's notices keep their order; its id
names it for good (the `webhook-id` of every delivery of it), and appending it again changes nothing.
"""

from __future__ import annotations

from tracker.store import keys
from tracker.store.base import RedisBase


class Notices(RedisBase):
    """Append notices to their bucket's stream, once per notice id."""

    def append_notice(self, event_id: str, type_: str, customer: str, at_ms: int, data_json: str) -> str | None:
        """Append a notice to its customer's bucket once; return its stream entry id, or None if appended before."""
        bucket = keys.bucket_of(customer)
        added = self.script("emit_notice")(
            keys=[keys.notices(bucket), keys.notice_mark(bucket, event_id)],
            args=[event_id, type_, customer, at_ms, data_json, keys.NOTICE_MARK_DAYS * 86400])
        return str(added) if added else None
