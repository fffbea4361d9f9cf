"""Notices: what the product tells the outside (events out, helpdesk notes, recovery cases), appended once each.

A notice goes to the stream of its customer's notice bucket, so one customer's notices keep their order; its id
names it for good (the `webhook-id` of every delivery of it), and appending it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.stream_sift import sifted


def notice_call(event_id: str, type_: str, customer: str, at_ms: int, data_json: str) -> tuple[list[str], list[Any]]:
    """Return the keys and arguments of emit_notice.lua for one notice (for a caller that queues it on a pipeline)."""
    bucket = keys.bucket_of(customer)
    return ([keys.notices(bucket), keys.notice_mark(bucket, event_id)],
            [event_id, type_, customer, at_ms, data_json, keys.NOTICE_MARK_DAYS * 86400])


class Notices(RedisBase):
    """Append notices to their bucket's stream, once per notice id."""

    def append_notice(self, event_id: str, type_: str, customer: str, at_ms: int, data_json: str) -> str | None:
        """Append a notice to its customer's bucket once; return its stream entry id, or None if appended before."""
        names, args = notice_call(event_id, type_, customer, at_ms, data_json)
        added = self.script("emit_notice")(keys=names, args=args)
        return str(added) if added else None

    def erase_notices(self, email: str) -> int:
        """Delete a customer's notices from their bucket's stream (GDPR erasure); return how many.

        Their ids' marks stay (they hold no personal data): an outbox entry or log entry of theirs forwarded again
        tells nothing again.
        """
        stream, gone = keys.notices(keys.bucket_of(email)), 0
        for doomed in sifted(self, stream, [email.lower()], lambda fields: fields.get("customer") == email):
            gone += int(self.redis.xdel(stream, *doomed))
        return gone

    def retire_old_notices(self, cutoff_ms: int) -> int:
        """Delete the notices about something older than cutoff_ms (TRACKER_RETENTION_DAYS); return how many."""
        return sum(self._drop_notices(bucket, lambda fields: int(fields.get("at") or 0) < cutoff_ms)
                   for bucket in range(keys.BUCKETS))

    def _drop_notices(self, bucket: int, doomed: Callable[[dict[str, str]], bool], page: int = 500) -> int:
        """Delete a bucket's notices that doomed says go, a page at a time; return how many."""
        stream, after, gone = keys.notices(bucket), "-", 0
        while True:
            rows = self.redis.xrange(stream, min=after, count=page)
            drop = [entry_id for entry_id, fields in rows if doomed(fields)]
            if drop:
                gone += int(self.redis.xdel(stream, *drop))
            if len(rows) < page:
                return gone
            after = f"({rows[-1][0]}"
