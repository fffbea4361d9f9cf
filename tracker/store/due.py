"""The due sets surveys and reminders are sent from: leased claims, reschedules, drops and settling a send.

Every ticket bucket has a due set of its tickets ("<tkey>") and orders ("o|<okey>"), every survey bucket one
of its reminders ("r|<sid>"); a claim leases from all of them under one score, and every other operation
runs on the one set its member lives in (keys.due_of), in one slot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracker.model import Survey, SurveyedTicket
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.records import surveyed_from_hash
from tracker.store.survey_codes import coded_mapping
from tracker.store.surveys import survey_to_hash

DAY_MS = 86_400_000
# A ticket (or order) with no survey due or kept for is forgotten after this long without an event:
# an open ticket nobody touches for 90 days is abandoned (apply_ticket.lua, release_due.lua).
STATE_IDLE_MS = 90 * DAY_MS


def wall_ms() -> int:
    """Return the wall clock in ms: what Redis expiries are measured in (not the product's logical now)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claim:
    """What one claim leased: the lease score, the members (oldest due first), and whether a set had more."""

    claimed: int
    members: list[str] = field(default_factory=list)
    more: bool = False


class Due(RedisBase):
    """Claim due entries under a lease, and settle each one: reschedule, finish, drop or settle it as sent."""

    def claim_due(self, now_ms: int, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        """Lease up to limit due entries of every due set; return the lease score and their members."""
        claim = self.claim_all_due(now_ms, lease_ms, limit)
        return claim.claimed, claim.members

    def claim_all_due(self, now_ms: int, lease_ms: int, limit: int) -> Claim:
        """Lease up to limit due entries of each due set (one script per set, one round trip).

        `more` says some set gave limit entries, so more may be due there now.
        """
        until = now_ms + lease_ms
        pipe = self.redis.pipeline(transaction=False)
        for due_set in keys.due_sets():
            self.script("claim_due")(keys=[due_set], args=[now_ms, until, limit], client=pipe)
        found: list[tuple[float, str]] = []
        more = False
        for flat in pipe.execute():
            more = more or len(flat) >= 2 * limit
            found += [(float(flat[i + 1]), flat[i]) for i in range(0, len(flat), 2)]
        found.sort()
        return Claim(until, [member for _, member in found], more)

    def renew_claims(self, members: list[str], claimed: int, until_ms: int) -> list[str]:
        """Move the lease of the members this claim still holds on to until_ms; return those, in order."""
        if not members:
            return []
        by_set: dict[str, list[str]] = {}
        for member in members:
            by_set.setdefault(keys.due_of(member), []).append(member)
        pipe = self.redis.pipeline(transaction=False)
        for due_set, group in by_set.items():
            self.script("renew_due")(keys=[due_set], args=[claimed, until_ms, *group], client=pipe)
        held = {member for renewed in pipe.execute() for member in renewed}
        return [member for member in members if member in held]

    def reschedule(self, member: str, claimed: int, at_ms: int) -> bool:
        """Move a claimed due entry to at_ms unless another claim or a newer solve moved it; say whether it moved."""
        return bool(self.script("reschedule_due")(keys=[keys.due_of(member)], args=[member, claimed, at_ms]))

    def _release(self, member: str, claimed: int, sid: str = "", keep_until_ms: int | None = None,
                 client: Any = None, solved_at_ms: int | None = None) -> Any:
        """Drop a ticket's (order's) due entry this claim holds and set how long its state is kept."""
        state = [keys.surveyed(member)]
        if not member.startswith(keys.ORDER_DUE):
            state.append(keys.ticket_history(member))
        return self.script("release_due")(
            keys=[keys.due_of(member), *state],
            args=[member, claimed, wall_ms(), STATE_IDLE_MS, sid, "" if keep_until_ms is None else keep_until_ms,
                  "" if solved_at_ms is None else solved_at_ms],
            client=client)

    def _drop(self, member: str, claimed: int) -> bool:
        if member.startswith(keys.REMINDER_DUE):
            return bool(self.script("drop_due")(keys=[keys.due_of(member)], args=[member, claimed]))
        return bool(self._release(member, claimed))

    def drop_due(self, member: str, claimed: int) -> None:
        """Drop a claimed due entry unless another claim or a newer solve moved it."""
        self._drop(member, claimed)

    def settle_sent(self, member: str, claimed: int, sid: str, keep_until_ms: int,
                    solved_at_ms: int | None = None) -> None:
        """After the survey of a due ticket (order) went out: note its sid on the ticket (order), drop the due
        entry if this claim still holds it, and keep the ticket (order) only until keep_until_ms, when the
        survey can no longer be answered (a new solve before then keeps it again). Safe to repeat.

        A survey event holds no claim (claimed -1): it names the solve its survey is about (solved_at_ms), and
        the due entry goes when that is the ticket's current solve, as the sweep would only find it done."""
        self._release(member, claimed, sid, keep_until_ms, solved_at_ms=solved_at_ms)

    def surveyed_states(self, members: Sequence[str]) -> dict[str, SurveyedTicket | None]:
        """Return the stored state of the tickets (orders) due members stand for, None where none is stored, in one
        round trip (the drain's batch of survey events reads them at once).

        As stored: unlike Store.surveyed, no answer of the customer's stands in for the survey of a ticket without
        one. A member whose record does not read is left out, for the caller's own read to raise on.
        """
        unique = list(dict.fromkeys(members))
        if not unique:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for member in unique:
            pipe.hgetall(keys.surveyed(member))
        states: dict[str, SurveyedTicket | None] = {}
        for member, record in zip(unique, pipe.execute(), strict=True):
            try:
                states[member] = surveyed_from_hash(member, record)
            except ValueError:
                continue
        return states

    def finish_due(self, claimed: int, survey: Survey, status: str, reason: str, at_ms: int) -> None:
        """Record a skip or failure on the survey (once, counted once) and drop the due entry it came from."""
        flat = [x for pair in coded_mapping(survey_to_hash(survey)).items() for x in pair]
        pipe = self.redis.pipeline(transaction=False)
        self.script("finish_due")(keys=[keys.survey(survey.sid), keys.survey_filed(survey.sid)],
                                  args=[status, reason, at_ms, *flat], client=pipe)
        self._release(survey.tkey, claimed, client=pipe)
        closed, _ = pipe.execute()
        if closed:
            count = self.redis.pipeline(transaction=False)
            count.hincrby(keys.STATS, f"{status}:{reason}", 1)
            count.zadd(keys.customer(survey.customer, "surveys"), {survey.sid: at_ms})
            count.execute()

    def park_due(self, member: str, claimed: int, reason: str) -> None:
        """Drop a due entry that has no survey record to park, counting it as failed with reason."""
        if self._drop(member, claimed):
            self.redis.hincrby(keys.STATS, f"failed:{reason}", 1)

    def oldest_due(self, sets: Sequence[str] | None = None) -> float | None:
        """Return the lowest score over the due sets (the oldest due entry or lease), or None when all are empty."""
        pipe = self.redis.pipeline(transaction=False)
        for due_set in sets or keys.due_sets():
            pipe.zrange(due_set, 0, 0, withscores=True)
        scores = [rows[0][1] for rows in pipe.execute() if rows]
        return min(scores) if scores else None
