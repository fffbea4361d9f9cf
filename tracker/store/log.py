"""The event log: 16 Redis Streams (shards), appended to by the receiver, each applied by one applier at a time.

An event goes to the shard of its route (the source and customer id, else the order, else the email),
so one customer's events stay in one shard, in order. A delivery is appended once per shard it spans
(a portion mark per shard) and marked seen in the shard its id falls in, in the same round trip, where a
retry finds it. Each shard keeps its progress as a cursor (the newest entry
applied, parked or set waiting) under a lease, and the entries waiting for their customer in a set of their own.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from redis.exceptions import NoScriptError

from tracker.events import event_record
from tracker.model import Event
from tracker.store import keys
from tracker.store.base import RedisBase, raised_first
from tracker.store.stream_sift import PAGE, sifted

DEDUPE_TTL = 7 * 86400  # longer than any vendor's retry schedule
KICK_TTL_MS = 1000
# The shards fall in this many kick groups, each with at most one drain task pending: a task costs the web a Celery
# publish and the worker far more than the drain of a few events, so one task drains every kicked shard of its
# group (README, "Kicks"). A group's mark lives until its task takes it, at most this long (a lost task).
KICK_GROUPS = 4
KICK_GROUP_TTL_MS = 1000
SHARDS = range(keys.BUCKETS)
START = "0-0"  # the cursor of a shard nothing was applied from yet
MARK = "@"  # a delivery mark written with its portions: "@" and their shards ("@3,7"); "1": written after them


_RECORD_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # json.dumps builds one per call


def _payload(record: dict[str, Any]) -> str:
    """Serialise a log record compactly and with sorted keys, so that one event is always one string."""
    return _RECORD_JSON.encode(record)


def route_of(event: Event) -> str:
    """Return what an event is routed by: its customer's id at the source, else its order, else the email."""
    if event.customer.id:
        return f"{event.source}:{event.customer.id}"
    if event.order is not None:
        return f"{event.source}:order:{event.order.id}"
    return event.customer.email or ""


def shard_of(event: Event) -> int:
    return keys.bucket_of(route_of(event))


def kicked_shards(outcome: int) -> list[int]:
    """Return the shards whose drain an append_delivery outcome asks to kick (a duplicate's too)."""
    mask = ~outcome if outcome < 0 else outcome
    return [shard for shard in SHARDS if mask >> shard & 1]


def _marked_shards(mark: str) -> list[int]:
    """Return the shards a delivery mark names ("@3,7"; none in a mark written the old way, "1")."""
    return [int(shard) for shard in mark[len(MARK):].split(",") if shard] if mark.startswith(MARK) else []


def kick_group(shard: int) -> int:
    return shard % KICK_GROUPS


def entry_key(entry_id: str) -> tuple[int, int]:
    """Order stream ids as Redis does: by time, then sequence."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class LogLag(NamedTuple):
    """The event log's backlog over every shard: entries held, waiting for their customer, and not yet read."""

    length: int
    pending: int
    lag: int


class Waiting(NamedTuple):
    """An entry set aside until its customer is known: how often it was tried, and what it waits for."""

    entry_id: str
    due_ms: int
    tries: int
    reason: str  # "alias" (the customer's id is not known yet) or "lookup" (the source's look-up was down)
    source: str
    customer_id: str

    def info(self) -> str:
        return f"{self.tries}|{self.reason}|{self.source}|{self.customer_id}"


class ShardOpened(NamedTuple):
    """A shard an applier holds now: its cursor (the newest entry id passed) and its first entries after it."""

    after: str
    entries: list[tuple[str, str]]


class ShardStep(NamedTuple):
    """What an applier records of one shard in a step of its drain, and what it reads next (step_log_shards)."""

    shard: int
    passed: Sequence[str]  # the entries just applied, parked or set waiting, in order (none: nothing to record)
    waiting: Sequence[Waiting]  # those of them set waiting
    after: str  # the cursor once they are passed
    look: bool  # the batch was short: take the shard's last look (ShardLook); else read its next batch


class ShardLook(NamedTuple):
    """What an applier's last look at a shard that seemed empty found (log_close.lua: the kick released, the lease
    too when nothing came and nothing waits), or the next batch it read (step_log_shards)."""

    entries: list[tuple[str, str]]  # entries that came meanwhile: the applier goes on, the lease kept
    waiting: bool  # none came, but entries wait for their customer: the lease kept for the pass over them
    released: bool  # none came, none wait: the shard is done and its lease released, in the same step
    lost: bool = False  # the lease is another applier's now: nothing was done


def _entries(reply: Sequence[Any]) -> list[tuple[str, str]]:
    """Return a script's XRANGE reply as (entry id, record) pairs."""
    return [(entry_id, dict(zip(fields[::2], fields[1::2], strict=True)).get("e", "")) for entry_id, fields in reply]


class EventLog(RedisBase):
    """Append deliveries to the shards, and read, advance, park and trim each shard's entries."""

    # Appending -----------------------------------------------------------------------------------

    def append_delivery(self, delivery_id: str, events: Iterable[Event], source: str = "replay",
                        beside: Sequence[Mapping[str, Any]] = ()) -> int:
        """Store a delivery's events unless it was seen; return the shards to kick as a bit mask (bit k: kick shard
        k's drain), read with kicked_shards: the mask itself for a delivery stored, its complement (~mask, below
        zero; -1 when none) for a duplicate. beside: fields each event's log record keeps beside the event, in the
        events' order (a replayed survey's `restore`, tracker.ingest.restore); the record's own fields stand.

        One round trip. Each shard's portion is appended at most once (its portion mark), so a delivery retried
        after a crash half-way stores the rest and nothing twice. The delivery is marked (and counted) in the
        same round trip, queued after its portions: a mark written although a portion failed names the
        portions' shards, and a retry completes them. A portion that a duplicate appended on a shard its mark
        does not name (another body under the same id) is withdrawn (log_withdraw.lua) in a second round trip.
        """
        portions: dict[int, list[str]] = defaultdict(list)
        for n, event in enumerate(events):
            record = event_record(event)
            portions[shard_of(event)].append(_payload({**beside[n], **record} if n < len(beside) else record))
        shards = sorted(portions)
        home = keys.bucket_of(delivery_id)
        calls = [self._by_source("append_delivery",
                                 [keys.log_part(shard, delivery_id), keys.stream(shard), keys.log_kick(shard),
                                  keys.log_cursor(shard)], [DEDUPE_TTL, KICK_TTL_MS, *portions[shard]])
                 for shard in shards]
        calls.append(self._by_source("log_mark_delivery", [keys.seen(home, delivery_id), keys.received(home)],
                                     [DEDUPE_TTL, source, MARK + ",".join(map(str, shards))]))
        *replies, marked = raised_first(self.round_trip(calls))  # raises unless every portion and the mark are in
        appended = {shard: reply for shard, reply in zip(shards, replies, strict=True) if reply != -1}
        # A portion found appended belongs to an attempt that died before marking the delivery: its kick
        # may never have been sent, so it is kicked again.
        kicks = sum(1 << shard for shard, reply in zip(shards, replies, strict=True) if reply == -1 or reply[0])
        if marked == 1:
            return kicks
        named = set(_marked_shards(marked[1]))
        kept = [shard for shard, reply in appended.items()
                if shard in named or not self._withdrawn(shard, delivery_id, reply[1:])]
        if not kept:
            # A kick this call set is still sent: an append that found it set sent no task of its own.
            return ~sum(1 << shard for shard, reply in appended.items() if reply[0])
        # Marked by an attempt that failed before this portion was in (or by one racing this): this call
        # completes the delivery, which that attempt counted as accepted; the mark counted it again.
        self.redis.hincrby(keys.received(home), f"{source}|duplicate", -1)
        return kicks

    def _withdrawn(self, shard: int, delivery_id: str, entry_ids: list[str]) -> bool:
        """Withdraw a portion a duplicate appended, unless an applier may have read it (then it is applied)."""
        return bool(self._run("log_withdraw", [keys.log_lease(shard), keys.log_cursor(shard), keys.stream(shard),
                                               keys.log_part(shard, delivery_id)], entry_ids))

    def claim_kick(self, group: int) -> bool:
        """Say whether the caller is to send the drain task of a group of shards: none is pending for it now.

        Called after an append set a shard's kick: a task pending reads the appended entries when it starts
        (kicked_work), and one draining when it is done (take_kicked, in ingest.drain_group)."""
        return bool(self.redis.set(keys.log_kick_group(group), "1", nx=True, px=KICK_GROUP_TTL_MS))

    def forget_kick(self, group: int) -> None:
        """Let the group's next kick send a task again (the one claimed could not be sent)."""
        self.redis.delete(keys.log_kick_group(group))

    def kicked_work(self, group: int) -> list[int]:
        """Return a group's shards holding unread entries, its pending mark kept: what its task drains first."""
        return self.shards_with_work([shard for shard in SHARDS if kick_group(shard) == group], waiting=False)

    def take_kicked(self, group: int) -> list[int]:
        """Take a group's pending mark, then return its shards holding unread entries, in that order: in one round
        trip on a standalone Redis (a pipeline runs in order), in two on a cluster (the mark's node and the shards'
        may differ, and a pipeline over several nodes keeps no order between them).

        An append that found the mark set (and sent no task) was in its stream before: it is read here. One after
        the mark is taken claims it and sends a task of its own. Unread entries, not the shards' kicks, say what
        to drain: a kick lives a second, a task may wait for a worker far longer."""
        taken = ("DEL", keys.log_kick_group(group))
        if self.is_cluster:
            self.redis.execute_command(*taken)
            return self.kicked_work(group)
        return self.shards_with_work([shard for shard in SHARDS if kick_group(shard) == group], waiting=False,
                                     first=taken)

    def _by_source(self, name: str, script_keys: list[str], args: list[Any]) -> tuple[Any, ...]:
        """A script call sent with others by its source (EVAL): no NOSCRIPT to recover from, no SCRIPT EXISTS first."""
        return ("EVAL", self.script(name).source, len(script_keys), *script_keys, *args)

    def _run(self, name: str, script_keys: list[str], args: list[Any]) -> Any:
        """Run a packaged script by its SHA as one plain command (the script wrappers cost a third of it again)."""
        script = self.script(name)
        try:
            return self.redis.execute_command("EVALSHA", script.sha, len(script_keys), *script_keys, *args)
        except NoScriptError:  # not loaded on this server yet (or flushed): the wrapper loads it and runs it
            return script(keys=script_keys, args=args)

    def known_delivery(self, delivery_id: str, source: str) -> bool:
        """Say whether a delivery was appended already, counting it as a duplicate when it was.

        One round trip for a delivery not seen or marked the old way, two for one whose mark names its
        portions: a portion found missing (the attempt that marked it failed half-way) undoes the mark and
        the counts, and the delivery is not a duplicate. The receiver asks it of a verified repeat whose body
        it refuses (one that parses is appended, and append_delivery finds the mark).
        """
        home = keys.bucket_of(delivery_id)
        mark_keys = [keys.seen(home, delivery_id), keys.received(home)]
        mark = self._run("count_if_seen", mark_keys, [source])
        if not isinstance(mark, str) or not mark.startswith(MARK):
            return bool(mark)  # 0: not seen; "1": marked once every portion was in
        pipe = self.redis.pipeline(transaction=False)
        for shard in _marked_shards(mark):
            pipe.exists(keys.log_part(shard, delivery_id))
        if all(pipe.execute()):
            return True
        self.script("log_unmark_delivery")(keys=mark_keys, args=[mark, source])
        return False

    def delivered(self, delivery_id: str) -> bool:
        """Say whether a delivery was seen within the dedupe window."""
        return bool(self.redis.exists(keys.seen(keys.bucket_of(delivery_id), delivery_id)))

    # Reading -------------------------------------------------------------------------------------

    def iter_log(self, batch: int = 500) -> Iterator[str]:
        """Yield every record in the event log, oldest first across the shards."""
        merged = heapq.merge(*(self._iter_shard(shard, batch) for shard in SHARDS), key=lambda e: entry_key(e[0]))
        for _entry_id, payload in merged:
            if payload:
                yield payload

    def _iter_shard(self, shard: int, batch: int) -> Iterator[tuple[str, str]]:
        start = "-"
        while True:
            entries = self.redis.xrange(keys.stream(shard), min=start, count=batch)
            for entry_id, fields in entries:
                yield entry_id, fields.get("e", "")
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0]

    def log_position(self, shard: int) -> str:
        """Return the id of the newest entry of a shard applied, parked or set waiting (START when none)."""
        return self.redis.hget(keys.log_cursor(shard), "id") or START

    def read_log(self, shard: int, after: str, count: int) -> list[tuple[str, str]]:
        """Return up to count entries of a shard after the given id, as (entry id, record)."""
        entries = self.redis.xrange(keys.stream(shard), min=f"({after}", count=count)
        return [(entry_id, fields.get("e", "")) for entry_id, fields in entries]

    def shards_with_work(self, shards: Sequence[int], waiting: bool = True,
                         first: tuple[Any, ...] | None = None) -> list[int]:
        """Return the shards holding entries after their cursor (or, when asked, waiting entries): one round trip,
        with the command first (when given) ahead of the look."""
        pipe = self.redis.pipeline(transaction=False)
        if first:
            pipe.execute_command(*first)
        for shard in shards:
            pipe.hget(keys.log_cursor(shard), "id")
            pipe.xrevrange(keys.stream(shard), count=1)
            pipe.zcard(keys.log_waiting(shard))
        replies = pipe.execute()[1 if first else 0:]
        return [shard for shard, cursor, newest, held in zip(shards, replies[0::3], replies[1::3], replies[2::3],
                                                             strict=True)
                if (newest and entry_key(newest[0][0]) > entry_key(cursor or START)) or (waiting and held)]

    def log_entries(self, shard: int, entry_ids: list[str]) -> dict[str, str]:
        """Return the records of the given entries of a shard that are still in it."""
        pipe = self.redis.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xrange(keys.stream(shard), min=entry_id, max=entry_id)
        found: dict[str, str] = {}
        for entry_id, entries in zip(entry_ids, pipe.execute(), strict=True):
            if entries:
                found[entry_id] = entries[0][1].get("e", "")
        return found

    def waiting_entries(self, shard: int, count: int) -> list[Waiting]:
        """Return up to count of the shard's waiting entries, the soonest due first."""
        due = self.redis.zrange(keys.log_waiting(shard), 0, count - 1, withscores=True)
        if not due:
            return []
        infos = self.redis.hmget(keys.log_tries(shard), [entry_id for entry_id, _ in due])
        waiting = []
        for (entry_id, due_ms), info in zip(due, infos, strict=True):
            tries, reason, source, customer_id = (info or "0|alias||").split("|", 3)
            waiting.append(Waiting(entry_id, int(due_ms), int(tries), reason, source, customer_id))
        return waiting

    def aliases_known(self, aliases: list[tuple[str, str]]) -> list[str | None]:
        """Return the email each (source, customer id) is an alias of, None where none is known (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for source, customer_id in aliases:
            pipe.get(keys.alias(source, customer_id))
        return pipe.execute() if aliases else []

    # Applying ------------------------------------------------------------------------------------

    def open_log_shards(self, shards: Sequence[int], token: str, ttl_ms: int, count: int) -> dict[int, ShardOpened]:
        """Take shards' leases and read up to count entries after each one's cursor, in one round trip; return the
        shards taken. A shard another applier holds, or one that holds nothing to apply (nothing unread, nothing
        waiting: its lease is then not taken), is left out."""
        replies = raised_first(self.round_trip([
            self._by_source("log_open", [keys.log_lease(shard), keys.log_cursor(shard), keys.stream(shard),
                                         keys.log_waiting(shard)], [token, ttl_ms, count]) for shard in shards]))
        return {shard: ShardOpened(reply[1], _entries(reply[2]))
                for shard, reply in zip(shards, replies, strict=True) if reply and int(reply[0])}

    def step_log_shards(self, token: str, ttl_ms: int, count: int,
                        steps: Sequence[ShardStep]) -> dict[int, tuple[bool, ShardLook]]:
        """Record a drain's step over several shards and read on, in one round trip: for each shard, advance_log
        with what it passed, then its next batch (the entries after its cursor) or, after a short batch, its last
        look: the kick released and the entries after the cursor read, the lease released too when none came and
        none wait. An append before the look is read by it, one after it kicks a new drain. Returns by shard
        whether the step was recorded (False: the lease is another applier's now, nothing written) and what the
        read or the look found."""
        commands: list[tuple[Any, ...]] = []
        for step in steps:
            if step.passed:
                args: list[Any] = [token, ttl_ms, step.passed[-1], len(step.passed), 0]
                for entry in step.waiting:
                    args += [entry.entry_id, entry.due_ms, entry.info()]
                commands.append(self._by_source("log_advance", self._advance_keys(step.shard), args))
            if step.look:
                commands.append(self._by_source("log_close", [keys.log_kick(step.shard), keys.log_lease(step.shard),
                                                              keys.stream(step.shard), keys.log_waiting(step.shard)],
                                                [token, step.after, count]))
            else:
                commands.append(("XRANGE", keys.stream(step.shard), f"({step.after}", "+", "COUNT", count))
        replies = iter(raised_first(self.round_trip(commands)))
        found: dict[int, tuple[bool, ShardLook]] = {}
        for step in steps:
            recorded = bool(next(replies)) if step.passed else True
            reply = next(replies)
            if not step.look:
                read = [(entry_id, fields.get("e", "")) for entry_id, fields in reply]
                found[step.shard] = (recorded, ShardLook(read, waiting=False, released=False))
                continue
            outcome = int(reply[0])
            found[step.shard] = (recorded, ShardLook(_entries(reply[1]) if outcome == 1 else [], waiting=outcome == 2,
                                                     released=outcome == 0, lost=outcome == 3))
        return found

    def release_log_leases(self, shards: Sequence[int], token: str) -> None:
        """Let shards' leases go, in one round trip: each only while this token still holds it."""
        raised_first(self.round_trip([self._by_source("release_if", [keys.log_lease(shard)], [token])
                                      for shard in shards]))

    @staticmethod
    def _advance_keys(shard: int) -> list[str]:
        return [keys.log_lease(shard), keys.log_cursor(shard), keys.log_waiting(shard), keys.log_tries(shard)]

    def take_log_lease(self, shard: int, token: str, ttl_ms: int) -> bool:
        """Become the one applier of a shard for ttl_ms; say whether this token got it."""
        return bool(self.redis.set(keys.log_lease(shard), token, nx=True, px=ttl_ms))

    def advance_log(self, shard: int, token: str, ttl_ms: int, passed: Sequence[str] = (),
                    done: Iterable[str] = (), waiting: Iterable[Waiting] = ()) -> bool:
        """Move a shard's cursor past the passed entries, settle and set waiting entries, renew the lease.

        Nothing is written, and False returned, when the lease has gone to another applier meanwhile.
        """
        gone = list(done)
        args: list[Any] = [token, ttl_ms, passed[-1] if passed else "", len(passed), len(gone), *gone]
        for entry in waiting:
            args += [entry.entry_id, entry.due_ms, entry.info()]
        return bool(self.script("log_advance")(keys=self._advance_keys(shard), args=args))

    def dead_letter(self, shard: int, entry_id: str, payload: str, reason: str) -> None:
        """Park an entry that cannot be applied, for inspection and replay (the cursor passes it as applied)."""
        self.redis.xadd(keys.DEAD, {"e": payload, "origin": entry_id, "shard": str(shard), "reason": reason[:200]})

    def dead_letter_page(self, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Return the parked entries after an entry id ("-": from the first), oldest first, at most count."""
        return list(self.redis.xrange(keys.DEAD, min=after if after == "-" else f"({after}", count=count))

    def requeue_dead_letter(self, entry_id: str, fields: dict[str, str]) -> bool:
        """Put a parked entry back at the end of its shard, counted as an append (so the backlog and the drain see
        it), then take it off the dead letters; False when it holds no record or names no shard. A crash between the
        two steps leaves it on both: applying is idempotent, so it counts once."""
        payload, shard = fields.get("e"), fields.get("shard", "")
        if payload is None or not shard.isdigit() or int(shard) not in SHARDS:
            return False
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(keys.stream(int(shard)), {"e": payload})
        pipe.hincrby(keys.log_cursor(int(shard)), "appended", 1)
        pipe.execute()
        self.redis.xdel(keys.DEAD, entry_id)
        return True

    # Backlog, retention and erasure --------------------------------------------------------------

    def lag(self) -> LogLag:
        """Return how many entries the shards hold, how many wait for their customer, and how many are unread."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in SHARDS:
            pipe.xlen(keys.stream(shard))
            pipe.zcard(keys.log_waiting(shard))
            pipe.hmget(keys.log_cursor(shard), ["appended", "passed"])
        replies = pipe.execute()
        length = sum(int(n) for n in replies[0::3])
        pending = sum(int(n) for n in replies[1::3])
        unread = sum(max(0, int(appended or 0) - int(passed or 0)) for appended, passed in replies[2::3])
        return LogLag(length, pending, unread)

    def trim_log(self, cutoff_ms: int) -> int:
        """Drop log entries appended before the cutoff that are applied (never one unread or waiting), and the
        dead letters parked before it; return how many went."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in SHARDS:
            self.script("log_trim")(keys=[keys.stream(shard), keys.log_cursor(shard), keys.log_waiting(shard)],
                                    args=[cutoff_ms], client=pipe)
        pipe.xtrim(keys.DEAD, minid=cutoff_ms, approximate=False)
        return sum(int(n) for n in pipe.execute())

    def erase_log_entries(self, needles: Sequence[str], matches: Callable[[dict[str, str]], bool],
                          batch: int = PAGE) -> dict[str, int]:
        """Delete every entry of the event log and the dead letters whose fields match; return counts.

        The shards and the dead letters are sifted in Redis (tracker.store.stream_sift): only entries holding one of
        the needles, which every entry that matches holds in lower case, come back to be tested.
        """
        counts = {"log_events": 0, "dead_letters": 0}
        for shard in SHARDS:
            for doomed in sifted(self, keys.stream(shard), needles, matches, batch):
                counts["log_events"] += int(self.script("log_erase")(
                    keys=[keys.stream(shard), keys.log_cursor(shard), keys.log_waiting(shard), keys.log_tries(shard)],
                    args=doomed))
        for doomed in sifted(self, keys.DEAD, needles, matches, batch):
            counts["dead_letters"] += int(self.redis.xdel(keys.DEAD, *doomed))
        return counts
