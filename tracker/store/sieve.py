"""Windows of answers or surveys read under filters: only the surveys that may pass come back.

A read by two filters of other dimensions, or by a scale, has no rollup to read (tracker.scores.dimensions,
tracker.scores.summary): it walks the range's answers (and sent surveys) and checks each. Sent back and parsed one
by one, most of them only to be passed over, they cost the reader about 40 µs each. So the walk asks Redis first,
one script a survey bucket for each batch of the time index (sieve.lua): of these surveys, which hold every filter's
value somewhere in their stored fields? Only those are read whole, and the caller still checks each one exactly
(Facets.passes): the sieve may let through a survey that only holds a value in another field (a team named like a
brand), never hold back one that passes, because every value a filter compares is stored as it is compared.

That holds field by field: a filter's value is compared with the field as stored (hash field, packed value or filed
value, each verbatim), but for an agent, compared as `<source>:<agent id>`, whose id alone is stored (the needle is
the id), the organisation, which a settled survey may hold as its customer's address (DERIVED: the domain is in the
address), and tags, stored as a JSON list, where a tag needing escapes (a quote, a backslash, a control character)
is not a needle. A value holding a control character (the packing's separators among them) is never a needle either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tracker.store import filed
from tracker.store.base import RedisBase

# What is stored exactly as it is compared, in a JSON list too (ensure_ascii=False escapes only these).
_PLAIN = re.compile(r'^[^\x00-\x1f\x7f"\\]+$')


def needles(where: Mapping[str, str | None]) -> list[str]:
    """Return what every survey passing these filters (by Facets' names) holds in its stored fields."""
    found = []
    for name, value in where.items():
        if not value:
            continue
        if name == "agent":
            value = value.partition(":")[2]  # `<source>:<agent id>`: the id is the agent's field
        if value and _PLAIN.match(value):
            found.append(value)
    return found


def holding(base: RedisBase, sids: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """Return the sids, of these, whose survey holds every needle, in their order: sieve.lua a survey bucket, all in
    one round trip (filed.held_by). No needles: every sid, and nothing is asked."""
    if not wanted:
        return list(sids)
    return filed.held_by(base, "sieve", sids, *wanted)
