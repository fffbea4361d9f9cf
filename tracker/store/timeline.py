"""A customer's timeline read a page at a time: applied events, surveys and answers, each a sorted set by time."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tracker.model import Answer, Survey, TimelineEntry
from tracker.store import filed, keys
from tracker.store.base import RedisBase
from tracker.store.scores import answer_of
from tracker.store.surveys import survey_from_hash

# The customer's sorted sets a timeline merges, in the order that breaks ties between them; each is scored in ms.
TIMELINE_PARTS = ("timeline", "surveys", "responses")


class Timeline(RedisBase):
    """Read slices of a customer's timeline sets and the surveys and answers a page names."""

    def timeline_rows(self, email: str, bound_ms: int | None, skips: Sequence[int], newest_first: bool,
                      count: int) -> list[list[tuple[int, str]]]:
        """Return, per part, up to count (ms, member) from bound_ms on, past the first skips[i] entries at bound_ms."""
        pipe = self.redis.pipeline(transaction=False)
        for part, skip in zip(TIMELINE_PARTS, skips, strict=True):
            key = keys.customer(email, part)
            start = skip if bound_ms is not None else 0
            if newest_first:
                high = "+inf" if bound_ms is None else bound_ms
                pipe.zrevrangebyscore(key, high, "-inf", start=start, num=count, withscores=True)
            else:
                low = "-inf" if bound_ms is None else bound_ms
                pipe.zrangebyscore(key, low, "+inf", start=start, num=count, withscores=True)
        return [[(int(score), member) for member, score in rows] for rows in pipe.execute()]

    def timeline_details(self, survey_ids: Sequence[str], answer_ids: Sequence[str]
                         ) -> tuple[dict[str, Survey], dict[str, Answer]]:
        """Return the surveys and answers a timeline page names, by survey id (missing ones left out)."""
        # The answer lives in its survey's hash.
        replies = filed.read_many(self, [*survey_ids, *answer_ids])
        surveys = {sid: survey for sid, raw in zip(survey_ids, replies[:len(survey_ids)], strict=True)
                   if (survey := survey_from_hash(raw))}
        answers = {sid: answer for sid, raw in zip(answer_ids, replies[len(survey_ids):], strict=True)
                   if (answer := answer_of(raw))}
        return surveys, answers


UNIT = "\x1f"  # separates the fields of an applied event's timeline entry
# The short codes of event types in timeline entries (State._timeline_entry writes them).
KINDS = {"tc": "ticket.created", "tu": "ticket.updated", "ts": "ticket.solved", "tr": "ticket.reopened",
         "tx": "ticket.closed", "oc": "order.created", "of": "order.fulfilled", "or": "order.refunded",
         "ox": "order.cancelled"}


def timeline_entry(member: str, at_ms: int) -> TimelineEntry:
    """Read an applied event's timeline member back into an entry.

    Members are `<code>␟<source>␟<event id>␟<ticket or order id>␟<status>␟<details...>` (State._timeline_entry;
    status "=" is the type's own last word), or JSON as written before.
    """
    if member.startswith("{"):
        entry = json.loads(member)
        said = {name: str(value) for name, value in entry.items() if value is not None}
        return TimelineEntry(at_ms, said.get("kind", ""), source=said.get("source"), event=said.get("event"),
                             ticket=said.get("ticket"), order=said.get("order"), status=said.get("status"),
                             subject=said.get("subject"), total=said.get("total"), currency=said.get("currency"))
    code, source, event, ref, status, first, second = [*member.split(UNIT), "", "", "", "", "", ""][:7]
    kind = KINDS.get(code, code)
    if status == "=":
        status = kind.rpartition(".")[2]
    key = f"{source}:{ref}" if ref else None
    if kind.startswith("order."):
        return TimelineEntry(at_ms, kind, source=source or None, event=event or None, order=key,
                             status=status or None, total=first or None, currency=second or None)
    return TimelineEntry(at_ms, kind, source=source or None, event=event or None, ticket=key,
                         status=status or None, subject=first or None)
