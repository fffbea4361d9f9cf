"""Where an entity's sums and high-water marks live: one hash, the entity's sums hash (keys.aggregate).

Its fields are the counts and sums of model.Aggregate (model.COUNTS, model.SUMS) and, per survey bucket, the newest
outbox entry applied to the entity (the bucket's number as the field: keys.applied_marks names the same hash). A
customer's sums hash is their profile: one key where layout 9 kept three (profile, sums, marks), about 200 bytes
less a customer. So a sums hash is never deleted whole: the sums leave by drop_sums (the Lua that scripts saying
`--#sums` get), the marks stay (an outbox entry forwarded again must still find them), and a profile is a
customer's own only through its other fields (own_fields).
"""

from __future__ import annotations

from collections.abc import Mapping

from tracker.model import COUNTS, SUMS

SUM_FIELDS = (*COUNTS, *SUMS)
_SUMS = frozenset(SUM_FIELDS)


def is_mark(name: str) -> bool:
    """Say whether a field of a sums hash is a high-water mark (a bucket's number)."""
    return name.isdigit()


def _own(name: str) -> bool:
    return name not in _SUMS and not is_mark(name)


def own_fields(record: Mapping[str, str]) -> dict[str, str]:
    """Return a profile's fields without the sums and marks kept beside them: what says who the customer is (empty:
    a customer never seen, whose hash holds only what outbox steps counted)."""
    return {name: value for name, value in record.items() if _own(name)}


def has_own_fields(record: Mapping[str, str]) -> bool:
    """Say whether own_fields(record) holds anything, looking no further than its first such field."""
    return any(map(_own, record))


def lua_sums() -> str:
    """Return the Lua a script saying `--#sums` gets (base.Script puts it there): SUM_FIELDS, and drop_sums(key),
    which takes an entity's sums off its hash and leaves the rest (marks, a customer's profile)."""
    names = ", ".join(f"'{name}'" for name in SUM_FIELDS)
    return (f"local SUM_FIELDS = {{{names}}}\n"
            "local function drop_sums(key) redis.call('HDEL', key, unpack(SUM_FIELDS)) end\n")
