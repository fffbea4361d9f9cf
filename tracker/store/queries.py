"""Reads behind the leads' listings and summaries, and the per-key request counter of the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from tracker.model import Aggregate, Answer, Survey
from tracker.store import filed, keys, sieve, time_index
from tracker.store.base import RedisBase
from tracker.store.commented import holding_comments
from tracker.store.records import Records
from tracker.store.rollups import CROSSED_SUMS, CROSSED_TOTAL
from tracker.store.scores import answer_of
from tracker.store.surveys import survey_from_hash

BATCH = 500
DIRECT_FIELDS = 256  # rollups() reads a range of at most this many fields of a rollup by HMGET, not days_of.lua
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The ranked sets customers are listed by, by the API's sort names; "unhappy" breaks ties of "value".
RANKS = {"score": keys.RANK_SCORE, "value": keys.RANK_VALUE, "recent": keys.RANK_RECENT,
         "responses": keys.RANK_RESPONSES, "unhappy": keys.RANK_UNHAPPY, "risk": keys.RANK_RISK,
         "risk:recent": keys.RISK_RECENT, "risk:responses": keys.RISK_RESPONSES}


def _chunks(items: list[str], size: int = BATCH) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def day_fields(first: date, last: date, separator: str, names: Sequence[str]) -> list[str] | None:
    """Name the fields "<day><separator><name>" of a hash keyed by day from first to last, day by day and each
    name in order: what one HMGET asks for. None for a range of more than DIRECT_FIELDS fields."""
    days = last.toordinal() - first.toordinal() + 1
    if not 0 < days * len(names) <= DIRECT_FIELDS:
        return None
    return [f"{date.fromordinal(first.toordinal() + d).isoformat()}{separator}{name}"
            for d in range(days) for name in names]


def span_totals(reply: Sequence[str | None], first: date, spans: Sequence[tuple[date, date]],
                width: int) -> list[list[int]]:
    """Sum an HMGET of day_fields (width names a day, from first) over each span of its days (both ends included;
    an empty span sums to nothing) as [span][name], by slices of the reply. The fields are counts (HINCRBY)."""
    origin = first.toordinal()
    return [[sum(map(int, filter(None, reply[max(start.toordinal() - origin, 0) * width + at:
                                             max(end.toordinal() - origin + 1, 0) * width:width])))
             for at in range(width)] for start, end in spans]


def split_reader(first: date, last: date, split: date, separator: str,
                 names: Sequence[str]) -> tuple[list[str], Callable[[Sequence[str | None]], list[int]]] | None:
    """Return the fields of a range of days of a hash keyed by day, and what turns an HMGET of them into each
    name's sum over the days from first to before split, then from split to last (as days_of.lua sums them
    with a split): None for a range of more than DIRECT_FIELDS fields. The fields are counts (HINCRBY).

    For a rollup, which soon holds more fields than a compact hash may, one HMGET costs Redis a tenth of
    days_of.lua (which builds the names and adds what it finds in Lua). Entities' cards read their rollups so too,
    not their day buckets: a compact hash, where HMGET compares every name with every field."""
    fields = day_fields(first, last, separator, names)
    if fields is None:
        return None
    cut = date.fromordinal(min(max(split.toordinal(), first.toordinal()), last.toordinal() + 1))
    spans = [(first, cut - timedelta(days=1)), (cut, last)]

    def summed(reply: Sequence[str | None]) -> list[int]:
        return [total for span in span_totals(reply, first, spans, len(names)) for total in span]

    return fields, summed


class Queries(RedisBase):
    """Batched reads across many customers, agents and responses."""

    def _queue_days(self, pipe: Any, key: str, first: date, last: date, split: date | None, separator: str,
                    names: Sequence[str]) -> None:
        """Queue days_of.lua on a hash keyed by day: the fields "<day><separator><name>" from first to last, or
        with a split their sums before it and from it."""
        span = [first.toordinal() - _EPOCH_ORDINAL, last.toordinal() - _EPOCH_ORDINAL,
                "" if split is None else split.toordinal() - _EPOCH_ORDINAL]
        self.script("days_of")(keys=[key], args=[*span, len(names), *(separator + name for name in names)],
                               client=pipe)

    def rollups(self, entities: Sequence[tuple[str, str, Sequence[str]]], first: date,
                last: date) -> list[dict[str, dict[str, str]]]:
        """Return each (kind, id, names) entity's per-day rollup from first to last (both included) as
        {day: {field: value}}, of the named fields ("n", "sent", "r|<scale>|<rating>", ...) it holds, all in
        one pipeline: the cost of the days asked for, however many the rollups keep.

        A range of at most DIRECT_FIELDS fields is one HMGET (a rollup soon holds more fields than a compact
        hash may, and an HMGET of a hash table costs the names asked for), a longer one days_of.lua, which
        reads the range or the hash, whichever is smaller."""
        pipe = self.redis.pipeline(transaction=False)
        asked: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}  # names -> (field, day, name) of the range
        days = [date.fromordinal(ordinal).isoformat() for ordinal in range(first.toordinal(), last.toordinal() + 1)]
        for kind, ident, names in entities:
            if 0 < len(days) * len(names) <= DIRECT_FIELDS:
                if (wanted := tuple(names)) not in asked:
                    asked[wanted] = [(f"{day}|{name}", day, name) for day in days for name in names]
                pipe.hmget(keys.rollup(kind, ident), [field for field, _, _ in asked[wanted]])
            else:
                self._queue_days(pipe, keys.rollup(kind, ident), first, last, None, "|", names)
        found: list[dict[str, dict[str, str]]] = []
        for (_, _, names), reply in zip(entities, pipe.execute() if entities else [], strict=True):
            by_day: dict[str, dict[str, str]] = {}
            if (fields := asked.get(tuple(names))) is not None:
                for (_, day, name), value in zip(fields, reply, strict=True):
                    if value is not None:
                        by_day.setdefault(day, {})[name] = value
                found.append(by_day)
                continue
            known = set(names)
            for field, value in zip(reply[::2], reply[1::2], strict=True):
                day, _, name = field.partition("|")
                if name in known:
                    by_day.setdefault(day, {})[name] = value
            found.append(by_day)
        return found

    def span_sums(self, entities: Sequence[tuple[str, str, Sequence[str]]], first: date, last: date,
                  spans: Sequence[tuple[date, date]]) -> list[list[list[int]]] | None:
        """Return each (kind, id, names) entity's sums of the named rollup fields over each span of the days from
        first to last (spans: consecutive ranges of those days, both ends included) as [entity][span][name]: one
        HMGET an entity, all in one pipeline (day_fields, span_totals). None when an entity's range holds more than
        DIRECT_FIELDS fields, which rollups() reads by day."""
        asked: dict[tuple[str, ...], list[str] | None] = {}
        for _, _, names in entities:
            if (wanted := tuple(names)) not in asked:
                asked[wanted] = day_fields(first, last, "|", names)
        if not all(asked.values()):
            return None
        pipe = self.redis.pipeline(transaction=False)
        for kind, ident, names in entities:
            pipe.hmget(keys.rollup(kind, ident), asked[tuple(names)])
        return [span_totals(reply, first, spans, len(names))
                for (_, _, names), reply in zip(entities, pipe.execute() if entities else [], strict=True)]

    def entity_counts(self, kind: str, idents: Sequence[str]) -> list[tuple[int, int]]:
        """Return each entity's (answers, sent surveys): what lists are ordered and filtered by."""
        found: list[tuple[int, int]] = []
        for chunk in _chunks(list(idents)):
            pipe = self.redis.pipeline(transaction=False)
            for ident in chunk:
                pipe.hmget(keys.aggregate(kind, ident), "n", "sent")
            found += [(int(n or 0), int(sent or 0)) for n, sent in pipe.execute()]
        return found

    def ranked_entities(self, kind: str, offset: int, limit: int | None) -> tuple[list[str], int]:
        """Return a page of a kind's entities that count something, most answered first (ties by id), from its
        ranked set (keys.entity_rank), and how many there are: one round trip, the cost of the page."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(keys.entity_rank(kind), offset, -1 if limit is None else offset + limit - 1)
        pipe.zcard(keys.entity_rank(kind))
        page, total = pipe.execute()
        return list(page), int(total)

    def ranked_counts(self, kind: str) -> list[tuple[str, int]]:
        """Return (id, answers) of every entity of a kind that counts something, most answered first (ties by id),
        from its ranked set (keys.entity_rank, scored by minus its answers): one command, however many it has."""
        return [(ident, int(-score)) for ident, score in self.redis.zrange(keys.entity_rank(kind), 0, -1,
                                                                           withscores=True)]

    def crossed_counts(self, kind: str, idents: Sequence[str], label: str) -> list[tuple[int, int]]:
        """Return each entity's (answers, sent surveys) crossed by one value of another dimension (label, as
        rollups.cross_label names it): what a list filtered by that value is ordered and filtered by."""
        found: list[tuple[int, int]] = []
        for chunk in _chunks(list(idents)):
            pipe = self.redis.pipeline(transaction=False)
            for ident in chunk:
                pipe.hmget(keys.rollup(kind, ident), f"{CROSSED_TOTAL}|{label}|n", f"{CROSSED_TOTAL}|{label}|sent")
            found += [(int(n or 0), int(sent or 0)) for n, sent in pipe.execute()]
        return found

    def crossed_parts(self, kind: str, idents: Sequence[str], label: str, first: date, split: date,
                      last: date) -> list[tuple[Aggregate, tuple[int, int], tuple[int, int]]]:
        """Return what entity_parts does, of each entity's surveys of one value of another dimension alone: the
        crossed sums its rollup keeps, and the crossed days before and from split."""
        totals = [f"{CROSSED_TOTAL}|{label}|{name}" for name in CROSSED_SUMS]

        def sums_of(reply: Sequence[str | None]) -> Aggregate:
            return Aggregate.from_hash({name: value for name, value in zip(CROSSED_SUMS, reply, strict=True)
                                        if value is not None})

        return self._parts(kind, idents, first, split, last, [f"{label}|n", f"{label}|value6"],
                           lambda pipe, ident: pipe.hmget(keys.rollup(kind, ident), totals), sums_of)

    def entity_parts(self, kind: str, idents: Sequence[str], first: date, split: date,
                     last: date) -> list[tuple[Aggregate, tuple[int, int], tuple[int, int]]]:
        """Return each entity's sums (without days) and its (answers, sum of value6) over the days from first to
        before split and from split to last: what a score card with a trend needs.

        The days come from the entity's rollup ("<day>|n", "<day>|value6"), which its outbox step writes in the same
        script as its day buckets and with the same counts: one HMGET of the range's fields of a hash table, where
        days_of.lua over the day buckets (a compact hash, read whole in Lua) cost Redis five times as much."""
        return self._parts(kind, idents, first, split, last, ["n", "value6"],
                           lambda pipe, ident: pipe.hgetall(keys.aggregate(kind, ident)), Aggregate.from_hash)

    def _parts(self, kind: str, idents: Sequence[str], first: date, split: date, last: date, names: list[str],
               queue_sums: Callable[[Any, str], Any],
               sums_of: Callable[[Any], Aggregate]) -> list[tuple[Aggregate, tuple[int, int], tuple[int, int]]]:
        """Read each entity's sums (queue_sums, turned into an Aggregate by sums_of) and the sums of these two rollup
        names (answers, value6) over the days before split and from it, two commands an entity in one pipeline."""
        found: list[tuple[Aggregate, tuple[int, int], tuple[int, int]]] = []
        direct = split_reader(first, last, split, "|", names)
        for chunk in _chunks(list(idents)):
            pipe = self.redis.pipeline(transaction=False)
            for ident in chunk:
                queue_sums(pipe, ident)
                rollup = keys.rollup(kind, ident)
                if direct:
                    pipe.hmget(rollup, direct[0])
                else:
                    self._queue_days(pipe, rollup, first, last, split, "|", names)
            replies = pipe.execute()
            for sums, days in zip(replies[::2], replies[1::2], strict=True):
                n, v, recent_n, recent_v = direct[1](days) if direct else days
                found.append((sums_of(sums), (int(n), int(v)), (int(recent_n), int(recent_v))))
        return found

    def card_replies(self, emails: Sequence[str]) -> list[list[Any]]:
        """Read the score cards of many customers in one round trip: per customer the replies queue_card_parts
        queues, for card_parts_from."""
        if not emails:
            return []
        pipe = self.redis.pipeline(transaction=False)
        spans = []
        for email in emails:
            start = len(pipe)
            Records.queue_card_parts(pipe, email)
            spans.append((start, len(pipe)))
        replies = pipe.execute()
        return [replies[start:end] for start, end in spans]

    def ids_of(self, kinds: Sequence[str]) -> dict[str, list[str]]:
        """Return every id of each kind that has an aggregate (as ids does), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.smembers(keys.index(kind))
        return {kind: sorted(members) for kind, members in zip(kinds, pipe.execute(), strict=True)}

    def rank_slice(self, sort: str, start: int, count: int, desc: bool) -> list[tuple[str, float]]:
        """Return count (customer, value) pairs of a ranked set from index start, in its order or reversed."""
        key = RANKS[sort]
        if desc:
            return self.redis.zrevrange(key, start, start + count - 1, withscores=True)
        return self.redis.zrange(key, start, start + count - 1, withscores=True)

    def rank_count(self, sort: str, low: float | str, high: float | str) -> int:
        """Count the customers of a ranked set whose value is within [low, high] ("(x" excludes x)."""
        return int(self.redis.zcount(RANKS[sort], low, high))

    def rank_below_bound(self, sort: str, bound: str, count: int) -> list[tuple[str, float]]:
        """Return up to count (customer, value) pairs of a ranked set from the value bound down ("+inf", or "(x":
        below x), highest first (ties by email descending, as Redis keeps them)."""
        return self.redis.zrevrangebyscore(RANKS[sort], bound, "-inf", start=0, num=count, withscores=True)

    def rank_tie(self, sort: str, value: float, email: str | None = None) -> tuple[int, int, int | None]:
        """Return where the customers of a ranked set holding exactly this value stand in its ascending order (first
        index, end index) and the index of the given customer, None when none is given or it does not hold this
        value (it moved): one round trip."""
        key = RANKS[sort]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(key, "-inf", f"({value!r}")
        pipe.zcount(key, "-inf", repr(value))
        if email is not None:
            pipe.zscore(key, email)
            pipe.zrank(key, email)
        first, end, *found = pipe.execute()
        at = int(found[1]) if found and found[0] is not None and float(found[0]) == value else None
        return int(first), int(end), at

    def customers_without(self, sort: str, positive: bool) -> int:
        """Count the customers a ranked set holds no value of (positive: none above 0, for counts and order values):
        every customer less those it ranks, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(keys.CUSTOMERS)
        if positive:
            pipe.zcount(RANKS[sort], "(0", "+inf")
        else:
            pipe.zcard(RANKS[sort])
        customers, ranked = pipe.execute()
        return max(0, int(customers) - int(ranked))

    def rank_values(self, sort: str, emails: list[str]) -> list[float | None]:
        """Return each customer's value in a ranked set (None: not in it), in one command."""
        if not emails:
            return []
        return [None if v is None else float(v) for v in self.redis.zmscore(RANKS[sort], emails)]

    def rank_lookup(self, sorts: Sequence[str], emails: Sequence[str]) -> list[list[float | None]]:
        """Return each customer's value in each of the named ranked sets (None: not in it), in one round trip."""
        if not emails or not sorts:
            return [[None] * len(emails) for _ in sorts]
        pipe = self.redis.pipeline(transaction=False)
        for sort in sorts:
            pipe.zmscore(RANKS[sort], list(emails))
        return [[None if v is None else float(v) for v in values] for values in pipe.execute()]

    def rank_below(self, sort: str, high: float) -> list[tuple[str, float]]:
        """Return every (customer, value) of a ranked set with a value under high."""
        return self.redis.zrangebyscore(RANKS[sort], "-inf", f"({high!r}", withscores=True)

    def agent_names(self, idents: list[str]) -> dict[str, str | None]:
        """Return each agent's display name (`<source>:<agent id>` -> name or None), in one command."""
        if not idents:
            return {}
        names = self.redis.hmget(keys.NAMES, [f"agent|{ident}" for ident in idents])
        return {ident: name or None for ident, name in zip(idents, names, strict=True)}

    def customers_after(self, after: str | None, count: int) -> list[str]:
        """Return up to count customers in email order, after the given email (None: from the first)."""
        low = "-" if after is None else "(" + after
        return self.redis.zrangebylex(keys.CUSTOMERS, low, "+", start=0, num=count)

    def first_activity_ms(self) -> int | None:
        """Return the time of the oldest answer or sent survey, None when there is neither: of those stored, or of
        those retention deleted (whose numbers the aggregates keep), whichever is older."""
        times = [at for at in time_index.first_times(self.redis, keys.TIME_INDEXES).values() if at is not None]
        retired = self.redis.get(keys.FIRST_ACTIVITY)
        return min([*times, *([int(retired)] if retired is not None else [])], default=None)

    def keep_first_activity(self, cutoff_ms: int) -> None:
        """Before retention deletes what is older than the cutoff, keep the time of the oldest answer or sent survey
        (the older of it and the one kept before), so that open ranges still start at the first activity."""
        stored = [at for at in time_index.first_times(self.redis, keys.TIME_INDEXES).values() if at is not None]
        if not stored or min(stored) >= cutoff_ms:
            return
        kept = self.redis.get(keys.FIRST_ACTIVITY)
        if kept is None or min(stored) < int(kept):  # one retention sweep at a time (its lease): no race
            self.redis.set(keys.FIRST_ACTIVITY, str(min(stored)))

    def _window(self, kind: str, min_ms: float | str, max_ms: float | str, newest_first: bool,
                batch: int, where: Mapping[str, str | None] | None = None) -> Iterator[dict[str, str]]:
        """Yield the hashes of answered surveys (kind "resp", by answer time) or sent ones (kind "survey", by send
        time): a survey's hash holds its answer too. where: filters the caller checks each survey by (Facets'
        names), of which Redis is asked first which surveys may pass (tracker.store.sieve): only those come back."""
        wanted = sieve.needles(where or {})
        for sids in self._window_ids(kind, min_ms, max_ms, newest_first, batch):
            held = sieve.holding(self, sids, wanted)
            yield from (row for row in filed.read_many(self, held) if row)  # answer_of and the like expand

    def _window_ids(self, kind: str, min_ms: float | str, max_ms: float | str, newest_first: bool,
                    batch: int) -> Iterator[list[str]]:
        """Yield the survey ids of a window of time in batches, as _window reads their hashes: by time, then sid
        (newest first reversed). Batches smaller than BATCH double each round, so a reader that may stop early
        reads little at first."""
        for rows in time_index.batches(self.redis, "resp" if kind == "resp" else "sent", min_ms, max_ms, newest_first,
                                       batch, BATCH):
            yield [sid for sid, _ in rows]

    def customer_response_slice(self, email: str, offset: int, count: int) -> tuple[list[tuple[int, Answer]], bool]:
        """Return (position, answer) pairs of a customer's answers from offset, newest first, and whether they end."""
        sids = self.redis.zrevrange(keys.customer(email, "responses"), offset, offset + count - 1)
        found = [(offset + i, answer_of(raw)) for i, raw in enumerate(filed.read_many(self, sids))]
        return [(i, a) for i, a in found if a], len(sids) < count

    def answers_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                        batch: int = BATCH, where: Mapping[str, str | None] | None = None) -> Iterator[Answer]:
        """Yield the answers given in a window of time (ms, or "-inf"/"+inf"), oldest first unless asked; where
        filters are given, those of them Redis finds may pass (_window): the caller checks each."""
        for raw in self._window("resp", min_ms, max_ms, newest_first, batch, where):
            if answer := answer_of(raw):
                yield answer

    def commented_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                          batch: int = BATCH) -> Iterator[Answer | None]:
        """Yield, in the order answers_between yields the answers of a window of time, each one that holds a
        comment and None for each that holds none: which ones hold a comment is asked first, one script a survey
        bucket (commented.lua), and only the commented answers are read whole, so a search for comments costs what
        it finds and a few commands, not two commands and a survey sent back for every answer it passes over."""
        for sids in self._window_ids("resp", min_ms, max_ms, newest_first, batch):
            held = holding_comments(self, sids)
            whole = dict(zip(held, filed.read_many(self, held), strict=True))
            yield from (answer_of(whole[sid]) if sid in whole else None for sid in sids)

    def comments_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                         batch: int = BATCH) -> Iterator[Answer | None]:
        """Yield, for each entry of the commented answers' index (tracker.store.commented) in a window of time, in
        its order, the answer when it still holds a comment and was given at the entry's time, else None (an entry
        left behind by a filling that raced a change): the answers with a comment alone are read, whole."""
        seen: set[str] = set()
        for rows in time_index.batches(self.redis, keys.COMMENTED, min_ms, max_ms, newest_first, batch, BATCH):
            for (sid, at), raw in zip(rows, filed.read_many(self, [sid for sid, _ in rows]), strict=True):
                answer = answer_of(raw)
                if answer is None or not answer.comment or answer.at_ms != at or sid in seen:
                    yield None
                    continue
                seen.add(sid)
                yield answer

    def surveys_between(self, min_ms: float | str, max_ms: float | str, newest_first: bool = False,
                        batch: int = BATCH, where: Mapping[str, str | None] | None = None) -> Iterator[Survey]:
        """Yield the surveys sent in a window of time (ms, or "-inf"/"+inf"), oldest first unless asked; where
        filters are given, those of them Redis finds may pass (_window): the caller checks each."""
        for raw in self._window("survey", min_ms, max_ms, newest_first, batch, where):
            if survey := survey_from_hash(raw):
                yield survey

    def customers_own(self, emails: Sequence[str]) -> list[tuple[list[Survey], list[Answer]]]:
        """Return each customer's surveys and answers (their own indexes: a customer has few), in two round trips
        for them all: what a score card narrowed by filters is computed from."""
        if not emails:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.zrange(keys.customer(email, "surveys"), 0, -1)
            pipe.zrange(keys.customer(email, "responses"), 0, -1)
        replies = pipe.execute()
        wanted = [sorted(set(surveys) | set(answers)) for surveys, answers in zip(replies[::2], replies[1::2],
                                                                                    strict=True)]
        records = iter(filed.read_many(self, [sid for sids in wanted for sid in sids]))
        found: list[tuple[list[Survey], list[Answer]]] = []
        for email, sids in zip(emails, wanted, strict=True):
            rows = [next(records) for _ in sids]
            found.append(([s for raw in rows if (s := survey_from_hash(raw)) and s.customer == email],
                          [a for raw in rows if (a := answer_of(raw)) and a.customer == email]))
        return found
