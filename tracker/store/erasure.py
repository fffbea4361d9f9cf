"""GDPR erasure in storage: find everything of one customer and remove it, aggregates adjusted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracker.store import filed, keys
from tracker.store.due import wall_ms
from tracker.store.outbox import Outbox, removal_entry
from tracker.store.pairs import pairs_args
from tracker.store.records import order_summaries, profile_aliases
from tracker.store.reminders import reminder_member
from tracker.store.scores import ANSWERED, ATTEMPTS, ATTRIBUTED
from tracker.store.search import queue_index_name
from tracker.store.state import PERSON_CACHE_TTL_S
from tracker.store.sums import own_fields
from tracker.store.survey_codes import coded_mapping, picked_from
from tracker.store.surveys import aggregate_ids

SCAN_COUNT = 1000


class Removal(Outbox):
    """Surveys and answers leaving through the outbox: erased (SPEC §10) or retired (TRACKER_RETENTION_DAYS)."""

    def leave_survey(self, sid: str, email: str, op: str, cutoff_ms: int = 0,
                     now_ms: int = 0) -> tuple[int, int, int] | None:
        """Erase ("erase") or retire ("retire", when older than cutoff_ms and closed at now_ms) one survey and
        its answer through the outbox; None when it is not the customer's or (retiring) not old enough."""
        bucket = keys.bucket_of(sid)
        names = (*ANSWERED, *ATTRIBUTED, "sent_at")
        for _ in range(ATTEMPTS):
            row = picked_from(names, filed.read_many(self, [sid])[0])
            stored = {k: v or "" for k, v in zip(names, row, strict=True)}
            if stored["customer"] != email:
                return None
            # The survey counted as sent, and its answer (when it has one), for the entities it is attributed to.
            counted_for = aggregate_ids(stored)
            answered = counted_for if stored["rating"] else []
            sent_ms = int(stored["sent_at"]) if stored["sent_at"] else None
            if op == "retire":
                pipe = self.redis.pipeline(transaction=False)
                for kind, ident in [*answered, *(counted_for if sent_ms is not None else [])]:
                    pipe.sadd(keys.RETIRED_INDEX, f"{kind}|{ident}")  # index before data
                pipe.execute()
            body = removal_entry(sid, op, email, answered, stored, counted_for, sent_ms)
            names_of = [keys.survey(sid), keys.outbox(bucket), keys.outbox_seq(bucket), keys.survey_due(bucket),
                        keys.survey_filed(sid)]
            expect = pairs_args(coded_mapping(stored).items())
            if op == "retire":
                result = self.script("retire_survey")(
                    keys=names_of, args=[cutoff_ms, now_ms, reminder_member(sid), body, *expect])
            else:
                result = self.script("erase_survey")(keys=names_of, args=[reminder_member(sid), body, *expect])
            if int(result[0]) == -2:
                return None
            if int(result[0]) != -1:
                gone, removed, uncounted, seq = (int(x) for x in result)
                # Before the customer's keys go, every step about them must have reached them.
                self.forward_outbox(bucket, until_seq=seq, wait_s=self.forward_wait_s)
                return gone, removed, uncounted
        raise RuntimeError(f"the answer to {sid} kept changing while it was {op}d")


class Erasure(Removal):
    """Read a customer's footprint and erase it piece by piece, each piece safe to repeat."""

    def customer_footprint(self, email: str) -> dict[str, Any]:
        """Return what is stored about a customer: profile, tickets, orders, aliases and survey ids."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.customer(email, "profile"))
        pipe.zrange(keys.customer(email, "tickets"), 0, -1)
        pipe.zrange(keys.customer(email, "surveys"), 0, -1)
        pipe.zrange(keys.customer(email, "responses"), 0, -1)
        profile, tickets, surveyed, answered = pipe.execute()
        orders = order_summaries(profile)  # the profile keeps each order's summary
        return {"profile": own_fields(profile), "tickets": sorted(tickets), "orders": sorted(orders),
                "aliases": profile_aliases(profile), "sids": sorted(set(surveyed) | set(answered))}

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
        """Remove a customer's survey and answer and take what they counted off every aggregate.

        One script in the survey's slot deletes its hash (the answer in it too) and appends what comes off to the
        bucket's outbox; the bucket is forwarded before this returns (OutboxStuck when it cannot be: run the erasure
        again).
        Returns (survey removed, answer removed, sent count removed); a survey of someone else is left alone.
        """
        removed = self.leave_survey(sid, email, "erase")
        return removed or (0, 0, 0)

    def erase_records(self, email: str, tickets: Iterable[str], orders: Iterable[str],
                      aliases: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Delete the customer's tickets, orders, aliases, cached person records and memberships (the plain
        suppression list's among them); count the tickets, orders and aliases deleted and whether the address left
        the plain suppression list."""
        counts = {"tickets": 0, "orders": 0, "aliases": 0, "suppressed": 0}
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
                due_member = member if kind == "tickets" else keys.ORDER_DUE + member
                pipe.zrem(keys.due_of(due_member), due_member)
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
        people = sorted(self._cached_people(email))
        cached = self.redis.pipeline(transaction=False)
        for person in people:
            cached.hget(person, "email")
        for person, cached_email in zip(people, cached.execute(), strict=True):
            if (cached_email or "").strip().lower() == email:
                pipe.delete(person)
        pipe.zrem(keys.CUSTOMERS, email)
        queue_index_name(self, pipe, email, None)
        pipe.srem(keys.index("customer"), email)
        for rank in (keys.RANK_SCORE, keys.RANK_RECENT, keys.RANK_RESPONSES, keys.RANK_UNHAPPY, keys.RANK_VALUE,
                     keys.RANK_RISK, keys.RISK_RECENT, keys.RISK_RESPONSES):
            pipe.zrem(rank, email)
        pipe.srem(keys.RETIRED_INDEX, f"customer|{email}")  # the retired sums go with the customer's keys
        pipe.execute()
        # Kept by hash before (tracker.surveys.optout), no longer in plain: the address leaves the plain list.
        counts["suppressed"] = int(self.redis.srem(keys.SUPPRESSED, email))
        return counts

    def _cached_people(self, email: str) -> set[str]:
        """Name the cached vendor users that may be the customer's: those named in their "people" set and, until
        every user cached before there were such sets has expired, every one cached (a walk of the keyspace)."""
        named = set(self.redis.smembers(keys.customer(email, "people")))
        now_ms = wall_ms()
        since = self.redis.get(keys.PEOPLE_INDEXED)
        if since is None:  # nothing cached since: this erasure walks, and the sets name every user cached from now
            self.redis.set(keys.PEOPLE_INDEXED, now_ms, nx=True)
        elif now_ms - int(since) >= PERSON_CACHE_TTL_S * 1000:
            return named
        return named | set(self._scan(keys.person_cache("*", "*")))

    def erase_customer_keys(self, email: str) -> int:
        """Delete every key of the customer (keys.CUSTOMER_PARTS, no walk of the keyspace), the profile last (it
        names the aliases)."""
        gone = int(self.redis.delete(*(keys.customer(email, part) for part in keys.CUSTOMER_PARTS
                                       if part != "profile")))
        return gone + int(self.redis.delete(keys.customer(email, "profile")))

    def _scan(self, pattern: str) -> Iterable[str]:
        return self.redis.scan_iter(match=pattern, count=SCAN_COUNT)
