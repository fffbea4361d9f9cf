"""The due sets surveys and reminders are sent from: leased claims, reschedules and drops."""

from __future__ import annotations

from tracker.model import Survey
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.surveys import survey_to_hash


class Due(RedisBase):
    """Claim due entries under a lease, and settle each one: reschedule, finish or drop it."""

    def claim_due(self, now_ms: int, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        """Lease up to limit due tickets; return the lease score and their keys."""
        until = now_ms + lease_ms
        claimed = self.script("claim_due")(keys=[keys.DUE], args=[now_ms, until, limit])
        return until, list(claimed)

    def renew_claims(self, members: list[str], claimed: int, until_ms: int) -> list[str]:
        """Move the lease of the members this claim still holds on to until_ms; return those, in order."""
        if not members:
            return []
        return list(self.script("renew_due")(keys=[keys.DUE], args=[claimed, until_ms, *members]))

    def reschedule(self, tkey: str, claimed: int, at_ms: int) -> bool:
        return bool(self.script("reschedule_due")(keys=[keys.DUE], args=[tkey, claimed, at_ms]))

    def finish_due(self, claimed: int, survey: Survey, status: str, reason: str, at_ms: int) -> None:
        """Record a skip or failure on the survey (once) and drop the due entry it came from."""
        flat = [x for pair in survey_to_hash(survey).items() for x in pair]
        self.script("finish_due")(
            keys=[keys.survey(survey.sid), keys.DUE, keys.STATS, keys.customer(survey.customer, "surveys")],
            args=[survey.tkey, claimed, status, reason, at_ms, survey.sid, *flat])

    def drop_due(self, tkey: str, claimed: int) -> None:
        self.script("drop_due")(keys=[keys.DUE], args=[tkey, claimed])

    def park_due(self, member: str, claimed: int, reason: str) -> None:
        """Drop a due entry that has no survey record to park, counting it as failed with reason."""
        if self.script("drop_due")(keys=[keys.DUE], args=[member, claimed]):
            self.redis.hincrby(keys.STATS, f"failed:{reason}", 1)
