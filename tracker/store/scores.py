"""Answers and the aggregates they move: written through the outbox, one answer at a time, rebuilt on demand.

An answer lives in its survey's hash (a hash with a rating holds one; record_answer.lua names its fields, by the
codes of survey_codes). It keeps what it counted (its Aggregate: value6, satisfied, promoter, detractor, nps,
weight, weighted and its day), so a change or an erasure takes off exactly what was added. Who it is about and how
it is attributed are the survey's own fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tracker.model import Aggregate, Answer, Survey
from tracker.store import filed, keys, time_index
from tracker.store.alerts import held_member
from tracker.store.customer_days import expire_at_ms
from tracker.store.notice_data import extra_answers
from tracker.store.outbox import Outbox, answer_entry, detail_entry, rank_scores, reason_entry, write_entity_ranks
from tracker.store.pairs import pairs_args
from tracker.store.risk import kept_threshold, place_every_risk
from tracker.store.rollups import Rollup, rollup_from_hash
from tracker.store.survey_codes import coded_mapping, expanded, picked_from
from tracker.store.surveys import aggregate_ids, survey_to_hash, tags_json, tags_of

# The fields an answer's sums are read from; a change or an erasure checks them unchanged.
COUNTED = ("rating", "value6", "satisfied", "promoter", "detractor", "nps", "weight", "weighted", "day")
# Every field an answer adds to its survey's hash (beside status "answered" and answered_at, its latest rating's
# time). None is a Survey field: the follow-up reason the customer picked is answer_reason, as the survey's own
# reason says why it was skipped or failed.
ANSWER_FIELDS = (*COUNTED, "comment", "commented_at", "answer_reason", "extra", "first_at", "changes")
# What an answer's outbox entry is computed from: its sums, the scale its rating was on (the rollup's count) and
# its follow-up reason (the rollup counts an unsatisfied answer's).
ANSWERED = (*COUNTED, "scale", "answer_reason", "answered_at")  # answered_at: where the time index holds it
# What an erasure or retirement computes its entry from: the entities the answer counted for, too.
ATTRIBUTED = ("customer", "source", "agent_id", "team", "brand", "channel", "organisation", "tags", "resolved_by")
ATTEMPTS = 20
REBUILD_BATCH = 200  # entities per round trip of a rebuild's writes


@dataclass
class Rebuilt:
    """What a rebuild derives from the stored answers and sent surveys (and the retired sums)."""

    aggregates: dict[tuple[str, str], Aggregate] = field(default_factory=dict)
    rollups: dict[tuple[str, str], Rollup] = field(default_factory=dict)
    unhappy: dict[str, dict[str, int]] = field(default_factory=dict)  # customer -> unsatisfied answers' sid -> at
    answers: int = 0  # the answers counted
    reweighted: dict[str, Aggregate] = field(default_factory=dict)  # the answers whose stored weights differ
    reasons: set[str] = field(default_factory=set)  # every follow-up reason an answer holds


def counted_fields(counted: Aggregate) -> dict[str, str]:
    """Return the fields that keep what one answer counted."""
    ((day, _),) = counted.days.items()
    return {"value6": str(counted.value6), "satisfied": str(counted.satisfied), "promoter": str(counted.promoter),
            "detractor": str(counted.detractor), "nps": str(counted.nps), "weight": repr(counted.weight),
            "weighted": repr(counted.weighted), "day": day}


def answer_of(raw: Mapping[str, str]) -> Answer | None:
    """Read the answer a survey hash holds into an Answer; None when it holds none (no rating)."""
    raw = expanded(raw)
    if not raw.get("rating") or not raw.get("sid"):
        return None

    def text(name: str) -> str | None:
        return raw.get(name) or None

    counted = Aggregate.from_hash({name: raw[name] for name in COUNTED if name in raw})
    return Answer(sid=raw["sid"], rating=int(raw["rating"]), scale=raw.get("scale", ""),
                  at_ms=int(raw.get("answered_at") or 0), customer=raw.get("customer", ""), counted=counted,
                  comment=text("comment"), reason=text("answer_reason"), tkey=text("tkey"),
                  tags=tags_of(raw.get("tags")), organisation=text("organisation"), resolved_by=text("resolved_by"),
                  source=text("source"),
                  agent_id=text("agent_id"), agent_name=text("agent_name"), team=text("team"), brand=text("brand"),
                  channel=text("channel"), subject=text("subject"), answered_via=text("answered_via"),
                  extra=extra_answers(raw.get("extra")))


def answer_aggregate_ids(answer: Answer) -> list[tuple[str, str]]:
    """Return the (kind, id) of every aggregate an answer counts towards."""
    return aggregate_ids({"customer": answer.customer, "source": answer.source or "",
                          "agent_id": answer.agent_id or "", "team": answer.team or "", "brand": answer.brand or "",
                          "channel": answer.channel or "", "organisation": answer.organisation or "",
                          "tags": tags_json(answer.tags), "resolved_by": answer.resolved_by or ""})


class Scores(Outbox):
    """Record answers and read or rebuild the aggregates."""

    def record_answer(self, survey: Survey, rating: int, comment: str, at_ms: int,
                      counted: Aggregate, reason: str | None = None, at_risk_score: float | None = None,
                      extra: Mapping[str, str] | None = None, alert: bool = False, quiet: bool = False) -> int:
        """Record the answer once; return 0 unchanged, 1 comment, reason or extra answers changed, 2 rating counted.

        at_risk_score (TRACKER_AT_RISK_SCORE) goes into the outbox entry: its forwarder emits customer.at_risk
        when the answer takes the customer's score below it (None: it does not). extra: the answers to a custom
        survey's extra questions (None keeps the stored ones, {} clears them). alert: the rating calls for an alert,
        held with the answer when it counts (tracker.store.alerts).

        One script in the survey's slot writes the answer into the survey's hash and appends what it does to every
        aggregate to the bucket's outbox; the bucket is forwarded at once, so reads right after see the new numbers.
        A change of the comment, reason or extra answers alone appends an entry without steps, which the forwarder
        tells as survey.changed (and so reaches the event stream and the ticket's note). A test survey (tracker
        survey test-send) appends nothing: its answer counts nowhere and tells nothing. quiet: the entries count
        and tell nothing (a replayed export's answer, told by the install it came from).
        """
        sid, record = survey.sid, survey_to_hash(survey)
        test = bool(survey.test)
        ids = [] if test else aggregate_ids(record)
        bucket = keys.bucket_of(sid)
        index = self.redis.pipeline(transaction=False)
        # Index first: an index entry without data is harmless, data missing from the index is not.
        for kind, ident in ids:
            index.sadd(keys.index(kind), ident)
        if reason and not test:
            index.sadd(keys.REASONS, reason)  # the reasons the dashboard's breakdown asks the rollups for
        filed.queue_read(index, sid)  # the stored answer, read in the same round trip
        read = picked_from(ANSWERED, filed.joined(sid, *index.execute()[-2:]))
        fields = {"rating": str(rating), **counted_fields(counted)}
        extra_json = "" if not extra else json.dumps(dict(extra), separators=(",", ":"), ensure_ascii=False)
        said = {"comment": comment, **({"reason": reason} if reason is not None else {}),
                **({"extra": extra_json} if extra is not None else {})}
        for _ in range(ATTEMPTS):
            stored = {k: v or "" for k, v in zip(ANSWERED, read, strict=True)}
            body = "" if test else answer_entry(sid, ids, survey.scale, rating, at_ms, counted, stored,
                                                tkey=survey.tkey, risk=at_risk_score, reason=reason, said=said,
                                                quiet=quiet)
            detail = "" if test else (detail_entry(sid, survey.customer, rating, at_ms, quiet) if reason is None else
                                      reason_entry(sid, survey.customer, rating, at_ms, ids, stored, reason, quiet))
            outcome, seq = self.script("record_answer")(
                keys=[keys.survey(sid), keys.outbox(bucket), keys.outbox_seq(bucket), keys.survey_filed(sid),
                      keys.alerts_held(bucket)],
                args=[rating, at_ms, comment, reason or "", int(reason is not None), body,
                      int(extra is not None), extra_json, detail, held_member(sid, rating) if alert else "",
                      *pairs_args(coded_mapping(stored).items()), *pairs_args(coded_mapping(fields).items())])
            if int(outcome) >= 0:
                if int(seq):
                    self.forward_written(bucket, int(seq))
                return int(outcome)
            read = picked_from(ANSWERED, filed.read_many(self, [sid])[0])
        raise RuntimeError(f"the answer to {sid} kept changing while it was recorded")

    def response(self, sid: str) -> Answer | None:
        """Return the answer to a survey, or None (no survey, or not answered)."""
        return answer_of(filed.read_many(self, [sid])[0])

    def aggregate(self, kind: str, ident: str) -> Aggregate:
        ((_, agg),) = self.aggregates(kind, [ident])
        return agg

    def aggregates(self, kind: str, idents: Sequence[str], batch: int = 500) -> list[tuple[str, Aggregate]]:
        """Return (id, aggregate with its daily buckets) for many ids of one kind, in batches."""
        rows: list[tuple[str, Aggregate]] = []
        for start in range(0, len(idents), batch):
            chunk = idents[start:start + batch]
            pipe = self.redis.pipeline(transaction=False)
            for ident in chunk:
                pipe.hgetall(keys.aggregate(kind, ident))
                pipe.hgetall(keys.daily(kind, ident))
            replies = pipe.execute()
            rows += [(ident, Aggregate.from_hash(replies[2 * i], replies[2 * i + 1])) for i, ident in enumerate(chunk)]
        return rows

    def ids(self, kind: str) -> list[str]:
        return sorted(self.redis.smembers(keys.index(kind)))

    def reasons(self) -> list[str]:
        """Return every follow-up reason an answer was given (some may count nothing any more)."""
        return sorted(self.redis.smembers(keys.REASONS))

    def note_reasons(self, reasons: Iterable[str]) -> None:
        """Add follow-up reasons to the ones the reasons breakdown reads (a rebuild: those its answers hold)."""
        if wanted := sorted(set(reasons)):
            self.redis.sadd(keys.REASONS, *wanted)

    def customer_responses(self, email: str, offset: int = 0, limit: int = 50) -> list[Answer]:
        sids = self.redis.zrevrange(keys.customer(email, "responses"), offset, offset + limit - 1)
        return [a for raw in filed.read_many(self, sids) if (a := answer_of(raw))]

    def iter_answers(self, batch: int = 500) -> Iterator[Answer]:
        """Yield every stored answer."""
        for raw in self.iter_hashes("resp", batch=batch):
            if answer := answer_of(raw):
                yield answer

    def iter_hashes(self, index: str, kind: str = "survey", batch: int = 500) -> Iterator[dict[str, str]]:
        """Yield the hash of every survey a time index lists ("resp": the answered ones, "sent": the sent ones),
        oldest first; kind is only ever "survey", the one hash a survey and its answer have."""
        if kind != "survey":
            raise ValueError(f"no hash of kind {kind!r}: an answer lives in its survey's hash")
        pending: list[str] = []
        for rows in time_index.window(self.redis, index):
            pending += [sid for sid, _ in rows]
            if len(pending) >= batch:
                yield from self._hashes(pending)
                pending = []
        yield from self._hashes(pending)

    def _hashes(self, sids: Sequence[str]) -> Iterator[dict[str, str]]:
        yield from (expanded(h) for h in filed.read_many(self, sids) if h)

    def write_rebuilt(self, rebuilt: Rebuilt, snapshot: Sequence[int]) -> bool:
        """Write a rebuild computed while every outbox stood at snapshot (and was empty); False when an entity
        took an entry newer than the snapshot before its turn (compute again).

        Each entity is written by one script in its own slot that first checks its marks: none newer than the
        snapshot, so nothing the computation did not see is overwritten. Entities that count nothing any more
        go (from their index and their kind's ranked set too), each written one's place in its ranked set is set,
        then the customers' ranked sets are set from their states.
        """
        stale = False
        entities = list(rebuilt.aggregates)
        listed = {kind: set(self.redis.smembers(keys.index(kind))) for kind in keys.AGGREGATE_KINDS}
        for kind, ident in {(k, i) for k in keys.AGGREGATE_KINDS for i in listed[k]} - set(entities):
            entities.append((kind, ident))
        pipe = self.redis.pipeline(transaction=False)
        for kind, ident in entities:  # index before data
            if (kind, ident) in rebuilt.aggregates and ident not in listed[kind]:
                pipe.sadd(keys.index(kind), ident)
        pipe.execute()
        for start in range(0, len(entities), REBUILD_BATCH):
            chunk = entities[start:start + REBUILD_BATCH]
            pipe = self.redis.pipeline(transaction=False)
            for kind, ident in chunk:
                agg = rebuilt.aggregates.get((kind, ident), Aggregate())
                sums, daily = agg.to_hash()
                rollup = rebuilt.rollups.get((kind, ident), {}) if kind != "customer" else {}
                names = [keys.applied_marks(kind, ident), keys.aggregate(kind, ident), keys.daily(kind, ident),
                         keys.rollup(kind, ident)]
                unhappy: Mapping[str, int] = {}
                if kind == "customer":
                    names.append(keys.customer(ident, "unhappy"))
                    unhappy = rebuilt.unhappy.get(ident, {})
                self.script("rebuild_entity")(
                    keys=names,
                    args=[len(snapshot), *snapshot, *pairs_args(sums.items()), *pairs_args(daily.items()),
                          *pairs_args((k, rollup[k]) for k in sorted(rollup)),
                          *pairs_args((sid, at) for sid, at in sorted(unhappy.items())),
                          (expire_at_ms(agg.days) or "") if kind == "customer" else ""],
                    client=pipe)
            written = pipe.execute()
            gone = self.redis.pipeline(transaction=False)
            placed: dict[tuple[str, str], int | None] = {}
            for (kind, ident), done in zip(chunk, written, strict=True):
                stale = stale or not int(done)
                if int(done) and (kind, ident) not in rebuilt.aggregates:
                    gone.srem(keys.index(kind), ident)
                if int(done) and kind != "customer":
                    counted = rebuilt.aggregates.get((kind, ident))
                    placed[(kind, ident)] = None if counted is None or counted.empty else counted.n
            write_entity_ranks(gone, placed)
            gone.execute()
        # Members of a kind's ranked set that no index lists any more (nothing above wrote them) go too.
        known = {(kind, ident) for kind, ident in entities}
        pipe = self.redis.pipeline(transaction=False)
        ranked_kinds = [kind for kind in keys.AGGREGATE_KINDS if kind != "customer"]
        for kind in ranked_kinds:
            pipe.zrange(keys.entity_rank(kind), 0, -1)
        extra = {(kind, ident): None for kind, members in zip(ranked_kinds, pipe.execute(), strict=True)
                 for ident in members if (kind, ident) not in known}
        if extra:
            pipe = self.redis.pipeline(transaction=False)
            write_entity_ranks(pipe, extra)
            pipe.execute()
        # Only after a change of TRACKER_SCORE_HALF_LIFE_DAYS do answers' stored weights differ.
        answers = list(rebuilt.reweighted.items())
        for start in range(0, len(answers), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for sid, counted in answers[start:start + 1000]:
                pipe.hset(keys.survey(sid), mapping=coded_mapping({"weight": repr(counted.weight),
                                                                   "weighted": repr(counted.weighted)}))
            pipe.execute()
        self.rewrite_ranks()
        return not stale

    def rewrite_ranks(self, batch: int = 1000) -> None:
        """Set every ranked set of customers from the customers' states: add, move and drop what differs; then place
        in the at-risk ranking every customer at risk or held by it."""
        emails = sorted(self.redis.smembers(keys.index("customer")))
        wanted: dict[str, dict[str, float]] = {rank: {} for rank in (keys.RANK_SCORE, keys.RANK_RESPONSES,
                                                                     keys.RANK_RECENT, keys.RANK_UNHAPPY)}
        for start in range(0, len(emails), batch):
            chunk = emails[start:start + batch]
            for email, state in self.rank_states(chunk).items():
                for rank, score in rank_scores(state).items():
                    if score is not None:
                        wanted[rank][email] = score
        for rank, scores in wanted.items():
            have = dict(self.redis.zscan_iter(rank, count=1000))
            pipe = self.redis.pipeline(transaction=False)
            extra = [email for email in have if email not in scores]
            for start in range(0, len(extra), batch):
                pipe.zrem(rank, *extra[start:start + batch])
            moved = {email: score for email, score in scores.items() if have.get(email) != score}
            items = list(moved.items())
            for start in range(0, len(items), batch):
                pipe.zadd(rank, dict(items[start:start + batch]))
            pipe.execute()
        if (threshold := kept_threshold(self)) is not None:  # the at-risk ranking follows them, whatever it held
            place_every_risk(self, threshold)

    def rollup_fields(self, kind: str, ident: str) -> Rollup:
        """Return a (non-customer) entity's rollup: "<day>|<field>" and "<day>|r|<scale>|<rating>" sums."""
        return rollup_from_hash(self.redis.hgetall(keys.rollup(kind, ident)))
