"""The time indexes: every answer's sid by answer time ("resp") and every sent survey's sid by send time ("sent").

One sorted set of every survey costs Redis about 120 bytes an entry once it outgrows a compact listpack (a skiplist
node, a dict entry and the member twice). So each index is kept in chunks instead: small sorted sets of sid by time
(ms) that each stay compact, about 30 bytes an entry, under a directory that names each chunk by its lower bound,
"<time, 15 digits>:<sid>" (the order of time, then sid, as a sorted set orders its entries), beside the chunk's id.
A chunk holds the entries from its bound up to the next chunk's; the first chunk's bound is empty and it is never
dropped. Writers look up each entry's chunk in the directory and add or drop a batch's entries by one script per
chunk that checks the chunk still covers them (time_index_add.lua, time_index_drop.lua), so any number of writers
may race; a chunk grown past CHUNK entries splits. Readers walk the directory from the chunk covering where they
start, a few chunks a round trip, in either direction. Every key of an index shares one slot ({ix:<name>}).

An entry is placed and dropped by its time: a writer that moves a sid (a changed answer) drops it at the time it
was indexed at and adds it at the new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase

CHUNK = 120  # entries a chunk holds before it splits: under Redis's zset-max-listpack-entries (128 by default)
FIRST = "\t0"  # the first chunk's directory member: an empty bound, chunk id "0"
CHUNKS_READ = 4  # chunks a reader reads in one round trip
TRIES = 20  # lookups a writer repeats while other writers move the bounds under it
PER_CALL = 200  # entries a script call writes at most
# Fresh chunks named to a call adding n entries (a chunk splits about once every CHUNK / 2 entries it takes): a call
# that runs out leaves its remaining entries to the next one.
FRESH_FIRST, FRESH_PER = 2, 50
_TOP = "\n"  # above the separator ("\t") and below every character of a sid or time: the end of an entry's range


def entry_name(at_ms: int, sid: str) -> str:
    """Return an entry as the directory orders it (a time before 1970, which no survey has, as 1970's first ms)."""
    return f"{max(int(at_ms), 0):015d}:{sid}"


def _chunk_of(name: str, member: str) -> str:
    return keys.time_index_chunk(name, member.rpartition("\t")[2])


# One write to an index: (index name, "add" or "drop", sid, time in ms).
Op = tuple[str, str, str, int]


def place(base: RedisBase, name: str, adds: Iterable[tuple[str, int]] = (),
          drops: Iterable[tuple[str, int]] = (), only_new: bool = False) -> None:
    """Drop these (sid, time) entries from an index and add these ones, each once: repeating a placement changes
    nothing, and a sid dropped at one time and added at another is moved. Two round trips while no other writer
    moves the bounds under them; a caller with a pipeline of its own queues the lookups on it (queue_lookups) and
    passes their replies to finish() instead. only_new: an added sid the chunk it falls in holds already stays at
    the time it has there (a filling beside the writers that keep the index must not move what they placed)."""
    ops = [*((name, "drop", sid, at) for sid, at in drops), *((name, "add", sid, at) for sid, at in adds)]
    pipe = base.redis.pipeline(transaction=False)
    queue_lookups(pipe, ops)
    finish(base, ops, pipe.execute(), only_new)


def queue_lookups(pipe: Any, ops: Sequence[Op]) -> None:
    """Queue the directory lookup of each write's chunk (a one-element list, empty before any chunk)."""
    for name, _, sid, at in ops:
        pipe.zrevrangebylex(keys.time_index_directory(name), "(" + entry_name(int(at), sid) + _TOP, "-", start=0,
                            num=1)


def finish(base: RedisBase, ops: Sequence[Op], looked_up: Sequence[Any], only_new: bool = False) -> None:
    """Write each op into the chunk its lookup found (one round trip), then look again and write the ones whose
    chunk another writer moved meanwhile, until none is left (only_new: as place says)."""
    pending, found = list(ops), [rows[0] if rows else None for rows in looked_up]
    for _ in range(TRIES):
        pending = _write_found(base, pending, found, only_new)
        if not pending:
            return
        pipe = base.redis.pipeline(transaction=False)
        queue_lookups(pipe, pending)
        found = [rows[0] if rows else None for rows in pipe.execute()]
    raise RuntimeError(f"time indexes: {len(pending)} entries still moving after {TRIES} tries")


def _write_found(base: RedisBase, ops: Sequence[Op], found: Sequence[str | None], only_new: bool) -> list[Op]:
    """Write the ops into the chunks found for them, one script per chunk and kind of op (one round trip); return the
    ops whose chunk moved meanwhile (or that a call could not take)."""
    groups: dict[tuple[str, str, str | None], list[Op]] = {}
    for op, member in zip(ops, found, strict=True):
        groups.setdefault((op[0], op[1], member), []).append(op)
    add, drop = base.script("time_index_add").source, base.script("time_index_drop").source
    pipe = base.redis.pipeline(transaction=False)  # scripts by their source: no SCRIPT EXISTS round trip first
    calls: list[list[Op]] = []
    for (name, kind, member), group in groups.items():
        group.sort(key=lambda op: (max(int(op[3]), 0), op[2]))
        for start in range(0, len(group), PER_CALL):
            part = group[start:start + PER_CALL]
            entries = [item for _, _, sid, at in part for item in (entry_name(at, sid), int(at), sid)]
            directory, state = keys.time_index_directory(name), keys.time_index_state(name)
            if kind == "add":
                fresh = [secrets.token_hex(6) for _ in range(FRESH_FIRST + len(part) // FRESH_PER)]
                pipe.execute_command("EVAL", add, 3 + len(fresh), directory, state, _chunk_of(name, member or FIRST),
                                     *(keys.time_index_chunk(name, chunk_id) for chunk_id in fresh),
                                     member or FIRST, FIRST, CHUNK, "NX" if only_new else "", *fresh, *entries)
            else:
                pipe.execute_command("EVAL", drop, 3, directory, state, _chunk_of(name, member or FIRST),
                                     member or "", FIRST, *entries)
            calls.append(part)
    moved: list[Op] = []
    for part, reply in zip(calls, pipe.execute() if calls else [], strict=True):
        if isinstance(reply, list):  # an add's {added, done}
            done = 0 if int(reply[0]) < 0 else int(reply[1])
        else:  # a drop's count, -1 when the bounds moved
            done = 0 if int(reply) < 0 else len(part)
        moved += part[done:]
    return moved


def drop_anywhere(base: RedisBase, name: str, sids: Iterable[str]) -> int:
    """Drop these sids at whatever time the index holds them (an outbox entry written before the entries named
    their times): reads every chunk, so only for such leftovers. Return how many were dropped."""
    wanted = sorted(set(sids))
    if not wanted:
        return 0
    held: list[tuple[str, int]] = []
    for members in _directory_pages(base.redis, name):
        pipe = base.redis.pipeline(transaction=False)
        for member in members:
            pipe.zmscore(_chunk_of(name, member), wanted)
        for scores in pipe.execute():
            held += [(sid, int(score)) for sid, score in zip(wanted, scores, strict=True) if score is not None]
    place(base, name, drops=held)
    return len(held)


def _directory_pages(redis: Any, name: str, page: int = 500) -> Iterator[list[str]]:
    directory, low = keys.time_index_directory(name), "-"
    while True:
        members = redis.zrangebylex(directory, low, "+", start=0, num=page)
        if members:
            yield members
        if len(members) < page:
            return
        low = "(" + members[-1]


def batches(redis: Any, name: str, low: float | str = "-inf", high: float | str = "+inf", newest_first: bool = False,
            batch: int = 500, most: int = 500) -> Iterator[list[tuple[str, int]]]:
    """Yield the (sid, time) entries of window() in batches of batch entries, each batch twice the last up to most:
    a reader that may stop early reads little at first."""
    pending: list[tuple[str, int]] = []
    for rows in window(redis, name, low, high, newest_first):
        pending += rows
        while len(pending) >= batch:
            yield pending[:batch]
            pending = pending[batch:]
            batch = max(batch, min(2 * batch, most))
    if pending:
        yield pending


def count(redis: Any, name: str) -> int:
    """Return how many entries an index holds."""
    return int(redis.hget(keys.time_index_state(name), "count") or 0)


def window(redis: Any, name: str, low: float | str = "-inf", high: float | str = "+inf", newest_first: bool = False,
           after: tuple[int, str] | None = None) -> Iterator[list[tuple[str, int]]]:
    """Yield the (sid, time) entries with low <= time <= high in order (by time, then sid; newest first
    reversed), a chunk's worth at a time; after: start past this (time, sid), in the direction read."""
    lo, hi = float(low), float(high)  # "-inf" and "+inf" as infinities
    if lo > hi:
        return
    directory = keys.time_index_directory(name)
    start = after
    if newest_first:
        if start is None and hi != float("inf"):
            start = (int(hi), "\x7f")  # past every sid of that time
        top = "+" if start is None else "(" + entry_name(*start) + _TOP
        members = redis.zrevrangebylex(directory, top, "-", start=0, num=CHUNKS_READ)
    else:
        if start is None and lo != float("-inf"):
            start = (int(lo), "")
        covering = (redis.zrevrangebylex(directory, "(" + entry_name(*start) + _TOP, "-", start=0, num=1)
                    if start is not None else [])
        members = redis.zrangebylex(directory, "[" + covering[0] if covering else "-", "+", start=0, num=CHUNKS_READ)
    while members:
        pipe = redis.pipeline(transaction=False)
        for member in members:
            chunk = _chunk_of(name, member)
            if newest_first:
                pipe.zrevrangebyscore(chunk, high, low, withscores=True)
            else:
                pipe.zrangebyscore(chunk, low, high, withscores=True)
        done = False
        for member, rows in zip(members, pipe.execute(), strict=True):
            found = [(sid, int(at)) for sid, at in rows]
            if after is not None:
                found = [(sid, at) for sid, at in found
                         if ((at, sid) < after if newest_first else (at, sid) > after)]
            if found:
                yield found
            bound = member.rpartition("\t")[0]
            if newest_first and bound and int(bound.partition(":")[0]) < lo:
                done = True
                break
            if not newest_first and bound and int(bound.partition(":")[0]) > hi:
                done = True
                break
        if done or len(members) < CHUNKS_READ:
            return
        if newest_first:
            members = redis.zrevrangebylex(directory, "(" + members[-1], "-", start=0, num=CHUNKS_READ)
        else:
            members = redis.zrangebylex(directory, "(" + members[-1], "+", start=0, num=CHUNKS_READ)


def first_times(redis: Any, names: Sequence[str]) -> dict[str, int | None]:
    """Return the time of each index's oldest entry (None when it holds none): the first entry of the first chunk
    that holds one, chunks being in the order of their bounds. Two round trips for all the indexes while one of
    their first CHUNKS_READ chunks holds an entry; no chunk is read whole."""
    found: dict[str, int | None] = dict.fromkeys(names)
    low = dict.fromkeys(names, "-")
    while low:
        pipe = redis.pipeline(transaction=False)
        for name, start in low.items():
            pipe.zrangebylex(keys.time_index_directory(name), start, "+", start=0, num=CHUNKS_READ)
        members = dict(zip(low, pipe.execute(), strict=True))
        pipe = redis.pipeline(transaction=False)
        for name, chunks in members.items():
            for member in chunks:
                pipe.zrange(_chunk_of(name, member), 0, 0, withscores=True)
        firsts = iter(pipe.execute())
        for name, chunks in members.items():
            heads = [next(firsts) for _ in chunks]
            head = next((rows[0] for rows in heads if rows), None)
            if head is not None:
                found[name] = int(head[1])
            if head is not None or len(chunks) < CHUNKS_READ:
                del low[name]
            else:
                low[name] = "(" + chunks[-1]
    return found
