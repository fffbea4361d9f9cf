"""GDPR erasure in storage: find everything of one customer and remove it, aggregates adjusted."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from tracker.model import Aggregate
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.reminders import reminder_member
from tracker.store.scores import ALIVE, ATTEMPTS, COUNTED, RESIDUE, answer_of, delta_args, pairs_args
from tracker.store.surveys import aggregate_ids

LOG_BATCH = 1000
SCAN_COUNT = 1000
ALIAS_FIELD = "alias:"


def _glob_escape(text: str) -> str:
    """Escape a literal for a Redis MATCH pattern (emails may hold *, ?, [ and \\)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class Erasure(RedisBase):
    """Read a customer's footprint and erase it piece by piece, each piece safe to repeat."""

    def customer_footprint(self, email: str) -> dict[str, Any]:
        """Return what is stored about a customer: profile, tickets, orders, aliases and survey ids."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.customer(email, "profile"))
        pipe.smembers(keys.customer(email, "tickets"))
        pipe.smembers(keys.customer(email, "orders"))
        pipe.zrange(keys.customer(email, "surveys"), 0, -1)
        pipe.zrange(keys.customer(email, "responses"), 0, -1)
        profile, tickets, orders, surveyed, answered = pipe.execute()
        aliases = sorted(tuple(f[len(ALIAS_FIELD):].split(":", 1)) for f in profile
                         if f.startswith(ALIAS_FIELD) and ":" in f[len(ALIAS_FIELD):])
        return {"profile": profile, "tickets": sorted(tickets), "orders": sorted(orders),
                "aliases": aliases, "sids": sorted(set(surveyed) | set(answered))}

    def surveyed_state(self, due_members: list[str]) -> list[tuple[dict[str, str], list[tuple[str, int]]]]:
        """Return each ticket's (or order's) hash and its status history as (status, at) pairs."""
        pipe = self.redis.pipeline(transaction=False)
        for member in due_members:
            pipe.hgetall(keys.surveyed(member))
            pipe.zrange(keys.ticket_history(member), 0, -1, withscores=True)
        found = pipe.execute()
        return [(found[i], [(entry.rpartition("|")[2], int(at)) for entry, at in found[i + 1]])
                for i in range(0, len(found), 2)]

    def erase_survey(self, sid: str, email: str) -> tuple[int, int, int]:
        """Remove a customer's survey and answer and take what they counted off every aggregate, atomically.

        Returns (survey removed, answer removed, sent count removed); a survey of someone else is left alone.
        """
        for _ in range(ATTEMPTS):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(keys.survey(sid))
            pipe.hgetall(keys.response(sid))
            survey, response = pipe.execute()
            owner = survey.get("customer") or response.get("customer")
            if owner != email:
                return 0, 0, 0
            self.redis.zrem(keys.DUE, reminder_member(sid))
            answered = aggregate_ids(response) if response.get("source") else []
            sent = aggregate_ids(survey) if survey.get("source") else answered
            entity_keys: list[str] = []
            for kind, ident in [*answered, *sent]:
                entity_keys += [keys.aggregate(kind, ident), keys.daily(kind, ident), keys.index(kind)]
            answer = answer_of(response)
            unsent, _, _ = (-Aggregate.of_sent()).increments()
            result = self.script("erase_survey")(
                keys=[keys.survey(sid), keys.response(sid), keys.RESPONSES, keys.SENT,
                      keys.customer(email, "responses"), keys.customer(email, "surveys"), keys.ERASED,
                      *entity_keys],
                args=[sid, len(answered), *[ident for _, ident in [*answered, *sent]],
                      *pairs_args((f, response.get(f, "")) for f in COUNTED),
                      *delta_args(-answer.counted if answer else Aggregate()), *pairs_args(unsent),
                      *pairs_args((f, "") for f in ALIVE), *pairs_args(RESIDUE)])
            if result != -1:
                gone, removed, uncounted = result
                return int(gone), int(removed), int(uncounted)
        raise RuntimeError(f"the answer to {sid} kept changing while it was erased")

    def erase_log_entries(self, matches: Callable[[dict[str, str]], bool]) -> dict[str, int]:
        """Delete every entry of the event log and the dead letters whose fields match; return counts."""
        counts = {}
        for name, stream in (("log_events", keys.STREAM), ("dead_letters", keys.DEAD)):
            counts[name] = 0
            start = "-"
            while True:
                entries = self.redis.xrange(stream, min=start, count=LOG_BATCH)
                if not entries:
                    break
                doomed = [entry_id for entry_id, fields in entries if matches(fields)]
                if doomed:
                    pipe = self.redis.pipeline(transaction=False)
                    if stream == keys.STREAM:
                        pipe.xack(stream, keys.GROUP, *doomed)  # a pending entry must not come back empty
                    pipe.xdel(stream, *doomed)
                    pipe.execute()
                    counts[name] += len(doomed)
                start = "(" + entries[-1][0]
        return counts

    def erase_records(self, email: str, tickets: Iterable[str], orders: Iterable[str],
                      aliases: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Delete the customer's tickets, orders, aliases, cached person records and memberships."""
        counts = {"tickets": 0, "orders": 0, "aliases": 0}
        for kind, members, key_of in (("tickets", list(tickets), keys.ticket),
                                      ("orders", list(orders), keys.order)):
            owners = self.redis.pipeline(transaction=False)
            for member in members:
                owners.hget(key_of(member), "customer")
            pipe = self.redis.pipeline(transaction=False)
            for member, owner in zip(members, owners.execute(), strict=True):
                # A ticket another customer has since taken over is theirs now.
                if owner in (None, "", email):
                    pipe.delete(key_of(member))
                    if kind == "tickets":
                        pipe.delete(keys.ticket_history(member))
                    counts[kind] += owner is not None
                pipe.zrem(keys.DUE, member if kind == "tickets" else keys.ORDER_DUE + member)
            pipe.execute()
        alias_list = list(aliases)
        owners = self.redis.pipeline(transaction=False)
        for source, ident in alias_list:
            owners.get(keys.alias(source, ident))
        pipe = self.redis.pipeline(transaction=False)
        for (source, ident), owner in zip(alias_list, owners.execute(), strict=True):
            if owner == email:
                pipe.delete(keys.alias(source, ident))
                counts["aliases"] += 1
            pipe.delete(keys.person_cache(source, ident))
        # Vendor users cached by a look-up, under ids that never became aliases.
        people = list(self._scan(keys.person_cache("*", "*")))
        cached = self.redis.pipeline(transaction=False)
        for person in people:
            cached.hget(person, "email")
        for person, cached_email in zip(people, cached.execute(), strict=True):
            if (cached_email or "").strip().lower() == email:
                pipe.delete(person)
        pipe.zrem(keys.CUSTOMERS, email)
        pipe.srem(keys.index("customer"), email)
        pipe.zrem(keys.RANK_SCORE, email)
        pipe.srem(keys.SUPPRESSED, email)  # kept by hash before (tracker.surveys.optout), not in plain
        pipe.srem(keys.RETIRED_INDEX, f"customer|{email}")  # the retired sums go with the customer's keys
        pipe.execute()
        return counts

    def erase_customer_keys(self, email: str) -> int:
        """Delete every key under the customer's hash tag, the profile last (it names the aliases)."""
        profile = keys.customer(email, "profile")
        found = [k for k in self._scan(_glob_escape(keys.customer(email, "")) + "*") if k != profile]
        if found:
            self.redis.delete(*found)
        return len(found) + int(self.redis.delete(profile))

    def _scan(self, pattern: str) -> Iterable[str]:
        return self.redis.scan_iter(match=pattern, count=SCAN_COUNT)
