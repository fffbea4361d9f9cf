"""Which key layout a Redis holds, marking an empty one as this layout's, and the upgrade from layout 2.

Layout 2 kept every answer in a hash of its own (`t:{s<b>}:resp:<sid>`) beside its survey's; this layout keeps it
inside the survey's hash. A Redis holding layout 2's answer hashes but no layout mark was written by layout 2 (or by
the layout before the cluster one): the processes refuse it until `tracker upgrade-store` has folded every answer
in. Data without a mark and without such hashes was written by this layout after a flush or an empty restart.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from tracker.errors import StorageUnavailable
from tracker.store import commented, keys, time_index
from tracker.store.base import RedisBase
from tracker.store.customer_days import KEPT_DAYS, today
from tracker.store.survey_codes import CODES

# What layout_state says.
CURRENT = "current"  # marked with this layout
EMPTY = "empty"  # nothing written yet, or nothing an older layout needs brought over (the mark may be written)
UNMARKED = "unmarked"  # data without a mark, with layout 2's answer hashes: `tracker upgrade-store` brings it over
PRE_CLUSTER = "pre-cluster"  # the layout before the cluster one (keys.OLD_LAYOUT): export and replay
BEHIND = "behind"  # layout 3 to 10 (keys.LAYOUT_BEFORE ... LAYOUT_SUMMED): upgrade-store
FOLD_BATCH = 500  # layout-2 answer hashes folded per round trip
SAMPLED = 3  # oldest and newest answers looked up in layout 2's place when a Redis holds data but no mark


@dataclass(frozen=True)
class Folded:
    """What one upgrade pass did: answer hashes folded, found folded already (survey holding an answer)."""

    folded: int = 0
    superseded: int = 0


class Layout(RedisBase):
    """Read and write the layout mark, and fold layout 2's answers into their surveys."""

    noted_layout: str | None = None  # what note_layout last found (Store.from_url notes it once)

    seen_store_id: str | None = None  # the store's id as this process first found it (note_layout)

    def _store_id(self) -> str | None:
        """Name the store (keys.STORE_ID), giving it an id if it has none (a store marked before ids were drawn)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.STORE_ID, secrets.token_hex(8), nx=True)
        pipe.get(keys.STORE_ID)
        return pipe.execute()[1]

    def holds_its_data(self) -> bool:
        """Say whether this Redis still holds the store this process found when it opened it (one command): another
        store id, or none, means everything was lost since (a restart without persistence, a flush), whether or not
        a process started since has begun a new store there. A process that found no store (Redis down when it
        started) takes the one it finds now."""
        if self.seen_store_id is None:
            self.redis.ping()  # a Redis that does not answer says so (note_layout would pass it over)
            if self.note_layout() == CURRENT:
                self.seen_store_id = self._store_id()
            return True
        return bool(self.redis.get(keys.STORE_ID) == self.seen_store_id)

    def layout_state(self) -> str:
        """Say which layout this Redis holds (CURRENT, EMPTY, UNMARKED, BEHIND, PRE_CLUSTER, or an unknown mark),
        in one round trip."""
        marks = keys.written_marks()
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.LAYOUT)
        for name in marks:
            pipe.exists(name)
        mark, *held = pipe.execute()
        if any(held[marks.index(name)] for name in keys.OLD_LAYOUT):
            return PRE_CLUSTER  # whatever the mark says: nothing of this version reads those keys
        if mark == keys.LAYOUT_VERSION:
            return CURRENT
        if mark in (keys.LAYOUT_BEFORE, keys.LAYOUT_RENAMED, keys.LAYOUT_CODED, keys.LAYOUT_SETTLED,
                    keys.LAYOUT_RANKED, keys.LAYOUT_CHUNKED, keys.LAYOUT_FILED, keys.LAYOUT_SUMMED):
            return BEHIND
        if mark:
            return str(mark)
        if not any(held):
            return EMPTY
        return UNMARKED if self._answers_in_layout2() else EMPTY

    def _answers_in_layout2(self) -> bool:
        """Say whether answers of this Redis live in layout 2's hashes of their own (two round trips).

        Data without a mark is not proof of layout 2: a Redis flushed or restarted empty under running processes
        (whose store marked it once, at start) is written again without the mark. Layout 2 kept every answer's
        hash until the answer was erased, so its oldest and newest answers tell; a Redis with no answer at all
        has nothing to bring over either way.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(keys.RESPONSES, 0, SAMPLED - 1)
        pipe.zrange(keys.RESPONSES, -SAMPLED, -1)
        oldest, newest = pipe.execute()
        sids = sorted(set(oldest) | set(newest))
        if not sids:
            return False
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.exists(keys.layout2_answer(sid))
        return any(pipe.execute())

    def note_layout(self) -> str:
        """Mark an empty Redis as this layout's (SET NX, so any number of processes may race); return the state.

        A Redis that does not answer yet is left alone (EMPTY is returned): the start-up check asks again.
        """
        if self._pending:
            return EMPTY  # not answering yet: asking would only wait for the retries
        try:
            state = self.layout_state()
            if state == EMPTY:  # another process may have marked it meanwhile (with what it writes)
                state = CURRENT if self.redis.set(keys.LAYOUT, keys.LAYOUT_VERSION, nx=True) else self.layout_state()
                if state == CURRENT:
                    commented.mark_complete(self.redis)  # no answer yet: the forwarder indexes every one to come
                    # No vendor user cached yet: the addresses' "people" sets name every one to come (erasure).
                    self.redis.set(keys.PEOPLE_INDEXED, 0)
            if state == CURRENT and self.seen_store_id is None:
                self.seen_store_id = self._store_id()
        except StorageUnavailable:
            return EMPTY
        self.noted_layout = state
        return state

    def fold_layout2_answers(self, batch: int = FOLD_BATCH) -> Folded:
        """Fold every layout-2 answer hash into its survey's hash (SCAN over every master of a cluster), each by
        one script in its survey's slot; safe to run again at any point. The mark is the caller's next step."""
        folded = superseded = 0
        found: list[str] = []

        def fold(names: list[str]) -> tuple[int, int]:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                self.script("fold_answer")(keys=[name, keys.survey(keys.layout2_sid(name))], client=pipe)
            outcomes = [int(x) for x in pipe.execute()]
            return outcomes.count(1), outcomes.count(2)

        for name in self.redis.scan_iter(match=keys.LAYOUT2_ANSWERS, count=1000):
            found.append(name)
            if len(found) >= batch:
                done, dropped = fold(found)
                folded, superseded, found = folded + done, superseded + dropped, []
        if found:
            done, dropped = fold(found)
            folded, superseded = folded + done, superseded + dropped
        return Folded(folded, superseded)

    def code_survey_fields(self, batch: int = FOLD_BATCH) -> int:
        """Rename the fields of every survey's hash that layout 4 and earlier stored by name to their codes
        (survey_codes.CODES), each hash by one script (SCAN over every master of a cluster); safe to run again at
        any point. Return how many hashes held a name to rename."""
        args = [item for pair in CODES.items() for item in pair]
        renamed = 0
        found: list[str] = []

        def rename(names: list[str]) -> int:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                self.script("code_fields")(keys=[name], args=args, client=pipe)
            return sum(1 for count in pipe.execute() if int(count))

        for name in self.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000):
            found.append(name)
            if len(found) >= batch:
                renamed, found = renamed + rename(found), []
        return renamed + (rename(found) if found else 0)

    def move_ranks(self, batch: int = 1000) -> int:
        """Move each ranked set of customers from its layout-6 name to its own (keys.OLD_RANKS; on a cluster the two
        names are in other slots, so by copying, then deleting the old one); safe to run again at any point. Return
        how many customers' places were moved."""
        moved = 0
        for old, new in keys.OLD_RANKS.items():
            while rows := self.redis.zrange(old, 0, batch - 1, withscores=True):
                pipe = self.redis.pipeline(transaction=False)
                pipe.zadd(new, dict(rows))
                pipe.zrem(old, *[member for member, _ in rows])
                pipe.execute()
                moved += len(rows)
        return moved

    def move_time_indexes(self, batch: int = 1000) -> int:
        """Move the sorted sets in which layout 7 and earlier indexed every answer and sent survey by time
        (keys.RESPONSES, keys.SENT) into the chunked time indexes, a batch at a time, each batch placed before it
        leaves the old set; safe to run again at any point. Return how many entries were moved."""
        moved = 0
        for old, name in ((keys.RESPONSES, "resp"), (keys.SENT, "sent")):
            while rows := self.redis.zrange(old, 0, batch - 1, withscores=True):
                time_index.place(self, name, adds=[(sid, int(at)) for sid, at in rows])
                self.redis.zrem(old, *[sid for sid, _ in rows])
                moved += len(rows)
        return moved

    def move_sums_and_marks(self, batch: int = FOLD_BATCH) -> int:
        """Move every hash layout 9 kept apart into the hash that keeps its fields now (tracker.store.sums): each
        entity's high-water marks into its sums hash, each customer's sums and marks into their profile, one script
        per hash in its slot (SCAN over every master of a cluster); safe to run again at any point. Return how many
        hashes were moved."""
        moved = 0
        found: list[str] = []

        def move(names: list[str]) -> int:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                self.script("move_sums")(keys=[name, keys.layout9_home(name)], client=pipe)
            pipe.execute()
            return len(names)

        for pattern in keys.LAYOUT9_SUMS_MATCH:
            for name in self.redis.scan_iter(match=pattern, count=1000):
                found.append(name)
                if len(found) >= batch:
                    moved, found = moved + move(found), []
        return moved + (move(found) if found else 0)

    def rename_empty_tags(self) -> int:
        """Move the keys layout 10 named with an empty hash tag (a customer whose address begins with "}") to their
        names now (keys.customer): each dumped, restored under its new name with its expiry, then deleted (on a
        cluster the two names lie in different slots). Safe to run again at any point: a key whose new name is
        taken was restored before, and is only deleted. Return how many keys were moved."""
        moved = 0
        for name in list(self.redis.scan_iter(match=keys.LAYOUT10_EMPTY_TAG_MATCH, count=1000)):
            new = keys.layout10_moved(name)
            dumped, ttl = self.redis.dump(name), int(self.redis.pttl(name))
            if dumped is not None and ttl != -2 and not self.redis.exists(new):  # -2: expired meanwhile
                self.redis.restore(new, max(ttl, 0), dumped)  # 0: no expiry, as the key had none (-1)
                moved += 1
            self.redis.delete(name)
        return moved

    def trim_customer_days(self, batch: int = 1000) -> int:
        """Trim every customer's day buckets that carry no expiry (written before tracker.store.customer_days' rule)
        to the days a trend can still read, and give them their expiry, as a customer's next answer would; safe to
        run again at any point, beside live writes too. Return how many customers' buckets were trimmed."""
        trimmed, day, cursor = 0, today(int(time.time() * 1000)), 0
        while True:
            cursor, emails = self.redis.sscan(keys.index("customer"), cursor, count=batch)
            pipe = self.redis.pipeline(transaction=False)
            for email in emails:
                pipe.pttl(keys.daily("customer", email))
            lasting = [email for email, ttl in zip(emails, pipe.execute() if emails else [], strict=True)
                       if int(ttl) == -1]
            pipe = self.redis.pipeline(transaction=False)
            for email in lasting:
                self.script("trim_days")(keys=[keys.daily("customer", email)], args=[KEPT_DAYS, day],
                                         client=pipe)
            trimmed += sum(int(done) for done in pipe.execute()) if lasting else 0
            if int(cursor) == 0:
                return trimmed

    def mark_layout(self) -> None:
        """Write this layout's mark (after an upgrade)."""
        self.redis.set(keys.LAYOUT, keys.LAYOUT_VERSION)
