"""Survey records, marking them sent, and the per-customer throttle."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from tracker.events import resolved_by
from tracker.model import Survey
from tracker.organisations import organisation_of
from tracker.store import filed, keys
from tracker.store.outbox import Outbox, sent_entry
from tracker.store.reminders import reminder_member
from tracker.store.survey_codes import coded_mapping, expanded

_FIELDS = fields(Survey)
# Counted by the scripts themselves (HINCRBY); never written from a record.
_COUNTERS = ("attempts", "reminder_attempts")
# When the survey's mail was last handed to the sender and not yet recorded: kept beside the record, not in it.
_HANDOFF = "handoff_at"
MAX_TAGS = 20  # a survey counts for at most this many of its ticket's tags (the first ones, as the ticket lists them)


def _hash_name(name: str) -> str:
    """Name a Survey field as the hash does: times in ms drop the suffix (`sent_at_ms` is `sent_at`)."""
    return name.removesuffix("_ms")


def survey_from_hash(record: Mapping[str, str]) -> Survey | None:
    """Read a survey hash; None when there is none (a hash without a sid is a stray write, not a survey)."""
    record = expanded(record)
    if not record.get("sid"):
        return None
    get = record.get
    values = {name: read(get(stored, "")) for name, stored, read in _READS}
    values["kind"] = values["kind"] or "ticket"
    values["lang"] = values["lang"] or "en"
    return Survey(**values)  # type: ignore[arg-type]


def survey_to_hash(survey: Survey) -> dict[str, str]:
    """Write a survey as its fields by name, leaving out what is unknown and what the scripts count (its hash
    stores them coded: survey_codes.coded_mapping)."""
    record = {_hash_name(field.name): str(value) for field in _FIELDS
              if (value := getattr(survey, field.name)) is not None and field.name not in _COUNTERS}
    record.pop("tags")
    if survey.tags:  # no field for no tags: bytes per survey count
        record["tags"] = tags_json(survey.tags)
    return record


def tags_of(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the tags a survey counts for: a JSON list (as hashes hold it) or a sequence, trimmed, without
    duplicates or empties, the first MAX_TAGS."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "[]")
        except ValueError:
            return ()
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(dict.fromkeys(tag for item in raw if (tag := str(item).strip())))[:MAX_TAGS]


def tags_json(tags: Sequence[str]) -> str:
    return json.dumps(list(tags), separators=(",", ":"), ensure_ascii=False)


def _reader(type_name: str) -> Callable[[str], object]:
    """Return how a Survey field of this (annotated) type is read from its hash's text ("" when absent)."""
    readers: dict[str, Callable[[str], object]] = {
        "int": lambda raw: int(raw or 0), "tuple[str, ...]": tags_of,
        "int | None": lambda raw: int(raw) if raw else None, "str | None": lambda raw: raw or None}
    return readers.get(type_name, str)


# Each Survey field's name, its name in the hash and its reader: worked out once, not for every survey read.
_READS = [(field.name, _hash_name(field.name), _reader(str(field.type))) for field in _FIELDS]


def aggregate_ids(record: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return the (kind, id) of every aggregate a survey counts towards.

    Beside the customer and overall: its source, agent, team, brand, channel, organisation and each of its tags
    (at most MAX_TAGS); and when it says who resolved the ticket, each of those but the customer once more under
    its resolved_by-qualified kind ("agent@bot", keys.split_kind), which the ?resolved_by= reads use.
    """
    ids = [("source", record["source"]), ("overall", "all")]
    if record.get("agent_id"):
        ids.append(("agent", f"{record['source']}:{record['agent_id']}"))
    for kind in ("team", "brand", "channel", "organisation"):
        if record.get(kind):
            ids.append((kind, record[kind]))
    ids += [("tag", tag) for tag in tags_of(record.get("tags"))]
    split = record.get("resolved_by") or ""
    if split in keys.RESOLVERS:
        ids += [(keys.split_kind(kind, split), ident) for kind, ident in ids]
    return [("customer", record["customer"]), *ids]


def with_dimensions(redis: Any, survey: Survey) -> Survey:
    """Return the survey with its ticket's tags and resolved_by and its customer's organisation (SPEC §12), as
    they stand when the survey is made; one round trip."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.customer(survey.customer, "profile"), "organisation")
    if survey.kind == "ticket":
        pipe.hmget(keys.surveyed(survey.tkey), "tags", "resolved_by", "agent_involved")
    given, *ticket = pipe.execute()
    tags, by, involved = ticket[0] if ticket else ("", "", "")
    return with_known_dimensions(survey, tags, given, by or None, None if not involved else involved == "1")


def with_known_dimensions(survey: Survey, tags: str | Sequence[str] | None, given_organisation: str | None,
                          resolver: str | None, agent_involved: bool | None) -> Survey:
    """Return the survey with its dimensions from what its ticket and customer say (already read): the tags it
    counts for, the organisation (tracker.organisations) and who resolved the ticket (tracker.events)."""
    return replace(survey, tags=tags_of(tags), organisation=organisation_of(given_organisation, survey.customer),
                   resolved_by=resolved_by(resolver, agent_involved))


class Surveys(Outbox):
    """Create, send-mark, skip and look up surveys."""

    def survey(self, sid: str) -> Survey | None:
        return survey_from_hash(filed.read_many(self, [sid])[0])

    def create_survey(self, survey: Survey, dimensioned: bool = False) -> Survey:
        """Create the survey record once (later calls keep the first), count an attempt, and return it.

        What the survey is counted by beside its ticket's details (SPEC §12: tags, organisation, resolved_by)
        is copied here from the ticket and the customer's profile, when the survey does not carry it already
        (dimensioned: the caller filled them from what it read, with_known_dimensions).
        """
        if not dimensioned and not (survey.tags or survey.organisation or survey.resolved_by):
            survey = self.with_dimensions(survey)
        key = keys.survey(survey.sid)
        pipe = self.redis.pipeline(transaction=True)
        # A settled (or filed) one: its first fields stand, not packed or filed.
        self.script("thaw_survey")(keys=[key, keys.survey_filed(survey.sid)], client=pipe)
        for name, value in coded_mapping(survey_to_hash(survey)).items():
            pipe.hsetnx(key, name, value)
        pipe.hincrby(key, "attempts", 1)
        pipe.hgetall(key)
        created = survey_from_hash(pipe.execute()[-1])
        assert created is not None  # written just now, in the same transaction
        return created

    def with_dimensions(self, survey: Survey) -> Survey:
        return with_dimensions(self.redis, survey)

    def note_failure(self, sid: str, error: str, next_at_ms: int | None) -> None:
        """Record why a hand-off failed (so nothing was handed off) and when the next try is."""
        mapping: dict[str | bytes, str] = {"error": error[:200]}
        if next_at_ms is not None:
            mapping["next_attempt_at"] = str(next_at_ms)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.survey(sid), mapping=mapping)
        pipe.hdel(keys.survey(sid), _HANDOFF)
        pipe.execute()

    def begin_handoff(self, survey: Survey, at_ms: int) -> None:
        """Index the survey's entities and note the hand-off, so that after it only one script records the send."""
        pipe = self.redis.pipeline(transaction=False)
        # Index first: an index entry without data is harmless, data missing from the index is not.
        for kind, ident in aggregate_ids(survey_to_hash(survey)):
            pipe.sadd(keys.index(kind), ident)
        pipe.hset(keys.survey(survey.sid), _HANDOFF, str(at_ms))
        pipe.execute()

    def index_entities(self, survey: Survey) -> None:
        """Index the entities a survey is attributed to, as a hand-off does (a replayed one that failed after it)."""
        pipe = self.redis.pipeline(transaction=False)
        for kind, ident in aggregate_ids(survey_to_hash(survey)):
            pipe.sadd(keys.index(kind), ident)
        pipe.execute()

    def handoff_at(self, sid: str) -> int | None:
        """Return when the survey's mail was handed off and not recorded since, or None."""
        value = self.redis.hget(keys.survey(sid), _HANDOFF)
        return int(value) if value else None

    def suppress(self, email: str) -> None:
        self.redis.sadd(keys.SUPPRESSED, email)

    def unsuppress(self, email: str) -> bool:
        return bool(self.redis.srem(keys.SUPPRESSED, email))

    def suppressed(self) -> list[str]:
        return sorted(self.redis.smembers(keys.SUPPRESSED))

    def is_suppressed(self, email: str) -> bool:
        return bool(self.redis.sismember(keys.SUPPRESSED, email))

    def reserve_throttle(self, email: str, sid: str, window_ms: int) -> str:
        """Hold the customer's survey slot for sid; return the sid holding it (sid when won)."""
        return str(self.script("reserve_throttle")(
            keys=[keys.customer(email, "throttle")], args=[sid, window_ms]))

    def release_throttle(self, email: str, sid: str) -> None:
        self.script("release_if")(keys=[keys.customer(email, "throttle")], args=[sid])

    def mark_sent(self, survey: Survey, sent_ms: int, expires_ms: int, reminder_at_ms: int | None = None,
                  indexed: bool = False, quiet: bool = False) -> bool:
        """Mark the survey sent, count it once for every entity it is attributed to, and schedule its reminder.

        One script in the survey's slot, so a send is recorded whole or not at all (the counts follow through
        the outbox, forwarded at once); False when it was recorded before. The ticket's side (its survey_sid,
        the due entry) is the caller's next step: Store.settle_sent. indexed says begin_handoff indexed it. quiet:
        no survey.sent notice (a replayed export's survey, told by the install it came from).
        """
        ids = [] if survey.test else aggregate_ids(survey_to_hash(survey))  # a test survey counts nowhere
        if not indexed:
            # Index first: an index entry without data is harmless, data missing from the index is not.
            index = self.redis.pipeline(transaction=False)
            for kind, ident in ids:
                index.sadd(keys.index(kind), ident)
            index.execute()
        bucket = keys.bucket_of(survey.sid)
        marked, seq = self.script("mark_sent")(
            keys=[keys.survey(survey.sid), keys.outbox(bucket), keys.outbox_seq(bucket), keys.survey_due(bucket),
                  keys.survey_filed(survey.sid)],
            args=[sent_ms, expires_ms, "" if survey.test else sent_entry(survey.sid, ids, sent_ms, quiet),
                  reminder_member(survey.sid), reminder_at_ms or 0])
        if int(marked) and int(seq):
            self.forward_written(bucket, int(seq))
        return bool(int(marked))

    def unsubscribe(self, email: str, at_ms: int) -> None:
        self.redis.hset(keys.customer(email, "profile"), mapping={"unsubscribed": str(at_ms)})

    def customer_surveys(self, email: str, limit: int = 100) -> list[Survey]:
        sids = self.redis.zrevrange(keys.customer(email, "surveys"), 0, limit - 1)
        return [survey for record in filed.read_many(self, sids) if (survey := survey_from_hash(record))]

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(keys.STATS).items()}
