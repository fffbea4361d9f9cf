"""The expiry pass's reads: sent surveys in send order after a stored cursor, and what a notice of each says; and
settling the surveys it has decided (survey_codes: their fields packed into one)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import redis

from tracker.store import filed, keys, time_index
from tracker.store.base import REDIS_DEFAULT_HASH_VALUE, RedisBase
from tracker.store.survey_codes import expanded

log = logging.getLogger(__name__)
Cursor = tuple[int, str]  # (send time ms, sid): the last sent survey the pass has decided


FILING_SAMPLE = 64  # filing hashes `tracker check` looks at


def filing_sample(count: int = FILING_SAMPLE) -> list[str]:
    """Name a fixed sample of filing hashes, spread over the buckets and each bucket's hashes."""
    return [keys.filing_hash(n % keys.BUCKETS, (n * 2654435761) % keys.FILED_PER_BUCKET) for n in range(count)]


class Expiries(RedisBase):
    """Walk the SENT index by send time behind a cursor, in pages."""

    def expiry_cursor(self) -> Cursor | None:
        """Return where the expiry pass stands, None before its first run."""
        raw = self.redis.get(keys.EXPIRY_CURSOR)
        if not raw:
            return None
        at, _, sid = raw.partition("|")
        return int(at), sid

    def set_expiry_cursor(self, cursor: Cursor) -> None:
        self.redis.set(keys.EXPIRY_CURSOR, f"{cursor[0]}|{cursor[1]}")

    def sent_after(self, cursor: Cursor, upto_ms: int, limit: int) -> list[Cursor]:
        """Return up to limit sent surveys after cursor (by send time, then sid) sent no later than upto_ms."""
        found: list[Cursor] = []
        for rows in time_index.window(self.redis, "sent", cursor[0], upto_ms, after=cursor):
            found += [(at, sid) for sid, at in rows]
            if len(found) >= limit:
                break
        return found[:limit]

    def surveys_with_names(self, sids: Sequence[str]) -> list[tuple[dict[str, str], str | None]]:
        """Return each survey's hash and its customer's name (two round trips for them all)."""
        records = [expanded(record) for record in filed.read_many(self, sids)]
        pipe = self.redis.pipeline(transaction=False)
        for record in records:
            pipe.hget(keys.customer(record.get("customer") or "-", "profile"), "name")
        return list(zip(records, pipe.execute(), strict=True)) if records else []

    def settle(self, sids: Sequence[str]) -> int:
        """Settle these surveys (settle_survey.lua, one script each in its survey's slot, all in one round trip):
        the caller knows they can no longer be answered. Each is filed too unless it has an expiry
        (tracker.store.filed). Return how many were settled or filed now.

        A packed value longer than the Redis lets a compact hash hold would turn the hash into a hash table,
        bigger than the fields were: such a survey stays as it is. A Redis that refuses CONFIG GET is taken to
        hold its default (64 bytes), which packs nothing (docker-compose.yml sets 512: COMPACT_HASH_VALUE). A
        survey its script refuses (a key that is not a survey's hash) is logged and left: the others settle."""
        if not sids:
            return 0
        longest = self.compact_hash_value() or REDIS_DEFAULT_HASH_VALUE
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            self.script("settle_survey")(keys=[keys.survey(sid), keys.survey_filed(sid)], args=[longest], client=pipe)
        settled = 0
        for sid, done in zip(sids, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(done, redis.ResponseError):
                log.warning("survey not settled", extra={"survey": sid, "error": str(done)[:200]})
            else:
                settled += int(int(done) > 0)
        return settled

    def filing_fill(self, sample: int = FILING_SAMPLE) -> int:
        """Return the most settled surveys any of a fixed sample of filing hashes holds (tracker.store.filed), one
        round trip: what `tracker check` compares with the fields Redis keeps in a compact hash."""
        pipe = self.redis.pipeline(transaction=False)
        for name in filing_sample(sample):
            pipe.hlen(name)
        return max(pipe.execute(), default=0)

    def survey_pages(self, batch: int = 500) -> Iterator[list[tuple[str, dict[str, str]]]]:
        """Yield every survey's (sid, hash by name) in pages (SCAN over every master of a cluster): what
        `tracker upgrade-store` settles from."""
        found: list[str] = []

        def page(names: list[str]) -> list[tuple[str, dict[str, str]]]:
            sids = [keys.survey_sid(name) for name in names]  # a hash beside a filed value is read with it
            return [(sid, expanded(record)) for sid, record in zip(sids, filed.read_many(self, sids),
                                                                   strict=True) if record]

        for name in self.redis.scan_iter(match=keys.SURVEYS_MATCH, count=1000):
            found.append(name)
            if len(found) >= batch:
                yield page(found)
                found = []
        if found:
            yield page(found)
