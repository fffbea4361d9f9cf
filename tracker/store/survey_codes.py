"""The short names a survey's hash gives the fields only Python names: written once here, not in every hash.

A survey's hash is a compact hash (a listpack) in which every field's name is stored beside its value, in each of
millions of surveys. The fields every survey or answer holds are stored under the codes below: what the survey is
about and by whom, the sums its answer counted (which Python computes and hands to the scripts), and its status,
times, rating and count of changes, which the scripts in tracker/store/lua name by their codes (each script says
which). Rarer fields (comment, reasons, reminder and reply state, errors) keep their names. Every read of a
survey's hash goes through expanded() and every name written or asked for through coded(), so no other Python
module knows the codes. Layout 4 and earlier stored the names: `tracker upgrade-store` renames them
(code_fields.lua).

A survey that can no longer be answered is settled (settle_survey.lua, run by beat's expiry pass): the values of
its coded fields but its status are packed into one field, PACKED_FIELD, in the order of PACKED, which saves
each field's name and the listpack's bookkeeping of it, and what one field says of another or says in decimal
(about a third of the hash). Its sid, status and the rarer fields stay as they are. expanded() unpacks it; a
field written beside it since (an answer imported later, a reweighting) wins over the packed value. Every script
that reads or writes a survey's fields first thaws a settled one back into fields (the `thaw` function
lua_thaw() writes, which base.Script puts where a script says `--#thaw`), and Python reads single fields with
picked_from(), so nothing but this module knows the packing. A settled survey is then filed
(tracker.store.filed), which every read of a survey by id reads beside its hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tracker.store.filed import lua_filing

CODES: dict[str, str] = {
    # what the survey is about, written when it is made
    "tkey": "tk", "kind": "kd", "scale": "sc", "customer": "cu", "source": "so", "ticket_id": "ti", "subject": "sj",
    "agent_id": "ag", "agent_name": "an", "team": "tm", "brand": "br", "channel": "ch", "tags": "tg",
    "organisation": "og", "resolved_by": "rb", "lang": "lg", "solved_at": "sv",
    # what its answer counted (tracker.store.scores.COUNTED beside the rating), and the newest answer event's mark
    "value6": "v6", "satisfied": "sf", "promoter": "pr", "detractor": "dt", "nps": "np", "weight": "wt",
    "weighted": "wd", "day": "dy", "answer_event": "ae",
    # what the scripts read and write of every survey (by these codes): keep in step with tracker/store/lua
    "status": "st", "created_at": "ca", "sent_at": "sn", "expires_at": "ex", "answered_at": "aa", "first_at": "fa",
    "changes": "cg", "rating": "ra",
}
NAMES: dict[str, str] = {code: name for name, code in CODES.items()}

# A settled survey's packed field (settle_survey.lua writes it): the version of the packing, then each of PACKED's
# values in order, each after a SEPARATOR: ABSENT for a field the hash did not hold, DERIVED for one that says what
# another says (the ticket key its source and ticket id, the organisation its customer's email domain, the creation
# time the send time, the first answer's time the newest's), a time in ms in base 36. PACKED and these rules never
# change within a version: a new field or rule goes into a new version (and both are read). A survey holding one
# of the three marks in a value to pack, or a time that is not a plain number of ms, stays unpacked.
PACKED_FIELD = "z"
PACKED_VERSION = "1"
PACKED: tuple[str, ...] = tuple(code for code in CODES.values() if code != "st")  # the status stays a field
SEPARATOR = "\x1f"
ABSENT = "\x1e"
DERIVED = "\x1d"
TIMES = ("sv", "ca", "sn", "ex", "aa", "fa")  # packed in base 36
SAME_AS = {"ca": "sn", "fa": "aa"}  # packed as DERIVED when equal to the other field


def coded(name: str) -> str:
    """Return the name a survey's hash stores a field under."""
    return CODES.get(name, name)


def coded_mapping(record: Mapping[str, str]) -> dict[str, str]:
    """Return a survey's fields (by their names) as its hash stores them."""
    return {CODES.get(name, name): value for name, value in record.items()}


def expanded(record: Mapping[str, str]) -> dict[str, str]:
    """Return a survey's hash with every field by its name (a hash read before its upgrade holds the names
    themselves: those stand unless the code is there too; a settled hash's packed values stand unless the field
    was written beside them since)."""
    packed = record.get(PACKED_FIELD)
    if packed is not None:
        record = {**unpacked(packed), **{name: value for name, value in record.items() if name != PACKED_FIELD}}
    found = {name: value for name, value in record.items() if name not in NAMES}
    found.update((NAMES[code], value) for code, value in record.items() if code in NAMES)
    return found


def unpacked(packed: str) -> dict[str, str]:
    """Return a packed field's values by code, as the hash held them (a field it did not hold is left out)."""
    version, *values = packed.split(SEPARATOR)
    if version != PACKED_VERSION or len(values) != len(PACKED):
        raise ValueError(f"a settled survey's packed field of version {version!r} and {len(values)} values")
    found = {code: value for code, value in zip(PACKED, values, strict=True) if value != ABSENT}
    for code in TIMES:
        if code in found and found[code] != DERIVED:
            found[code] = str(int(found[code], 36))
    for code, value in found.items():
        if value == DERIVED:
            found[code] = _derived(code, found) or ""
    return found


def _derived(code: str, found: Mapping[str, str]) -> str | None:
    """Return what a field packed as DERIVED says, from the fields it is derived from (the Lua twin: lua_thaw)."""
    if code == "tk":
        return f"{found['so']}:{found['ti']}" if "so" in found and "ti" in found else None
    if code == "og":
        return found["cu"].rpartition("@")[2] if "@" in found.get("cu", "") else None
    return found.get(SAME_AS[code]) if code in SAME_AS else None


def picked_from(names: Sequence[str], record: Mapping[str, str]) -> list[str | None]:
    """Return the values of these fields (by name) of a survey's whole hash, as read (filed.joined), or None."""
    found = expanded(record)
    return [found.get(name) for name in names]


def lua_thaw() -> str:
    """Write the Lua that a script saying `--#thaw` gets (base.Script puts it there): filing's functions
    (tracker.store.filed), the packing's constants and rules (as above, written from them) and the functions
    `settled(key)`, `pack(key)` (settle_survey.lua's: the packed value, or nil when the survey must stay unpacked)
    and `thaw(key, filed)`, which moves a filed survey back into its hash and turns a settled survey's hash back
    into fields (a field written beside the filed or packed value since keeps its value)."""
    codes = ", ".join(f"'{code}'" for code in PACKED)
    times = ", ".join(f"{code} = true" for code in TIMES)
    same = ", ".join(f"{code} = '{other}'" for code, other in SAME_AS.items())
    return lua_filing() + f"""local PACKED = {{{codes}}}
local PACKED_FIELD, PACKED_VERSION = '{PACKED_FIELD}', '{PACKED_VERSION}'
local SEPARATOR, ABSENT, DERIVED = '\\{ord(SEPARATOR)}', '\\{ord(ABSENT)}', '\\{ord(DERIVED)}'
local TIMES, SAME_AS = {{{times}}}, {{{same}}}
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function derived(code, found)
  if code == 'tk' then return found.so and found.ti and found.so .. ':' .. found.ti end
  if code == 'og' then return found.cu and string.match(found.cu, '@([^@]*)$') end
  return SAME_AS[code] and found[SAME_AS[code]]
end
local function settled(key)
  return redis.call('HEXISTS', key, PACKED_FIELD) == 1
end
local function pack(key)
  local read, found = redis.call('HMGET', key, unpack(PACKED)), {{}}
  for i, code in ipairs(PACKED) do
    if read[i] then found[code] = read[i] end
  end
  local packed = {{PACKED_VERSION}}
  for _, code in ipairs(PACKED) do
    local value = found[code]
    if not value then
      value = ABSENT
    elseif string.find(value, SEPARATOR, 1, true) or string.find(value, ABSENT, 1, true)
        or string.find(value, DERIVED, 1, true) then
      return nil
    elseif derived(code, found) == value then
      value = DERIVED
    elseif TIMES[code] then
      if not (value == '0' or (string.match(value, '^[1-9]%d*$') and #value <= 15)) then return nil end
      local n, digits = tonumber(value), {{}}
      while n > 0 do
        local d = n % 36
        table.insert(digits, 1, string.sub(DIGITS, d + 1, d + 1))
        n = (n - d) / 36
      end
      value = #digits > 0 and table.concat(digits) or '0'
    end
    packed[#packed + 1] = value
  end
  return table.concat(packed, SEPARATOR)
end
local function thaw(key, filed)
  unfile(key, filed)
  local packed = redis.call('HGET', key, PACKED_FIELD)
  if not packed then return end
  local values, start = {{}}, 1
  while true do
    local at = string.find(packed, SEPARATOR, start, true)
    if not at then values[#values + 1] = string.sub(packed, start) break end
    values[#values + 1] = string.sub(packed, start, at - 1)
    start = at + 1
  end
  if values[1] ~= PACKED_VERSION or #values ~= #PACKED + 1 then
    error('a settled survey packed by another version: ' .. key)
  end
  local found = {{}}
  for i, code in ipairs(PACKED) do
    local value = values[i + 1]
    if value ~= ABSENT then
      if TIMES[code] and value ~= DERIVED then value = string.format('%.0f', tonumber(value, 36)) end
      found[code] = value
    end
  end
  for code, value in pairs(found) do
    if value == DERIVED then found[code] = derived(code, found) or '' end
  end
  for _, code in ipairs(PACKED) do
    if found[code] then redis.call('HSETNX', key, code, found[code]) end
  end
  redis.call('HDEL', key, PACKED_FIELD)
end
"""
