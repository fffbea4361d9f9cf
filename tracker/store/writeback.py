"""Helpdesk write-back progress: how far a target got with one notice, so a retry never writes a note twice."""

from __future__ import annotations

from tracker.store import keys
from tracker.store.base import RedisBase


class Writeback(RedisBase):
    """Keep per (write-back target, notice) the last step done: "noted" (the note is on the ticket) or "done"."""

    def writeback_step(self, target: str, customer: str, event_id: str) -> str | None:
        """Return the last step a target finished for a notice, None before its first."""
        step: str | None = self.redis.get(keys.writeback_step(keys.bucket_of(customer), target, event_id))
        return step

    def mark_writeback_step(self, target: str, customer: str, event_id: str, step: str) -> None:
        """Record that a target finished a step for a notice (idempotent: the same step written again is the same)."""
        self.redis.set(keys.writeback_step(keys.bucket_of(customer), target, event_id), step,
                       ex=keys.WRITEBACK_STEP_DAYS * 86400)

    def forget_writeback_step(self, target: str, customer: str, event_id: str) -> None:
        """Forget a step begun and surely not finished (the helpdesk refused or was not reached): the next try writes
        without looking whether an earlier one wrote."""
        self.redis.delete(keys.writeback_step(keys.bucket_of(customer), target, event_id))
