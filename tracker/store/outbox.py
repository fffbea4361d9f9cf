"""The outbox of a survey bucket: what an answer, a send, an erasure or a retirement does to every entity.

A survey-slot script (record_answer, mark_sent, erase_survey, retire_survey .lua) changes the survey and its
answer and, in the same script, appends ONE entry to the bucket's outbox, scored by the bucket's sequence
number. The entry names, per entity (the customer, agent, team, source, brand and overall), what to add to
its sums, daily buckets and rollup, and for the customer what to do to its responses, surveys and unhappy
answers. The forwarder applies each entity's step with one script in the entity's own slot, only when the
entry is newer than the entity's high-water mark for that bucket, so a step counts exactly once even when a
forwarder dies half-way and the entry is forwarded again. Then come the single-key side effects, each safe to
repeat (the time indexes, the ranked sets, the index sets, ERASED), and last the entry leaves the outbox.

One forwarder per bucket at a time (a lease per batch, renewed before its side effects, let go after); entries
go in sequence order. Whoever
appends forwards at once, so a read right after an answer sees it; beat forwards every bucket every few
seconds, which catches a forwarder that died.

Entry (JSON, stored as "<seq>|<json>"):
    {"sid": sid, "op": "answer" | "sent" | "erase" | "retire" | "detail",
     "steps": [[kind, id, delta], ...],      delta: {"i": ints, "f": floats, "d": daily, "ri": rollup ints,
                                                     "rf": rollup floats}, each a list of [field, value]
     "c": {"resp": [op, at], "surv": [op, at], "unhappy": [op, at], "last": at,   op "a" add, "r" remove
           "card": [rating, scale, ticket key]},
     "fx": {"resp": [op, at, moved from], "sent": [op, at], "erased": [[field, n], ...]}, (time_index_ops)
     "prev": the rating an "answer" entry changes (null: a first answer; absent from entries written before it),
     "risk": TRACKER_AT_RISK_SCORE when the answer was given (absent: no customer.at_risk for it),
     "said": the comment (reason, extra answers) given with an answer's rating, which its notice tells,
     "q": 1 when the entry counts and tells nothing (QUIET: a replayed export's survey, told where it came from)}
A "detail" entry (a change of the comment, reason or extra answers alone) names the customer ("who"), the rating
and the time ("at"): the forwarder tells survey.changed for it. Its steps (none but for a changed reason of an
unsatisfied answer) move that answer's day from the old reason's count to the new one's in the rollups.
A "retire" entry's deltas go to the entities' retired sums (and RETIRED_INDEX) instead of their live ones.

Notices: the forwarder emits what "answer" and "sent" entries tell (survey.answered or survey.changed,
customer.at_risk, survey.sent; ids "<type>:<store id>:<bucket>:<seq>") in its side effects, before the entry leaves the
outbox, from the survey's hash read in the round trip of the steps; a batch forwarded again emits nothing twice.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tracker.errors import StorageUnavailable
from tracker.model import Aggregate
from tracker.store import filed, keys, notice_data, time_index
from tracker.store.base import RedisBase
from tracker.store.commented import comment_ops
from tracker.store.customer_days import KEPT_DAYS, today
from tracker.store.notices import notice_call
from tracker.store.risk import queue_place_risk
from tracker.store.rollups import (
    Rollup,
    add_rollups,
    answer_rollup,
    crossed_lists,
    dimensions_of,
    is_float_field,
    negated,
    sent_rollup,
)
from tracker.store.survey_codes import expanded

log = logging.getLogger(__name__)

LEASE_MS = 10_000  # one forwarder per bucket; a batch takes far less, so only a dead forwarder lets it lapse
BATCH = 100  # entries per round of the forwarder
WAIT_S = LEASE_MS / 1000 + 2  # how long a writer waits for another forwarder to carry its entry
ERASED_MARK = "outbox:"  # ERASED's field "outbox:<bucket>": the newest entry counted (keeps the count once)
RANK_STATE = ("n", "weight", "weighted")  # the customer's sums the ranked sets are derived from
# The profile's field holding what the score card shows of the answer last_response_sid names (card_copy), or
# "<sid>|" once that answer left (erased or retired): the card reads it with the profile, in one round trip.
CARD_COPY = "last_response_card"
QUIET = "q"  # an entry's field: it counts and tells nothing (a replayed export's survey, told where it came from)


def quiet_field(quiet: bool) -> dict[str, int]:
    """Return the fields an entry carries to say it tells nothing: {QUIET: 1}, or none."""
    return {QUIET: 1} if quiet else {}

# (n, weight, weighted, last response at, newest unhappy answer at) as the customer's keys hold them ('' absent)
RankState = tuple[str, str, str, str, str]


_DEFERRED = threading.local()  # the buckets a forwarding_later block will forward at its end (per thread)


class OutboxStuck(RuntimeError):
    """An outbox did not drain in time (its forwarder holds the lease and makes no progress)."""


# Building an entry ------------------------------------------------------------------------------------------------

@dataclass
class Change:
    """What one entry does to one entity: a delta of its sums and of its rollup."""

    delta: Aggregate = field(default_factory=Aggregate)
    rollup: Rollup = field(default_factory=dict)
    added: int = 0  # how many deltas were added

    def add(self, delta: Aggregate, rollup: Rollup) -> None:
        # A change starts empty, so its first delta is its sum: taken as it is (an Aggregate never changes; a
        # rollup summed alone is itself without zeros), and the entities of one survey share their delta.
        first = not self.added
        self.delta = delta if first else self.delta + delta
        self.rollup = rollup if first else add_rollups(self.rollup, rollup)  # never changed in place: shared
        self.added += 1


def _pairs(items: Iterable[tuple[str, Any]]) -> list[list[Any]]:
    return [[name, value] for name, value in items]


def _delta_json(kind: str, change: Change) -> dict[str, Any]:
    ints, floats, daily = change.delta.increments()
    delta: dict[str, Any] = {"i": _pairs(ints), "f": _pairs(floats), "d": _pairs(daily)}
    if kind != "customer":  # customers have no rollup: their reads are their own keys
        delta["ri"] = _pairs((k, int(v)) for k, v in sorted(change.rollup.items()) if not is_float_field(k))
        delta["rf"] = _pairs((k, float(v)) for k, v in sorted(change.rollup.items()) if is_float_field(k))
    return delta


def entry(sid: str, op: str, changes: Mapping[tuple[str, str], Change], customer: Mapping[str, Any],
          effects: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """Return an outbox entry as JSON: one step per entity (in the order given), the customer's index changes
    and the single-key side effects (and extra fields: an answer's "prev" and "risk")."""
    made: dict[tuple[bool, int, int], dict[str, Any]] = {}  # the entities of a survey mostly share one delta
    steps = []
    for (kind, ident), change in changes.items():
        same = (kind == "customer", id(change.delta), id(change.rollup))
        if same not in made:
            made[same] = _delta_json(kind, change)
        steps.append([kind, ident, made[same]])
    return json.dumps({"sid": sid, "op": op, "steps": steps, "c": dict(customer), "fx": dict(effects),
                       **(extra or {})}, separators=(",", ":"))


def changes_for(entities: Sequence[tuple[str, str]], delta: Aggregate, rollup: Mapping[str, float],
                into: dict[tuple[str, str], Change] | None = None) -> dict[tuple[str, str], Change]:
    """Add one delta (and rollup) to each of the entities' changes."""
    changes = {} if into is None else into
    rollup = add_rollups(rollup)  # without zeros, as a sum of one rollup is
    for ident in entities:
        changes.setdefault(ident, Change()).add(delta, rollup)
    return changes


def stored_answer(stored: Mapping[str, str]) -> Aggregate | None:
    """Return what a stored answer counted (from its response fields), None when there is no answer."""
    if not stored.get("rating"):
        return None
    return Aggregate.from_hash({name: value for name, value in stored.items() if value})


def answer_entry(sid: str, entities: Sequence[tuple[str, str]], scale: str, rating: int, at_ms: int,
                 counted: Aggregate, stored: Mapping[str, str], tkey: str = "", risk: float | None = None,
                 reason: str | None = None, said: Mapping[str, Any] | None = None, quiet: bool = False) -> str:
    """Return the entry of a new or changed answer: the new answer's sums minus the stored one's, everywhere.

    It also carries what the customer's score card shows of the answer (its rating, scale and ticket key), which
    the customer's step copies into the profile when the answer is their newest (see card_copy), the rating it
    changes ("prev", null for a first answer: record_answer.lua checks the stored one is still the one read) and
    the at-risk threshold in force ("risk"), for the notices the forwarder emits. reason: the follow-up reason
    the answer has after it (None: the stored one stays), which its rollup counts when it is unsatisfied. said:
    the comment (and the reason and extra answers, when given) that came with this rating ("said"), which its notice
    tells rather than what the survey's hash holds when it is forwarded: a later answer may have replaced them.
    """
    old = stored_answer(stored)
    stored_reason = stored.get("answer_reason") or None
    rollup = answer_rollup(counted, scale, rating, stored_reason if reason is None else reason)
    if old is not None:
        rollup = add_rollups(rollup, negated(answer_rollup(old, stored.get("scale", ""), stored["rating"],
                                                           stored_reason)))
    changes = changes_for(entities, counted - (old or Aggregate()), rollup)
    unhappy = ["r"] if counted.satisfied else ["a", at_ms]
    extra: dict[str, Any] = {"prev": int(stored["rating"]) if old is not None else None}
    if risk is not None:
        extra["risk"] = risk
    if said is not None:
        extra["said"] = dict(said)
    extra.update(quiet_field(quiet))
    moved_from = int(stored["answered_at"]) if old is not None and stored.get("answered_at") else None
    return entry(sid, "answer", changes, {"resp": ["a", at_ms], "unhappy": unhappy, "last": at_ms,
                                          "card": [rating, scale, tkey]},
                 {"resp": ["a", at_ms, moved_from]}, extra)


def reason_entry(sid: str, email: str, rating: int, at_ms: int, entities: Sequence[tuple[str, str]],
                 stored: Mapping[str, str], reason: str, quiet: bool = False) -> str:
    """Return the entry of a change of an answer's comment, reason or extra answers alone: no sums change; when the
    reason of an unsatisfied answer changes, its steps move the answer's day from the old reason to the new one
    (reason_field). Its forwarder tells survey.changed with the survey's hash as it is then."""
    old = stored_answer(stored)
    if old is None or old.satisfied or reason == stored.get("answer_reason", ""):
        return detail_entry(sid, email, rating, at_ms, quiet)
    scale = stored.get("scale", "")
    moved = add_rollups(answer_rollup(old, scale, rating, reason),
                        negated(answer_rollup(old, scale, rating, stored.get("answer_reason"))))
    steps = [[kind, ident, _delta_json(kind, change)]
             for (kind, ident), change in changes_for(entities, Aggregate(), moved).items() if kind != "customer"]
    return detail_entry(sid, email, rating, at_ms, quiet, steps)


def detail_entry(sid: str, email: str, rating: int, at_ms: int, quiet: bool = False, steps: Sequence[Any] = ()) -> str:
    """Return the entry of a change of an answer's comment, reason or extra answers alone: nothing it counted
    changes, so no steps but those of a moved reason (reason_entry); its forwarder tells survey.changed with the
    survey's hash as it is then (nothing when quiet)."""
    return json.dumps({"sid": sid, "op": "detail", "steps": list(steps), "who": email, "rating": rating,
                       "at": at_ms, **quiet_field(quiet)}, separators=(",", ":"))


def card_copy(sid: str, at_ms: int | str, rating: int | str, scale: str, tkey: str | None) -> str:
    """Return the profile's copy of what a score card shows of the customer's newest answer (field CARD_COPY):
    "<sid>|<at ms>|<rating>|<scale>|<ticket key>" (the ticket key last: an order's holds a '|')."""
    return f"{sid}|{at_ms}|{rating}|{scale}|{tkey or ''}"


def sent_entry(sid: str, entities: Sequence[tuple[str, str]], sent_ms: int, quiet: bool = False) -> str:
    """Return the entry of a survey sent: one more sent survey for every entity, on its send day (told as
    survey.sent unless quiet)."""
    return entry(sid, "sent", changes_for(entities, Aggregate.of_sent(), sent_rollup(sent_ms)),
                 {"surv": ["a", sent_ms]}, {"sent": ["a", sent_ms]}, quiet_field(quiet))


def removal_entry(sid: str, op: str, email: str, answered: Sequence[tuple[str, str]], stored: Mapping[str, str],
                  sent: Sequence[tuple[str, str]], sent_ms: int | None) -> str:
    """Return the entry of a survey and answer that leave: erased ("erase", what they counted comes off every
    entity) or retired ("retire", what they counted goes to every entity's retired sums as well)."""
    sign = 1 if op == "retire" else -1
    changes: dict[tuple[str, str], Change] = {("customer", email): Change()}  # its indexes lose the sid anyway
    old = stored_answer(stored)
    erased: list[list[Any]] = []
    if old is not None:
        rollup = answer_rollup(old, stored.get("scale", ""), stored["rating"], stored.get("answer_reason"))
        changes_for(answered, old if sign > 0 else -old, rollup if sign > 0 else negated(rollup), changes)
        erased.append(["answers", 1])
    if sent_ms is not None:
        one = Aggregate.of_sent()
        rollup = sent_rollup(sent_ms)
        changes_for(sent, one if sign > 0 else -one, rollup if sign > 0 else negated(rollup), changes)
        erased.append(["sent", 1])
    answered_at = int(stored["answered_at"]) if old is not None and stored.get("answered_at") else None
    return entry(sid, op, changes, {"resp": ["r"], "surv": ["r"], "unhappy": ["r"]},
                 {"resp": ["r", answered_at], "sent": ["r", sent_ms], "erased": erased})


def time_index_ops(entries: Sequence[tuple[int, dict[str, Any]]]) -> tuple[list[time_index.Op], dict[str, set[str]]]:
    """Return what a batch of entries does to the time indexes, in the order to do it (each sid's entries dropped
    where they were, then added where the batch's last entry puts it), and the sids whose old place an entry did not
    name (written before entries named it): those are dropped wherever they are first.

    An entry's "resp" and "sent" effects: ["a", at] added at a time ("resp" of a changed answer: ["a", at, the
    time it moves from]), ["r", at] dropped from that time (["r", None]: it was never there); entries written
    before they named times: "resp" ["a", at] of a changed answer (its "prev" not null) and ["r"].
    """
    drops: dict[tuple[str, str], set[int]] = {}
    last: dict[tuple[str, str], int | None] = {}  # the time each sid ends at (None: dropped)
    anywhere: dict[str, set[str]] = {}
    for _seq, body in entries:
        effects, sid = body.get("fx") or {}, body["sid"]
        for name in keys.TIME_INDEXES:
            op = effects.get(name)
            if not op or op[0] not in ("a", "r"):
                continue
            key = (name, sid)
            if key in last and last[key] is not None:
                drops.setdefault(key, set()).add(int(last[key]))  # type: ignore[arg-type]
            if op[0] == "a":
                if len(op) > 2 and op[2] is not None:
                    drops.setdefault(key, set()).add(int(op[2]))
                elif len(op) == 2 and name == "resp" and body.get("prev", 0) is not None:
                    anywhere.setdefault(name, set()).add(sid)  # a changed answer's entry of before
                last[key] = int(op[1])
            else:
                if len(op) > 1 and op[1] is not None:
                    drops.setdefault(key, set()).add(int(op[1]))
                elif len(op) == 1:
                    anywhere.setdefault(name, set()).add(sid)
                last[key] = None
    ops: list[time_index.Op] = [(name, "drop", sid, at) for (name, sid), times in drops.items()
                                for at in sorted(times) if at != last.get((name, sid))]
    ops += [(name, "add", sid, at) for (name, sid), at in last.items() if at is not None]
    return ops, anywhere


def crossed_delta(kind: str, delta: Mapping[str, Any], dimensions: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Return an entry's step delta with its crossed rollup fields added (entries carry only the plain ones)."""
    rollup = {name: value for part in ("ri", "rf") for name, value in delta.get(part, ())}
    ints, floats = crossed_lists(kind, dimensions, rollup)
    if not ints and not floats:
        return dict(delta)
    # In any order: outbox_step.lua adds every count before it looks at any float sum.
    return {**delta, "ri": [*delta.get("ri", ()), *ints], "rf": [*delta.get("rf", ()), *floats]}


# Applying entries -------------------------------------------------------------------------------------------------

@dataclass
class _Step:
    """One step script the forwarder queues: an entity's step of one entry, or its steps of several entries of the
    batch (their deltas summed), and the script's reply."""

    kind: str  # "" for an entry's erased counts
    ident: str
    retired: bool
    entries: list[int] = field(default_factory=list)  # the entries it stands for (places in the batch), in order
    deltas: list[dict[str, Any]] = field(default_factory=list)  # their deltas
    reply: list[Any] = field(default_factory=list)


def _summed(deltas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum deltas field by field (counts that sum to nothing left out: they change nothing)."""
    total: dict[str, Any] = {}
    for part in ("i", "f", "d", "ri", "rf"):
        sums: dict[str, Any] = {}
        for delta in deltas:
            for name, value in delta.get(part, ()):
                sums[name] = sums.get(name, 0) + value
        total[part] = [[name, value] for name, value in sums.items() if value or isinstance(value, float)]
    return total


def _flat(pairs: Sequence[Sequence[Any]]) -> list[Any]:
    flat: list[Any] = [len(pairs)]
    for name, value in pairs:
        flat += [name, repr(float(value)) if isinstance(value, float) else value]
    return flat


def _zop(op: Sequence[Any] | None) -> list[Any]:
    return [op[0], op[1] if len(op) > 1 else ""] if op else ["", ""]


def step_keys(kind: str, ident: str, retired: bool) -> list[str]:
    """Return the keys of one entity's step: marks, sums, daily, rollup, and a customer's indexes."""
    if retired:
        sums, daily, rollup = keys.retired(kind, ident), keys.retired_daily(kind, ident), keys.retired(kind, ident)
    else:
        sums, daily, rollup = keys.aggregate(kind, ident), keys.daily(kind, ident), keys.rollup(kind, ident)
    names = [keys.applied_marks(kind, ident), sums, daily, rollup]
    if kind == "customer":
        names += [keys.customer(ident, "responses"), keys.customer(ident, "surveys"), keys.customer(ident, "profile"),
                  keys.customer(ident, "unhappy"), keys.aggregate("customer", ident)]
    return names


def _answers_of(counted: Sequence[str | None]) -> int | None:
    """Return an entity's answers from its (n, sent), None when it counts nothing (no answer, no sent survey)."""
    n, sent = int(counted[0] or 0), int(counted[1] or 0)
    return n if n > 0 or sent > 0 else None


def write_entity_ranks(pipe: Any, answered: Mapping[tuple[str, str], int | None]) -> None:
    """Queue each entity's place in its kind's ranked set (keys.entity_rank): minus its answers, or none when it
    counts nothing."""
    adds: dict[str, dict[str, float]] = {}
    drops: dict[str, list[str]] = {}
    for (kind, ident), n in answered.items():
        if n is None:
            drops.setdefault(kind, []).append(ident)
        else:
            adds.setdefault(kind, {})[ident] = -n
    for kind, members in adds.items():
        pipe.zadd(keys.entity_rank(kind), members)
    for kind, idents in drops.items():
        pipe.zrem(keys.entity_rank(kind), *idents)


def rank_scores(state: Sequence[str]) -> dict[str, float | None]:
    """Return a customer's place in each ranked set (None: not in it) from its rank state."""
    n, weight, weighted, last_at, unhappy_at = (state[i] or "" for i in range(5))
    count, total = int(n or 0), float(weight or 0)
    return {keys.RANK_SCORE: float(weighted or 0) / total if count > 0 and total > 0 else None,
            keys.RANK_RESPONSES: count if count > 0 else None,
            keys.RANK_RECENT: int(last_at) if last_at and count > 0 else None,
            keys.RANK_UNHAPPY: float(unhappy_at) if unhappy_at else None}


def write_ranks(pipe: Any, email: str, state: Sequence[str]) -> None:
    """Queue the ranked sets' commands that put a customer where its rank state says."""
    for rank_key, score in rank_scores(state).items():
        if score is None:
            pipe.zrem(rank_key, email)
        else:
            pipe.zadd(rank_key, {email: score})


def read_rank_state(pipe: Any, email: str) -> None:
    """Queue the reads of a customer's rank state (three replies, see rank_state_of)."""
    pipe.hmget(keys.aggregate("customer", email), *RANK_STATE)
    pipe.hget(keys.customer(email, "profile"), "last_response_at")
    pipe.zrevrange(keys.customer(email, "unhappy"), 0, 0, withscores=True)


def rank_state_of(sums: Sequence[str | None], last_at: str | None, unhappy: Sequence[Any]) -> RankState:
    n, weight, weighted = (value or "" for value in sums)
    newest = repr(float(unhappy[0][1])) if unhappy else ""
    return n, weight, weighted, last_at or "", newest


def _same_rank(left: Sequence[str], right: Sequence[str]) -> bool:
    return rank_scores(left) == rank_scores(right)


# The notices of a batch -------------------------------------------------------------------------------------------

Notice = tuple[str, str, str, int, str]  # event id, type, customer, at (ms), data (JSON): notice_call's arguments
TOLD = ("answer", "sent", "detail")  # the entries that tell something (unless QUIET)


def _customer_of(body: Mapping[str, Any]) -> str:
    return next((ident for kind, ident, _ in body["steps"] if kind == "customer"), body.get("who") or "")


def _queue_notice_reads(pipe: Any, entries: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """Queue, per entry that tells something, the reads of its survey's hash and its customer's name; return the
    entries' places in the batch."""
    told = []
    for index, (_seq, body) in enumerate(entries):
        email = _customer_of(body)
        if body["op"] in TOLD and email and not body.get(QUIET):
            filed.queue_read(pipe, body["sid"])
            pipe.hget(keys.customer(email, "profile"), "name")
            told.append(index)
    return told


def _found_nowhere(read: Sequence[Any], k: int) -> bool:
    return not read[3 * k] and read[3 * k + 1] is None


def _told_surveys(entries: list[tuple[int, dict[str, Any]]], told: list[int],
                  read: list[Any]) -> dict[int, tuple[dict[str, str], str | None]]:
    """Return, by entry's place in the batch, its survey's fields (expanded) and its customer's name as the reads of
    _queue_notice_reads found them."""
    return {index: (expanded(filed.joined(entries[index][1]["sid"], read[3 * k], read[3 * k + 1])), read[3 * k + 2])
            for k, index in enumerate(told)}


def _batch_notices(bucket: int, entries: list[tuple[int, dict[str, Any]]], steps: list[_Step],
                   surveys: Mapping[int, tuple[Mapping[str, str], str | None]], origin: str = "") -> list[Notice]:
    """Return the notices the entries of a batch tell, in the batch's order: survey.sent, survey.answered or
    survey.changed, and customer.at_risk when an answer took its customer's score below the threshold. Each is
    named "<type>:<origin>:<bucket>:<seq>": origin, the store's id (keys.STORE_ID), keeps a store made from an
    export (whose sequences start again) from reusing the names another store gave its notices, which a receiver
    that drops a webhook-id it has seen would take for those."""
    states: dict[int, tuple[list[Any], Mapping[str, Any]]] = {}  # entry -> its customer step's reply and delta
    for step in steps:
        if step.kind == "customer" and len(step.entries) == 1:
            states[step.entries[0]] = (step.reply, step.deltas[0])
    notices: list[Notice] = []
    for index, (record, name) in surveys.items():
        seq, body = entries[index]
        if not record.get("sid"):
            continue  # erased (or retired) since: nothing left to tell of it
        try:
            notices += _entry_notices(f"{origin}:{bucket}" if origin else str(bucket), seq, body, record, name,
                                      states.get(index))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            # A damaged entry or survey must not hold up the scores of the whole bucket: logged, left untold.
            log.error("outbox entry not told", extra={"bucket": bucket, "seq": seq, "error": repr(exc)})
    return notices


def _entry_notices(bucket: str, seq: int, body: Mapping[str, Any], record: Mapping[str, str], name: str | None,
                   state: tuple[list[Any], Mapping[str, Any]] | None) -> list[Notice]:
    """Return the notices one "answer", "detail" or "sent" entry tells, from its survey's hash and its customer step."""
    email, sid, told_c = _customer_of(body), body["sid"], body.get("c") or {}
    who = notice_data.customer_data(email, name)
    if body["op"] == "sent":
        at = int((told_c.get("surv") or ["a", record.get("sent_at") or 0])[1])
        data = {"survey": notice_data.survey_data(record), "customer": who}
        return [(f"{notice_data.SENT}:{bucket}:{seq}", notice_data.SENT, email, at, notice_data.as_json(data))]
    if body["op"] == "detail":  # the comment, reason or extra answers changed, the rating did not
        rating, at = int(record["rating"]), int(body["at"])
        answer = notice_data.answer_data(record, rating, record.get("scale", ""), record.get("satisfied") == "1", at)
        answer["previous_rating"] = rating
        data = {"survey": notice_data.survey_data(record), "answer": answer, "customer": who}
        return [(f"{notice_data.CHANGED}:{bucket}:{seq}", notice_data.CHANGED, email, at, notice_data.as_json(data))]
    at = int(told_c.get("last") or record.get("answered_at") or 0)
    card = told_c.get("card")
    rating, scale = (int(card[0]), str(card[1])) if card else (int(record["rating"]), record.get("scale", ""))
    satisfied = (told_c.get("unhappy") or [""])[0] == "r"
    if "prev" in body:
        previous, changed = body["prev"], body["prev"] is not None
    else:  # an entry from before "prev": a first answer is the one its first_at names
        previous, changed = None, str(record.get("first_at") or at) != str(at)
    type_ = notice_data.CHANGED if changed else notice_data.ANSWERED
    answer = notice_data.answer_data(record, rating, scale, satisfied, at)
    said = body.get("said")
    if isinstance(said, dict):  # what came with this rating, though a later answer has replaced it in the hash since
        answer["comment"] = said.get("comment") or None
        if "reason" in said:
            answer["reason"] = said["reason"] or None
        if "extra" in said:
            answer["extra"] = notice_data.extra_answers(said["extra"])
    if changed:
        answer["previous_rating"] = previous
    data = {"survey": notice_data.survey_data(record), "answer": answer, "customer": who}
    notices = [(f"{type_}:{bucket}:{seq}", type_, email, at, notice_data.as_json(data))]
    if body.get("risk") is not None and state is not None:
        risen = _risen(float(body["risk"]), *state)
        if risen is not None:
            data = {"customer": {**who, "score": risen[0], "responses": risen[1]}, "threshold": body["risk"],
                    "survey": {"id": sid}}
            notices.append((f"{notice_data.CUSTOMER_AT_RISK}:{bucket}:{seq}", notice_data.CUSTOMER_AT_RISK, email,
                            at, notice_data.as_json(data)))
    return notices


def _risen(threshold: float, reply: list[Any], delta: Mapping[str, Any]) -> tuple[float, int] | None:
    """Return (score, responses) when a customer's step took their score from not at risk (or none) to at risk.

    The step's reply is the state it left (a step applied before, by a forwarder that died before its notices, left
    it earlier: the state now stands in for it); the state before is that minus the step's delta.
    """
    n, weight, weighted = (float(value or 0) for value in reply[2:5])
    sums = {**notice_data.sums_of(delta.get("i", [])), **notice_data.sums_of(delta.get("f", []))}
    after = notice_data.score_of(n, weight, weighted)
    before = notice_data.score_of(n - sums.get("n", 0), weight - sums.get("weight", 0),
                                  weighted - sums.get("weighted", 0))
    if notice_data.at_risk(after, threshold) and not notice_data.at_risk(before, threshold):
        assert after is not None
        return after, int(n)
    return None


class Outbox(RedisBase):
    """Forward the outboxes of the survey buckets to every entity, once and in order."""

    # How long a writer waits for another forwarder to carry its entry before leaving it to beat.
    forward_wait_s: float = WAIT_S

    def _notice_origin(self) -> str:
        """Return the store's id as this process found it (tracker.store.layout), else as it is now, kept as found
        then ("" while there is none)."""
        seen = getattr(self, "seen_store_id", None)
        if seen is None and (seen := self.redis.get(keys.STORE_ID)):
            setattr(self, "seen_store_id", seen)  # noqa: B010 (Layout's: the store this process found, as it takes it)
        return seen or ""

    def forward_outbox(self, bucket: int, until_seq: int | None = None, wait_s: float = WAIT_S) -> int:
        """Apply the bucket's waiting entries; return how many this call applied.

        With until_seq, a forwarder that finds another one at work waits (up to wait_s) until that entry is
        applied, so the caller's own write is visible when it returns; without, it leaves the rest to that one.
        Raises OutboxStuck when until_seq is still waiting after wait_s.
        """
        token = secrets.token_hex(8)
        applied = 0
        deadline = time.monotonic() + wait_s
        pause = 0.002
        while True:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(keys.outbox_lease(bucket), token, nx=True, px=LEASE_MS)
            pipe.zrange(keys.outbox(bucket), 0, BATCH - 1, withscores=True)
            held, rows = pipe.execute()
            if not held:
                if not rows or until_seq is None or int(rows[0][1]) > until_seq:
                    return applied  # the holder goes on until the outbox is empty, ours included
                if time.monotonic() >= deadline:
                    raise OutboxStuck(f"outbox {bucket} did not reach entry {until_seq} in {wait_s:.0f}s")
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
                continue
            if not rows:
                # Let go, then look again: an entry appended while we held the lease, by a writer that then
                # found the lease taken, must not wait for beat.
                pipe = self.redis.pipeline(transaction=False)
                self.script("release_if")(keys=[keys.outbox_lease(bucket)], args=[token], client=pipe)
                pipe.zcard(keys.outbox(bucket))
                if not pipe.execute()[-1]:
                    return applied
                continue
            try:
                left = self._forward_batch(bucket, token, rows)
            except BaseException:
                self.script("release_if")(keys=[keys.outbox_lease(bucket)], args=[token])
                raise
            applied += len(rows)
            if not left:
                return applied  # empty, or the lease lapsed and whoever holds it now goes on

    def forward_all(self, wait: bool = False) -> int:
        """Forward every bucket's outbox (beat's task); return how many entries this call applied.

        wait: also wait for the entries another forwarder is applying (a rebuild's start).
        """
        until = sys.maxsize if wait else None
        return sum(self.forward_outbox(bucket, until_seq=until) for bucket in range(keys.BUCKETS))

    def outbox_waiting(self) -> dict[int, int]:
        """Return how many entries wait in each bucket's outbox (buckets with none left out)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.zcard(keys.outbox(bucket))
        return {bucket: int(n) for bucket, n in enumerate(pipe.execute()) if n}

    def outbox_snapshot(self) -> list[int] | None:
        """Return every bucket's newest entry number when every entry up to it has been applied everywhere,
        side effects included (its outbox empty after the number was read); None when one is not."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.get(keys.outbox_seq(bucket))  # first the number, then the outbox: see above
            pipe.zcard(keys.outbox(bucket))
        found = pipe.execute()
        if any(int(found[2 * b + 1]) for b in range(keys.BUCKETS)):
            return None
        return [int(found[2 * b] or 0) for b in range(keys.BUCKETS)]

    def outbox_seqs(self) -> list[int]:
        """Return every bucket's newest entry number (any write since moves one of them)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.get(keys.outbox_seq(bucket))
        return [int(seq or 0) for seq in pipe.execute()]

    @contextmanager
    def forwarding_later(self, wait: bool = True) -> Iterator[None]:
        """Within this block (in this thread), writes leave their outbox entries to its end, which forwards each
        bucket once: a chunk of sends costs one forward per bucket instead of one per survey.

        wait=False (the drain, which reads none of the aggregates back): at the end a bucket another forwarder is
        at work on is left to it, as it goes on until that outbox is empty, this block's entries included.
        """
        if getattr(_DEFERRED, "buckets", None) is not None:
            yield  # nested: the outer block forwards
            return
        _DEFERRED.buckets = set()
        try:
            yield
        finally:
            buckets, _DEFERRED.buckets = _DEFERRED.buckets, None
            for bucket in sorted(buckets):
                self.forward_written(bucket, sys.maxsize if wait else None)

    def forward_written(self, bucket: int, seq: int | None) -> None:
        """Forward a bucket right after appending entry seq, so a read right after the write sees it (seq None:
        leave the bucket to another forwarder at work on it, without waiting).

        Another forwarder stuck, or storage failing now, is logged, not raised: the write is done and its entry
        safe in the outbox, and beat forwards it.
        """
        deferred = getattr(_DEFERRED, "buckets", None)
        if deferred is not None:
            deferred.add(bucket)
            return
        try:
            self.forward_outbox(bucket, until_seq=seq, wait_s=self.forward_wait_s)
        except (OutboxStuck, StorageUnavailable) as exc:
            log.warning("outbox entry left to beat", extra={"bucket": bucket, "seq": seq, "error": str(exc)})

    def _forward_batch(self, bucket: int, token: str, rows: list[tuple[str, float]]) -> int:
        """Apply one batch of entries, remove them and let go of the lease; return how many entries wait after
        (0 too when the lease was lost before the side effects: the new holder does them)."""
        entries = []
        for member, score in rows:
            _, _, body = member.partition("|")
            entries.append((int(score), json.loads(body)))
        # Every step of the batch, one entity's in order (so they reach its node in order, also in a cluster), behind
        # the lease's renewal: a forwarder that lost it writes no side effect (its steps, guarded by the marks, are
        # no-ops for entries the new holder applied).
        pipe = self.redis.pipeline(transaction=False)
        self.script("renew_if")(keys=[keys.outbox_lease(bucket)], args=[token, LEASE_MS], client=pipe)
        steps = self._queue_batch(pipe, bucket, entries)
        told = _queue_notice_reads(pipe, entries)  # what the notices of the batch say, in the same round trip
        held, *replies = pipe.execute()
        if not int(held):
            return 0
        for step, reply in zip(steps, replies[:len(steps)], strict=True):
            step.reply = list(reply) if step.kind else []
        torn = [step for step in steps if step.kind and int(step.reply[0]) < 0]
        if torn and not self._step_one_by_one(bucket, token, entries, torn):
            return 0
        surveys = _told_surveys(entries, told, self._read_missing(entries, told, replies[len(steps):]))
        notices = _batch_notices(bucket, entries, steps, surveys, self._notice_origin())
        ranks, answered = self._side_effects(entries, steps, notices,
                                             {index: record for index, (record, _) in surveys.items()})
        # Then check what raced with us: a customer changed by another bucket's forwarder between its step and
        # our rank write, an entity whose answers moved (or that we took off its index and ranked set and another
        # step refilled) meanwhile.
        check = self.redis.pipeline(transaction=False)
        for email in ranks:
            read_rank_state(check, email)
        for kind, ident in answered:
            check.hmget(keys.aggregate(kind, ident), "n", "sent")
        # The batch leaves the outbox and the lease is let go, then the outbox is looked at again: an entry
        # appended meanwhile by a writer that found the lease taken must not wait for beat.
        check.zremrangebyscore(keys.outbox(bucket), "-inf", entries[-1][0])
        self.script("release_if")(keys=[keys.outbox_lease(bucket)], args=[token], client=check)
        check.zcard(keys.outbox(bucket))
        found = check.execute()
        self._settle_races(ranks, answered, found)
        return int(found[-1])

    def _queue_batch(self, pipe: Any, bucket: int, entries: list[tuple[int, dict[str, Any]]]) -> list[_Step]:
        """Queue the step scripts of a batch of entries and return them: a customer's step per entry, every other
        entity's steps of the batch as one, their deltas summed (one by one for an entity that both live and retired
        steps move, as they share its marks), and the erased counts, each in its entry's place."""
        steps: list[_Step] = []
        groups: dict[tuple[str, str], _Step] = {}
        mixed: set[tuple[str, str]] = set()
        for index, (_seq, body) in enumerate(entries):
            retired = body["op"] == "retire"
            dimensions = dimensions_of((kind, ident) for kind, ident, _ in body["steps"])
            for kind, ident, plain in body["steps"]:
                delta = crossed_delta(kind, plain, dimensions)
                step = groups.get((kind, ident))
                if step is None:
                    step = _Step(kind, ident, retired)
                    steps.append(step)
                    if kind != "customer":
                        groups[(kind, ident)] = step
                elif step.retired != retired:
                    mixed.add((kind, ident))
                step.entries.append(index)
                step.deltas.append(delta)
            if (body.get("fx") or {}).get("erased"):
                steps.append(_Step("", "", retired, [index]))
        queued: list[_Step] = []
        for step in steps:
            if (step.kind, step.ident) in mixed:
                queued += [_Step(step.kind, step.ident, entries[index][1]["op"] == "retire", [index], [delta])
                           for index, delta in zip(step.entries, step.deltas, strict=True)]
            else:
                queued.append(step)
        for step in queued:
            if not step.kind:  # counted before the sets lose the sid, so the metrics' totals never go back
                seq, body = entries[step.entries[0]]
                self.script("count_once")(keys=[keys.ERASED], args=[f"{ERASED_MARK}{bucket}", seq,
                                                                    *_flat(body["fx"]["erased"])[1:]], client=pipe)
            elif len(step.entries) == 1:
                seq, body = entries[step.entries[0]]
                self._queue_step(pipe, bucket, seq, body, step.kind, step.ident, step.deltas[0])
            else:
                first, (last, body) = entries[step.entries[0]][0], entries[step.entries[-1]]
                self._queue_step(pipe, bucket, f"{first}-{last}", body, step.kind, step.ident, _summed(step.deltas))
        return queued

    def _step_one_by_one(self, bucket: int, token: str, entries: list[tuple[int, dict[str, Any]]],
                         torn: list[_Step]) -> bool:
        """Step entry by entry the entities whose summed step found only some of its entries applied (a forwarder
        died part of the way through them); False when the lease was lost meanwhile."""
        pipe = self.redis.pipeline(transaction=False)
        self.script("renew_if")(keys=[keys.outbox_lease(bucket)], args=[token, LEASE_MS], client=pipe)
        for step in torn:
            for index, delta in zip(step.entries, step.deltas, strict=True):
                seq, body = entries[index]
                self._queue_step(pipe, bucket, seq, body, step.kind, step.ident, delta)
        held, *replies = pipe.execute()
        at = 0
        for step in torn:
            at += len(step.entries)
            step.reply = list(replies[at - 1])  # what the last of its steps left
        return bool(int(held))

    def _queue_step(self, pipe: Any, bucket: int, seq: int | str, body: Mapping[str, Any], kind: str, ident: str,
                    delta: Mapping[str, Any]) -> None:
        """Queue one entity's step script of an entry (seq), or of entries first to last (seq "<first>-<last>")."""
        retired = body["op"] == "retire"
        args = [bucket, seq, body["sid"], "0" if retired else "1",
                *_flat(delta.get("i", [])), *_flat(delta.get("f", [])), *_flat(delta.get("d", [])),
                *_flat(delta.get("ri", [])), *_flat(delta.get("rf", []))]
        if kind == "customer":
            customer = body.get("c") or {}
            card = customer.get("card")  # absent from entries written before the copy existed
            last = customer.get("last", "")
            args += [*_zop(customer.get("resp")), *_zop(customer.get("surv")), *_zop(customer.get("unhappy")),
                     last, card_copy(body["sid"], last, *card) if card and last != "" else "", KEPT_DAYS,
                     today(int(time.time() * 1000))]
        self.script("outbox_step")(keys=step_keys(kind, ident, retired), args=args, client=pipe)

    def queue_steps(self, pipe: Any, bucket: int, seq: int, body: Mapping[str, Any],
                    count: int | None = None) -> list[tuple[str, str]]:
        """Queue the step scripts of one entry (its first count steps) on a pipeline; return their entities.

        Each is applied only if the entity has not applied this entry before, so queueing them again is safe.
        """
        queued = []
        dimensions = dimensions_of((kind, ident) for kind, ident, _ in body["steps"])
        for kind, ident, delta in body["steps"][:count]:
            self._queue_step(pipe, bucket, seq, body, kind, ident, crossed_delta(kind, delta, dimensions))
            queued.append((kind, ident))
        return queued

    def outbox_entries(self, bucket: int, count: int = BATCH) -> list[tuple[int, dict[str, Any]]]:
        """Return the oldest waiting entries of a bucket's outbox as (seq, entry)."""
        rows = self.redis.zrange(keys.outbox(bucket), 0, count - 1, withscores=True)
        return [(int(score), json.loads(member.partition("|")[2])) for member, score in rows]

    def _read_missing(self, entries: list[tuple[int, dict[str, Any]]], told: list[int],
                      read: list[Any]) -> list[Any]:
        """Return the notice reads of a batch (_queue_notice_reads) with each survey found in neither its hash nor
        its filing hash read again at once (filed.read_at_once): a thaw between the two reads looks like an erasure."""
        missing = [k for k in range(len(told)) if _found_nowhere(read, k)]
        if not missing:
            return read
        read = list(read)
        sids = [entries[told[k]][1]["sid"] for k in missing]
        for k, record in zip(missing, filed.read_at_once(self, sids), strict=True):
            read[3 * k], read[3 * k + 1] = record, None  # read whole: nothing filed to join
        return read

    def _side_effects(self, entries: list[tuple[int, dict[str, Any]]], steps: list[_Step],
                      notices: Sequence[Notice] = (), surveys: Mapping[int, Mapping[str, str]] | None = None,
                      ) -> tuple[dict[str, RankState], dict[tuple[str, str], int | None]]:
        """Emit the batch's notices, then write the single-key side effects of a batch as its last step of each
        entity, and its entries' last word on each survey, leave them (each sets a member's place: the last one is
        what a run in order leaves); return what to check after: the customers' rank states and the other entities'
        answers (None: gone from their index and ranked set), as written."""
        indexed: dict[tuple[str, str], bool] = {}  # (kind, id) -> alive, as its last live step left it
        answered: dict[tuple[str, str], int | None] = {}  # (kind, id) -> its answers then (None: counts nothing)
        retired_sums: set[str] = set()
        ranks: dict[str, RankState] = {}
        for step in steps:
            if not step.kind:
                continue
            if step.retired:
                if any(any(delta.values()) for delta in step.deltas):  # retire_survey indexed them before
                    retired_sums.add(f"{step.kind}|{step.ident}")
            else:
                indexed.pop((step.kind, step.ident), None)
                indexed[(step.kind, step.ident)] = bool(int(step.reply[1]))
                if step.kind != "customer":
                    answered[(step.kind, step.ident)] = int(step.reply[2]) if step.reply[2] != "" else None
            if step.kind == "customer":
                ranks[step.ident] = tuple(str(value) for value in step.reply[2:7])  # type: ignore[assignment]
        timed, anywhere = time_index_ops(entries)
        commented, uncommented = comment_ops(entries, surveys or {})  # the answers holding a comment, as read now
        timed += commented
        if uncommented:
            anywhere[keys.COMMENTED] = uncommented
        for name, sids in anywhere.items():  # entries written before they named the times they moved a sid from
            time_index.drop_anywhere(self, name, sids)
        pipe = self.redis.pipeline(transaction=False)
        emit = self.script("emit_notice").source  # by its source: no SCRIPT EXISTS round trip before the pipeline
        for notice in notices:  # before the entries leave the outbox (the next round trip): emitted at least once
            names, args = notice_call(*notice)
            pipe.execute_command("EVAL", emit, len(names), *names, *args)
        members: dict[tuple[str, bool], list[str]] = {}
        for (kind, ident), alive in indexed.items():
            members.setdefault((kind, alive), []).append(ident)
        for (kind, alive), idents in members.items():
            (pipe.sadd if alive else pipe.srem)(keys.index(kind), *idents)
        if retired_sums:
            pipe.sadd(keys.RETIRED_INDEX, *sorted(retired_sums))
        write_entity_ranks(pipe, answered)
        placing: dict[str, tuple[dict[str, float], list[str]]] = {}
        for email, state in ranks.items():
            for rank_key, score in rank_scores(state).items():
                adds, drops = placing.setdefault(rank_key, ({}, []))
                if score is None:
                    drops.append(email)
                else:
                    adds[email] = score
        for index_key, (adds, drops) in placing.items():
            if adds:
                pipe.zadd(index_key, adds)
            if drops:
                pipe.zrem(index_key, *drops)
        queue_place_risk(self, pipe, list(ranks))  # after the ranked sets it is placed from
        time_index.queue_lookups(pipe, timed)  # last: their replies end the round trip's
        if len(pipe):
            replies = pipe.execute()
            time_index.finish(self, timed, replies[len(replies) - len(timed):])
        return ranks, answered

    def _settle_races(self, ranks: dict[str, RankState], answered: dict[tuple[str, str], int | None],
                      found: list[Any]) -> None:
        """Put right what a concurrent forwarder changed under our feet (see _forward_batch); rare, so slow."""
        replies = iter(found)
        stale = [email for email, written in ranks.items()
                 if not _same_rank(rank_state_of(next(replies), next(replies), next(replies)), written)]
        moved = [entity for entity, written in answered.items() if _answers_of(next(replies)) != written]
        for _ in range(10):
            if not moved:
                break
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in moved:
                pipe.hmget(keys.aggregate(kind, ident), "n", "sent")
            now = {entity: _answers_of(read) for entity, read in zip(moved, pipe.execute(), strict=True)}
            pipe = self.redis.pipeline(transaction=False)
            for (kind, ident), n in now.items():
                if n is not None:
                    pipe.sadd(keys.index(kind), ident)  # refilled after we took it off
            write_entity_ranks(pipe, now)
            pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in moved:
                pipe.hmget(keys.aggregate(kind, ident), "n", "sent")
            moved = [entity for entity, read in zip(moved, pipe.execute(), strict=True)
                     if _answers_of(read) != now[entity]]
        for _ in range(10):
            if not stale:
                return
            states = self.rank_states(stale)
            pipe = self.redis.pipeline(transaction=False)
            for email, state in states.items():
                write_ranks(pipe, email, state)
            queue_place_risk(self, pipe, list(states))
            pipe.execute()
            again = self.rank_states(stale)
            stale = [email for email in stale if not _same_rank(again[email], states[email])]

    def rank_states(self, emails: Sequence[str]) -> dict[str, RankState]:
        """Read customers' rank states (what their places in the ranked sets follow from)."""
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            read_rank_state(pipe, email)
        read = pipe.execute()
        return {email: rank_state_of(read[3 * i], read[3 * i + 1], read[3 * i + 2]) for i, email in enumerate(emails)}
