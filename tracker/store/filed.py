"""Settled surveys filed in shared hashes: one field each instead of a key each.

A key of its own costs Redis about a hundred bytes beyond what it holds (the key's name, its entry in the keyspace
and its object), as much as a third of a settled survey's hash. So settle_survey.lua files a settled survey that has
no expiry (a test survey has one) into its filing hash, `keys.survey_filed(sid)`: one of FILED_PER_BUCKET hashes of
its survey bucket, in the same slot, under its sid, as one value: the survey's fields but its sid, each name and
value after its length in bytes ("2:st8:answered1:z..."), which holds any byte. At a million customers (five
million surveys) a filing hash holds about 76 surveys and stays compact (a listpack under Redis's default
hash-max-listpack-entries of 512, which `tracker check` watches): bench/filed.py measured 363 bytes a survey
against 499 as a key of its own.

A filed survey is still a survey: every read of a survey by sid reads its hash and its filed value in one round trip
(queue_read, then joined; a survey found in neither place is read again by one script, read_at_once, since a thaw
between the two commands looks the same), the filed fields under the hash's (a field written beside a filed survey
since, like one written beside a packed value, wins); every script that writes a survey's fields first unfiles it
(`unfile`, part of the `thaw` the scripts include: survey_codes.lua_thaw), and erasure and retention thaw before they
delete. The values inside are what survey_codes packed: expanded() reads them as it reads a settled hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from tracker.store import keys


def blob(record: Mapping[str, str]) -> str:
    """Return a survey's hash as its filed value (the Lua twin: `file` in lua_filing)."""
    return "".join(f"{len(name.encode())}:{name}{len(value.encode())}:{value}"
                   for name, value in record.items() if name != "sid")


def unfiled(sid: str, value: str) -> dict[str, str]:
    """Return a filed value as the survey's hash held it, its sid included (the Lua twin: `unfile`)."""
    raw, found, at = value.encode(), {"sid": sid}, 0
    items: list[str] = []
    while at < len(raw):
        colon = raw.index(b":", at)
        length = int(raw[at:colon])
        items.append(raw[colon + 1:colon + 1 + length].decode())
        at = colon + 1 + length
    if len(items) % 2:
        raise ValueError(f"survey {sid}'s filed value holds an odd number of items")
    found.update(zip(items[::2], items[1::2], strict=True))
    return found


def held_by(base: Any, script: str, sids: Sequence[str], *args: str) -> list[str]:
    """Return the sids, of these, that a script reading each survey where it is (its hash and its filed value) says
    hold what it looks for, in their order: one script a survey bucket, by its source (no SCRIPT EXISTS first), all
    in one round trip. The script takes KEYS the surveys' hashes then their filing hashes (one slot: the bucket's),
    ARGV the sids then args, and returns the sids it keeps (commented.lua, sieve.lua)."""
    by_bucket: dict[int, list[str]] = {}
    for sid in sids:
        by_bucket.setdefault(keys.bucket_of(sid), []).append(sid)
    if not by_bucket:
        return []
    source = base.script(script).source
    pipe = base.redis.pipeline(transaction=False)
    for group in by_bucket.values():
        pipe.execute_command("EVAL", source, 2 * len(group), *map(keys.survey, group), *map(keys.survey_filed, group),
                             *group, *args)
    held = {sid for found in pipe.execute() for sid in found}
    return [sid for sid in sids if sid in held]


def queue_read(pipe: Any, sid: str) -> None:
    """Queue the two commands that read a survey: its hash, then its filed value (joined reads the replies)."""
    pipe.hgetall(keys.survey(sid))
    pipe.hget(keys.survey_filed(sid), sid)


def joined(sid: str, record: Mapping[str, str], filed: str | None) -> dict[str, str]:
    """Return a survey's hash from the replies of queue_read: its filed fields under the hash's own ({} for none)."""
    if filed is None:
        return dict(record)
    return {**unfiled(sid, filed), **record}


def read_many(base: Any, sids: Sequence[str]) -> list[dict[str, str]]:
    """Return each survey's hash ({} for none), filed or not, in one round trip (two when some survey was found in
    neither place: read_at_once). One survey is read by read_at_once alone: one round trip, at once, found or not."""
    if len(sids) <= 1:
        return read_at_once(base, sids)
    pipe = base.redis.pipeline(transaction=False)
    for sid in sids:
        queue_read(pipe, sid)
    found = list(joined_replies(sids, pipe.execute()))
    missing = [n for n, record in enumerate(found) if not record]
    for n, record in zip(missing, read_at_once(base, [sids[n] for n in missing]), strict=True):
        found[n] = record
    return found


def read_at_once(base: Any, sids: Sequence[str]) -> list[dict[str, str]]:
    """Read these surveys, each hash and filed value at once (read_survey.lua), in one round trip: the ones the two
    commands of queue_read found in neither place, which a survey being thawed between them also looks like."""
    script = base.script("read_survey")
    if len(sids) == 1:  # by its SHA, no pipeline
        replies = [script(keys=[keys.survey(sids[0]), keys.survey_filed(sids[0])], args=[sids[0]])]
    elif sids:
        pipe = base.redis.pipeline(transaction=False)
        for sid in sids:
            script(keys=[keys.survey(sid), keys.survey_filed(sid)], args=[sid], client=pipe)
        replies = pipe.execute()
    else:
        return []
    return [joined(sid, dict(zip(flat[::2], flat[1::2], strict=True)), value)
            for sid, (flat, value) in zip(sids, replies, strict=True)]


def joined_replies(sids: Iterable[str], replies: Sequence[Any]) -> Iterator[dict[str, str]]:
    """Yield each survey's hash from the replies of queue_read, queued for these sids in turn."""
    for n, sid in enumerate(sids):
        yield joined(sid, replies[2 * n], replies[2 * n + 1])


def lua_filing() -> str:
    """Write the Lua of filing (survey_codes.lua_thaw puts it before `thaw`): `filed_sid(key)`, `unfile(key,
    filed)`, which moves a filed survey back into its hash (a field written there since keeps its value), and
    `file(key, filed, longest)`, which files a hash without an expiry whose value fits in a compact hash."""
    return """local function filed_sid(key)
  return string.match(key, '^[^}]*}:survey:(.*)$')
end
local function unfile(key, filed)
  local sid = filed_sid(key)
  local value = sid and redis.call('HGET', filed, sid)
  if not value then return false end
  local items, at = {}, 1
  while at <= #value do
    local colon = string.find(value, ':', at, true)
    local length = tonumber(string.sub(value, at, colon - 1))
    items[#items + 1] = string.sub(value, colon + 1, colon + length)
    at = colon + length + 1
  end
  for i = 1, #items, 2 do redis.call('HSETNX', key, items[i], items[i + 1]) end
  redis.call('HSETNX', key, 'sid', sid)
  redis.call('HDEL', filed, sid)
  return true
end
local function file(key, filed, longest)
  local sid = filed_sid(key)
  if not sid or redis.call('PTTL', key) ~= -1 or redis.call('HEXISTS', filed, sid) == 1 then return false end
  local fields, parts = redis.call('HGETALL', key), {}
  for i = 1, #fields, 2 do
    if fields[i] ~= 'sid' then
      parts[#parts + 1] = #fields[i] .. ':' .. fields[i] .. #fields[i + 1] .. ':' .. fields[i + 1]
    end
  end
  local value = table.concat(parts)
  if #value > longest then return false end
  redis.call('HSET', filed, sid, value)
  redis.call('DEL', key)
  return true
end
"""
