-- Settle a survey that can no longer be answered (beat's expiry pass, `tracker upgrade-store`): pack the values
-- of its coded fields but its status into one field, in the order of tracker.store.survey_codes.PACKED (the
-- constants come from there, in place of the line below), and drop those fields. Only a sent or answered survey
-- is settled, and not one holding a separator in a value to pack, nor one whose packed value would be longer than
-- a compact hash may hold (the hash would become a hash table, bigger than its fields were). Safe at any time:
-- whatever reads or writes a survey's fields reads the packed field too or thaws it first.
-- KEYS: 1 survey
-- ARGV: 1 the longest value a compact hash may hold (hash-max-listpack-value)
-- Returns 1 when settled now, 0 when not (gone, settled already, not sent or answered, or a value unfit).
--#thaw
local s = KEYS[1]
local status = redis.call('HGET', s, 'st')  -- status (tracker.store.survey_codes)
if (status ~= 'sent' and status ~= 'answered') or settled(s) then return 0 end
local values = redis.call('HMGET', s, unpack(PACKED))
local packed, held = {PACKED_VERSION}, {}
for i, value in ipairs(values) do
  if value then
    if string.find(value, SEPARATOR, 1, true) or string.find(value, ABSENT, 1, true) then return 0 end
    packed[#packed + 1] = value
    held[#held + 1] = PACKED[i]
  else
    packed[#packed + 1] = ABSENT
  end
end
local value = table.concat(packed, SEPARATOR)
if #value > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', s, PACKED_FIELD, value)
if #held > 0 then redis.call('HDEL', s, unpack(held)) end
return 1
