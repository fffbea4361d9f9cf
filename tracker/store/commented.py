"""The commented answers by answer time: a time index (tracker.store.time_index) of the answers that hold a comment.

The dashboard's newest comments read it instead of every answer of the range: most answers hold no comment, and a
page filtered by a dimension few answers share passed over hundreds of answers to find a dozen comments. Its entries
are the answers' sids at their answer time (the "resp" index's time), added and dropped by the outbox forwarder from
the survey as it reads it for the entry's notice (so the last entry forwarded leaves what the survey holds then): an
answer or a change of its comment adds the sid when the survey holds a comment and drops it when not, a changed answer
also drops it where it was, an erasure or retirement drops it (comment_ops).

An index is complete once filled from the answers (fill_comment_index: beat's first pass on a Redis that holds answers
from before it, `tracker upgrade-store`, or at once on an empty Redis); until then readers walk every answer. The
filling adds only what a chunk does not hold yet (ZADD NX), so it never moves what the forwarder placed; what it adds
for an answer changed since it read it (its comment taken away, or its time moved to another chunk) is an entry left
behind. A reader trusts no entry blindly (comments_between): it reads each answer and keeps it only while it still
holds a comment and its answer time is the entry's, once. So an entry left behind is passed over, never shown, and an
answer with a comment is never missing: the forwarder's last word on each survey is what the survey holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tracker.store import filed, keys, time_index
from tracker.store.base import RedisBase

NAME = keys.COMMENTED
FILL_LEASE_MS = 120_000  # renewed every batch: a filling that died lets another begin after this
FILL_BATCH = 500


def comment_ops(entries: Sequence[tuple[int, Mapping[str, Any]]],
                surveys: Mapping[int, Mapping[str, str]]) -> tuple[list[time_index.Op], set[str]]:
    """Return what a batch of outbox entries does to the commented answers, in the order to do it (each sid dropped
    wherever an entry put or left it, then added where the batch leaves it), and the sids of removals that did not
    name their answer's time (entries written before they named it): those are dropped wherever they are.

    surveys: by an entry's place in the batch, its survey's fields as the forwarder read them (expanded): an answer
    or detail entry adds its sid at the survey's answer time when the survey holds a comment then, drops it there
    when not; an entry without its survey (gone since) leaves the sid to the removal's entry."""
    placed: dict[str, set[int]] = {}  # every time an entry put or left a sid at
    last: dict[str, int | None] = {}  # where the batch leaves each sid (None: nowhere)
    anywhere: set[str] = set()
    for index, (_seq, body) in enumerate(entries):
        sid, op, resp = body["sid"], body.get("op"), (body.get("fx") or {}).get("resp") or []
        if op in ("erase", "retire"):
            if len(resp) > 1 and resp[1] is not None:
                placed.setdefault(sid, set()).add(int(resp[1]))
            elif len(resp) == 1:
                anywhere.add(sid)
            last[sid] = None
            continue
        if op not in ("answer", "detail"):
            continue
        if op == "answer" and len(resp) > 2 and resp[2] is not None:
            placed.setdefault(sid, set()).add(int(resp[2]))  # the time a changed answer moved from
        survey = surveys.get(index)
        if not survey or not survey.get("sid") or not str(survey.get("answered_at") or "").isdigit():
            continue
        at = int(survey["answered_at"])
        placed.setdefault(sid, set()).add(at)
        last[sid] = at if survey.get("comment") else None
    ops: list[time_index.Op] = [(NAME, "drop", sid, at) for sid, times in placed.items()
                                for at in sorted(times) if at != last.get(sid)]
    ops += [(NAME, "add", sid, at) for sid, at in last.items() if at is not None]
    return ops, anywhere


def holding_comments(base: RedisBase, sids: Sequence[str]) -> list[str]:
    """Return the sids, of these, whose survey holds a comment (in its hash or its filed value), in their order:
    commented.lua a survey bucket, all in one round trip (filed.held_by)."""
    return filed.held_by(base, "commented", sids)


def is_complete(redis: Any) -> bool:
    """Say whether the index holds every commented answer (filled once; kept by the forwarder since)."""
    return redis.hget(keys.time_index_state(NAME), "complete") == "1"


def mark_complete(redis: Any) -> None:
    """Say the index is complete: after a filling, or on an empty Redis, where no answer is left out."""
    redis.hset(keys.time_index_state(NAME), "complete", "1")


class CommentIndex(RedisBase):
    """Fill the commented answers' index and say whether it is complete (Queries.comments_between reads it)."""

    def comment_index_complete(self) -> bool:
        return is_complete(self.redis)

    def keep_comment_index(self) -> int | None:
        """Fill the index unless it is complete (beat, every 30 s); return how many commented answers the filling
        found, None when it was complete already or another process is filling it."""
        if is_complete(self.redis):
            return None
        return self.fill_comment_index()

    def fill_comment_index(self) -> int | None:
        """Add every answer that holds a comment to the index and mark it complete, under a lease renewed every
        batch; return how many answers it found with a comment, None when another process holds the lease (or took
        it over). Safe beside live writes: the forwarder keeps what moves meanwhile, and an entry this adds for an
        answer changed since is passed over by readers (see the module)."""
        token = secrets.token_hex(8)
        lease = keys.time_index_lease(NAME)
        if not self.redis.set(lease, token, nx=True, px=FILL_LEASE_MS):
            return None
        found = 0
        try:
            for rows in time_index.batches(self.redis, "resp", batch=FILL_BATCH, most=FILL_BATCH):
                if not int(self.script("renew_if")(keys=[lease], args=[token, FILL_LEASE_MS])):
                    return None
                times = dict(rows)
                adds = [(sid, times[sid]) for sid in holding_comments(self, list(times))]
                if adds:  # what the forwarder placed meanwhile stays where it put it
                    time_index.place(self, NAME, adds=adds, only_new=True)
                found += len(adds)
            mark_complete(self.redis)
            return found
        finally:
            self.script("release_if")(keys=[lease], args=[token])
